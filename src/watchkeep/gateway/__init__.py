"""The OpenAI-compatible gateway: routes, backends, policies and tracing (docs/gateway.md).

``Gateway`` (service.py) is the use case; ``web`` and ``routes_api`` are its HTTP
routers, mounted by ``watchkeep.api.app``; ``backends`` reach the models.
"""
