"""Throwaway local services for tests, benchmarks and development."""
