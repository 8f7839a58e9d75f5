"""The HTTP transport: FastAPI app factory, dependencies, error mapping and routes."""
