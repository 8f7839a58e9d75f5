"""Agents at work: AgentRunner, model providers and tools."""
