"""The OpenAI-compatible gateway: routes, backends, policies and tracing (docs/gateway.md).

``Gateway`` (service.py) is the use case; ``web`` is its OpenAI-compatible HTTP surface,
mounted by ``watchkeep.app`` (the routes API lives in ``watchkeep.api.routes``);
``backends`` reach the models.
"""
