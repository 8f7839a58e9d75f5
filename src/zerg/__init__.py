"""Zerg: a self-hosted platform for running LLM agents."""

__version__ = "0.1.0"
