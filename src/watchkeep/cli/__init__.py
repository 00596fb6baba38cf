"""Typer command line: thin wrappers over the modules."""
