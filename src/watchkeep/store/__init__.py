"""Persistence: tables, engines, migrations and repositories."""
