"""Pydantic request, response and event shapes only."""
