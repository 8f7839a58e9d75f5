// The agent editor's MCP servers: each server's tools (name and description), or its error,
// from /agents/{id}/mcp-tools. Listing a server may start it, so the page asks after loading.
"use strict";
(() => {
  const section = document.getElementById("mcp");
  const list = document.getElementById("mcp-servers");
  if (!section || !list) return;

  function item(server) {
    for (const li of list.querySelectorAll("li.mcp-server")) {
      if (li.dataset.server === server) return li;
    }
    return null;
  }

  function show(li, server) {
    const status = li.querySelector(".mcp-status");
    const tools = li.querySelector(".mcp-tools");
    tools.replaceChildren();
    if (server.error) {
      status.className = "mcp-status field-error";
      status.textContent = server.error;
      return;
    }
    status.textContent = server.tools.length === 1 ? "1 tool:" : `${server.tools.length} tools:`;
    for (const tool of server.tools) {
      const row = document.createElement("li");
      const name = document.createElement("code");
      name.textContent = tool.name;
      row.append(name);
      if (tool.description) row.append(` — ${tool.description}`);
      tools.append(row);
    }
  }

  async function load() {
    const result = await Zerg.api("GET", `/agents/${section.dataset.agentId}/mcp-tools`);
    list.removeAttribute("aria-busy");
    if (!result.ok) {
      for (const li of list.querySelectorAll("li.mcp-server")) {
        show(li, { error: `Could not list the tools: ${result.data.detail}`, tools: [] });
      }
      return;
    }
    for (const server of result.data) {
      const li = item(server.name);
      if (li) show(li, server);
    }
  }

  load();
})();
