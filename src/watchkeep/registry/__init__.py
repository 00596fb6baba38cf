"""Releases: model, prompt and dataset versions, aliases with their history, promotion
policy and canary analysis (issue 15; docs/releases.md)."""
