// A thread's messages on a page, kept in step with the server. `ZergThread.messages(list)`
// adds what is new to an <ol class="messages"> as the server renders it (_messages.html, from
// /threads/{id}/messages?after_id=N), so a message heard of live looks as it will after a
// reload, and one missed while the connection was down is fetched all the same. The thread
// view (/threads/{id}) follows its thread and its runs live with it; the chat builds on it.
"use strict";
(() => {
  /** The <ol class="messages"> `list`, synced on demand; `onAdded(items)` hears of each
   *  addition as it is made. */
  function messages(list, onAdded) {
    const threadId = list.dataset.threadId;
    let running = null;
    let again = false;

    const has = (id) => Boolean(list.querySelector(`:scope > li[data-message-id="${Number(id)}"]`));
    const lastId = () => Math.max(0, ...[...list.querySelectorAll(":scope > li[data-message-id]")]
      .map((item) => Number(item.dataset.messageId)));

    async function fetchNew() {
      let response;
      try {
        response = await fetch(`/threads/${threadId}/messages?after_id=${lastId()}`,
          { credentials: "same-origin", headers: { Accept: "text/html" } });
      } catch (error) {
        return [];
      }
      // A redirect is the sign-in page (the session ended): the messages stay as they are.
      if (!response.ok || response.redirected) return [];
      const rendered = document.createElement("template");
      rendered.innerHTML = await response.text(); // the server's markup: message text escaped
      const live = list.querySelector(":scope > li.live"); // a reply being written stays last
      const added = [];
      for (const item of rendered.content.querySelectorAll("ol.messages > li[data-message-id]")) {
        if (has(item.dataset.messageId)) continue;
        list.insertBefore(item, live);
        added.push(item);
      }
      return added;
    }

    /** Fetch what is new: one request at a time, and one more if asked again meanwhile. */
    function sync() {
      if (running) {
        again = true;
        return running;
      }
      running = (async () => {
        const added = [];
        do {
          again = false;
          const batch = await fetchNew();
          if (batch.length && onAdded) onAdded(batch); // at once: a live reply makes way
          added.push(...batch);
        } while (again);
        running = null;
        return added;
      })();
      return running;
    }

    return { list, threadId, has, sync };
  }

  function duration(ms) {
    if (ms == null) return "";
    if (ms < 1000) return `${ms} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    return `${Math.floor(ms / 60000)} min ${Math.floor((ms % 60000) / 1000)} s`;
  }

  /** The one-line facts of a run, as thread.html shows them. */
  function runFacts(run) {
    const parts = [run.trigger, Zerg.when(run.queued_at)];
    if (run.duration_ms != null) parts.push(duration(run.duration_ms));
    if (run.total_tokens) parts.push(`${run.total_tokens} tokens`);
    if (run.cost_usd != null) parts.push(`$${Number(run.cost_usd).toFixed(4)}`);
    return parts.join(" · ");
  }

  function followThreadView(view) {
    const threadId = view.dataset.threadId;
    const list = document.querySelector(`ol.messages[data-thread-id="${threadId}"]`);
    const runs = document.getElementById("thread-runs");
    const note = document.getElementById("follow-note");
    const thread = messages(list);

    function runItem(run) {
      let item = runs.querySelector(`li[data-run-id="${Number(run.id)}"]`);
      if (item) return item;
      runs.querySelector("li.none")?.remove();
      item = document.createElement("li");
      item.dataset.runId = run.id;
      const link = document.createElement("a");
      link.href = `/runs/${Number(run.id)}`;
      link.textContent = `Run #${run.id}`;
      const badge = document.createElement("span");
      badge.dataset.field = "status";
      const facts = document.createElement("span");
      facts.className = "muted small";
      facts.dataset.field = "facts";
      item.append(link, " ", badge, " ", facts);
      runs.append(item);
      return item;
    }

    function showRun(run) {
      const item = runItem(run);
      const badge = item.querySelector('[data-field="status"]');
      badge.className = `badge ${run.status}`;
      badge.textContent = run.status;
      item.querySelector('[data-field="facts"]').textContent = runFacts(run);
      let error = item.querySelector('[data-field="error"]');
      if (run.error && !error) {
        error = document.createElement("div");
        error.className = "error small";
        error.dataset.field = "error";
        item.append(error);
      }
      if (error) error.textContent = run.error || "";
      item.dataset.final = Zerg.FINAL.has(run.status) ? "true" : "";
      note.hidden = !runs.querySelector("li[data-run-id]:not([data-final='true'])");
    }

    async function refreshRuns() {
      for (const item of runs.querySelectorAll("li[data-run-id]:not([data-final='true'])")) {
        const result = await Zerg.api("GET", `/api/runs/${Number(item.dataset.runId)}`);
        if (result.ok) showRun(result.data);
      }
    }

    for (const item of runs.querySelectorAll("li[data-run-id]")) {
      const status = item.querySelector('[data-field="status"]').textContent.trim();
      item.dataset.final = Zerg.FINAL.has(status) ? "true" : "";
    }

    Zerg.live([`thread:${threadId}`], (event) => {
      if (event.type === "thread_message_created" && !thread.has(event.data.id)) thread.sync();
      else if (event.type === "run_created" || event.type === "run_updated") showRun(event.data);
    }, () => {
      // (Re)connected: what happened since the page was rendered, or during a break, came
      // without us.
      thread.sync();
      refreshRuns();
    });
  }

  window.ZergThread = { messages, runFacts };
  const view = document.getElementById("thread-view");
  if (view) followThreadView(view);
})();
