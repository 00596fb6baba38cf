"""Typed client for watchkeep's query API (traces, spans, scores, metrics, quality).

Ships in the SDK-only install (``pip install watchkeep``): it needs httpx alone.
"""
