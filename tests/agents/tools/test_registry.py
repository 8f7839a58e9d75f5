import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool

from zerg.agents import catalog
from zerg.agents.tools import BUILTIN_TOOLS, HttpGetPolicy, RefusedURL, build_tools
from zerg.errors import InvalidInput


def test_registry_matches_the_catalog_used_by_validation() -> None:
    assert set(BUILTIN_TOOLS) == set(catalog.BUILTIN_TOOL_NAMES)


def test_builds_every_catalog_tool_under_its_name() -> None:
    tools = build_tools(catalog.BUILTIN_TOOL_NAMES)
    assert [t.name for t in tools] == list(catalog.BUILTIN_TOOL_NAMES)


def test_builds_in_order_once_each() -> None:
    tools = build_tools(["calculator", "current_time", "calculator"])
    assert [t.name for t in tools] == ["calculator", "current_time"]


def test_unknown_tool_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="Unknown tool\\(s\\) shell; built-in tools: "):
        build_tools(["calculator", "shell"])


def test_a_single_string_is_not_a_list_of_names() -> None:
    with pytest.raises(TypeError, match="not one string"):
        build_tools("calculator")


def test_tools_describe_themselves_to_the_model() -> None:
    schemas = {
        t.name: convert_to_openai_tool(t)["function"]
        for t in build_tools(["current_time", "calculator", "http_get"])
    }

    assert schemas["current_time"]["parameters"]["properties"]["timezone"]["default"] == "UTC"
    assert schemas["calculator"]["parameters"]["required"] == ["expression"]
    assert schemas["http_get"]["parameters"]["required"] == ["url"]
    assert all(len(s["description"]) > 40 for s in schemas.values())


def test_http_policy_reaches_the_http_get_tool() -> None:
    (tool,) = build_tools(["http_get"], http_policy=HttpGetPolicy(max_bytes=1234, max_redirects=2))
    assert "at most 1,234 bytes" in tool.description
    assert "up to 2 redirects" in tool.description


@pytest.mark.anyio
async def test_http_get_defaults_to_public_addresses_only(connects: list[str]) -> None:
    (tool,) = build_tools(["http_get"])
    with pytest.raises(RefusedURL, match="loopback"):
        await tool.ainvoke({"url": "http://127.0.0.1:9/"})
    assert connects == []
