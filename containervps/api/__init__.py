"""The tenant self-service and admin REST API (FastAPI)."""
