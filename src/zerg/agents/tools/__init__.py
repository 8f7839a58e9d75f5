"""The built-in tools an agent can use, by name.

Every expected failure (bad input, refused URL, timeout) raises `langchain_core.tools.ToolException`
with a message meant for the model, so the agent loop can hand it back and let the model go on
(e.g. `ToolNode(handle_tool_errors=ToolException)`); any other exception is a bug.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from langchain_core.tools import BaseTool

from zerg.agents.tools.calculator import calculator_tool
from zerg.agents.tools.current_time import current_time_tool
from zerg.agents.tools.http_get import HttpGetPolicy, http_get_tool
from zerg.agents.tools.mcp import McpPolicy, McpServerError, McpToolset
from zerg.agents.tools.ssrf import RefusedURL
from zerg.errors import InvalidInput

__all__ = [
    "BUILTIN_TOOLS",
    "HttpGetPolicy",
    "McpPolicy",
    "McpServerError",
    "McpToolset",
    "RefusedURL",
    "ToolConfig",
    "ToolFactory",
    "build_tools",
]


@dataclass(frozen=True)
class ToolConfig:
    """What the operator decides for the built-in tools."""

    http_policy: HttpGetPolicy = field(default_factory=HttpGetPolicy)


ToolFactory = Callable[[ToolConfig], BaseTool]

BUILTIN_TOOLS: dict[str, ToolFactory] = {
    "current_time": lambda _config: current_time_tool(),
    "http_get": lambda config: http_get_tool(config.http_policy),
    "calculator": lambda _config: calculator_tool(),
}


def build_tools(
    names: Sequence[str],
    *,
    http_policy: HttpGetPolicy | None = None,
    mcp: McpToolset | None = None,
) -> list[BaseTool]:
    """The tools called `names`, in order and once each, then the tools of `mcp` (the agent's
    MCP servers); raises `InvalidInput` for unknown names."""
    if isinstance(names, str):
        raise TypeError("names must be a sequence of tool names, not one string")
    unknown = [name for name in names if name not in BUILTIN_TOOLS]
    if unknown:
        known = ", ".join(BUILTIN_TOOLS)
        raise InvalidInput(f"Unknown tool(s) {', '.join(unknown)}; built-in tools: {known}")
    config = ToolConfig(http_policy=http_policy or HttpGetPolicy())
    builtins = [BUILTIN_TOOLS[name](config) for name in dict.fromkeys(names)]
    return builtins + (mcp.tools(BUILTIN_TOOLS) if mcp is not None else [])
