"""watchkeep: maintain and monitor large language models in production."""

__version__ = "0.1.0"
