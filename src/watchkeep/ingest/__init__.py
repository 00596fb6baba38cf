"""OTLP decoding, normalisation onto typed columns, and the group-committing writer."""
