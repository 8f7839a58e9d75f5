"""The agent editor's MCP servers in a real browser: a server added in the config JSON shows
its tools (name and description) on the agent's page, and a server that fails says why."""

import json

from playwright.sync_api import Page, expect

from tests.api.test_mcp_tools import stdio
from tests.e2e.conftest import Pages, Site, shoot


def test_the_editor_lists_each_mcp_servers_tools(site: Site, pages: Pages, alice: Page) -> None:
    page = alice
    servers = {"local": stdio(), "broken": {"transport": "stdio", "command": "/nonexistent/x"}}
    page.goto("/agents/new")
    page.get_by_label("Name", exact=True).fill("With MCP")
    page.get_by_label("Config (JSON)").fill(json.dumps({"mcp_servers": servers}))
    page.get_by_role("button", name="Create agent").click()
    expect(page.locator("#saved-note")).to_have_text("Agent created.")

    section = page.get_by_role("region", name="MCP servers")
    local = section.locator('li.mcp-server[data-server="local"]')
    expect(local.locator(".mcp-status")).to_have_text("2 tools:")
    expect(local.locator(".mcp-tools li")).to_have_text(
        ["greet — Greet someone by name.", "explode — Always fails, to test errors."]
    )
    broken = section.locator('li.mcp-server[data-server="broken"]')
    expect(broken.locator(".mcp-status")).to_have_text(
        "MCP server 'broken' did not start: command not found"
    )
    expect(section.locator("#mcp-servers")).not_to_have_attribute("aria-busy", "true")
    shoot(page, "agent-mcp-tools")


def test_an_agent_without_mcp_servers_says_so(site: Site, pages: Pages, alice: Page) -> None:
    page = alice
    result = page.evaluate(
        "body => Zerg.api('POST', '/api/agents', body)", {"name": "Plain", "model": "scripted:demo"}
    )
    assert result["ok"], result
    page.goto(f"/agents/{result['data']['id']}")
    expect(page.locator("#mcp-none")).to_have_text("No MCP servers.")
