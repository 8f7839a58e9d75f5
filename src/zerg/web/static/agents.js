// The agents table: ▶ Play and ■ Stop, and badges kept live from the `agents` topic.
"use strict";
(() => {
  const rows = document.getElementById("agent-rows");
  if (!rows) return;
  const started = new Map(); // run id → agent id, for the runs this tab started

  const rowOf = (agentId) => document.getElementById(`agent-${agentId}`);
  const field = (row, name) => row.querySelector(`[data-field="${name}"]`);

  function note(row, html, isError) {
    const element = field(row, "note");
    element.classList.toggle("error", Boolean(isError));
    element.innerHTML = html;
  }

  function escape(text) {
    const div = document.createElement("div");
    div.textContent = text == null ? "" : String(text);
    return div.innerHTML;
  }

  function setStatus(row, status, error) {
    const badge = field(row, "status");
    badge.className = `badge ${status}`;
    badge.textContent = status;
    field(row, "last-error").textContent = status === "error" ? error || "" : "";
  }

  function setOpenRun(row, runId) {
    row.dataset.runId = runId || "";
    row.querySelector('[data-action="stop"]').disabled = !runId;
  }

  async function play(row) {
    const agentId = row.dataset.agentId;
    note(row, "Starting…");
    const result = await Zerg.api("POST", `/api/agents/${agentId}/task`);
    if (!result.ok) {
      note(row, escape(result.data.detail), true);
      if (result.data.code === "budget_exceeded") {
        field(row, "budget").textContent = "Daily budget spent: runs start again after midnight UTC";
      }
      return;
    }
    const run = result.data;
    started.set(run.id, agentId);
    setOpenRun(row, run.id);
    note(row, `Run <a href="/runs/${run.id}">#${run.id}</a> ${escape(run.status)}…`);
  }

  async function stop(row) {
    const runId = row.dataset.runId;
    if (!runId) return;
    const result = await Zerg.api("POST", `/api/runs/${runId}/cancel`);
    if (!result.ok) note(row, escape(result.data.detail), true);
  }

  rows.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("tr");
    if (button.dataset.action === "play") play(row);
    else stop(row);
  });

  function onRun(run) {
    const row = rowOf(run.agent_id);
    if (!row) return;
    const last = field(row, "last-run");
    last.innerHTML = `<a href="/runs/${run.id}">#${run.id} ${escape(run.status)}</a>` +
      `<div class="muted small">${escape(Zerg.when(run.queued_at))}</div>`;
    const final = Zerg.FINAL.has(run.status);
    if (!final) {
      if (!row.dataset.runId || Number(row.dataset.runId) < run.id) setOpenRun(row, run.id);
    } else if (Number(row.dataset.runId) === run.id) {
      setOpenRun(row, "");
    }
    if (final && started.has(run.id)) {
      started.delete(run.id);
      const thread = run.thread_id
        ? ` — <a class="open-thread" href="/threads/${run.thread_id}">open its thread</a>` : "";
      const error = run.error ? `: ${escape(run.error)}` : "";
      note(row, `Run <a href="/runs/${run.id}">#${run.id}</a> ${escape(run.status)}${error}${thread}`,
        run.status !== "succeeded");
    }
  }

  function onAgent(agent) {
    const row = rowOf(agent.id);
    if (!row) return;
    if (agent.status) setStatus(row, agent.status, agent.last_error);
    if (agent.name) {
      field(row, "name").textContent = agent.name;
      field(row, "model").textContent = agent.model;
    }
    if ("next_run_at" in agent) {
      field(row, "next-run").innerHTML = agent.next_run_at
        ? escape(Zerg.when(agent.next_run_at))
        : `<span class="muted">${agent.schedule ? "paused" : "not scheduled"}</span>`;
    }
  }

  function apply(event) {
    if (event.type === "agent_created" || event.type === "agent_deleted") refresh();
    else if (event.type === "agent_updated") onAgent(event.data);
    else if (event.type === "run_created" || event.type === "run_updated") onRun(event.data);
  }

  // While the rows are being read anew, events wait: applied after the rows arrive, a change
  // newer than what was read cannot be overwritten by it.
  let waiting = null;
  let timer = null;
  function refresh() {
    // Agents came or went, or events may have been missed: take the rows as they now stand.
    clearTimeout(timer);
    waiting = waiting || [];
    timer = setTimeout(async () => {
      let html = null;
      try {
        const response = await fetch(`/agents-table${location.search}`, {
          credentials: "same-origin", headers: { Accept: "text/html" },
        });
        // A redirect is the sign-in page (the session ended): keep the rows as they are.
        if (response.ok && !response.redirected) html = await response.text();
      } finally {
        const missed = waiting;
        waiting = null;
        if (html !== null) replaceRows(html);
        missed.forEach(apply);
      }
    }, 50);
  }

  function replaceRows(html) {
    const notes = new Map([...rows.querySelectorAll("tr")].map(
      (row) => [row.id, field(row, "note").outerHTML]));
    rows.innerHTML = html;
    for (const row of rows.querySelectorAll("tr")) {
      if (notes.has(row.id)) field(row, "note").outerHTML = notes.get(row.id);
    }
    rows.closest("table").hidden = rows.children.length === 0;
    document.getElementById("first-start")?.toggleAttribute("hidden", rows.children.length > 0);
  }

  Zerg.live(["agents"], (event) => {
    if (waiting) waiting.push(event);
    else apply(event);
  }, refresh);
})();
