"""Probe generators, one module per family or group of families."""
