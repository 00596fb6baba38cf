"""HTTP layer: FastAPI app factory and one router per resource; no business logic."""
