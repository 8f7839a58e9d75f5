"""The names an agent definition may refer to: model providers and built-in tools."""

MODEL_PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "local", "scripted")
BUILTIN_TOOL_NAMES: tuple[str, ...] = ("current_time", "http_get", "calculator")
