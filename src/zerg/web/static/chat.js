// A chat (/chat/{id}): the composer sends through the API, and the thread's topic brings the
// turn back: its tokens into a live reply as the model writes them, its stored messages (tool
// calls and outputs too) as the server renders them (thread.js), and its end. ■ Stop cancels
// the turn under way.
"use strict";
(() => {
  const chat = document.getElementById("chat");
  if (!chat) return;
  const threadId = chat.dataset.threadId;
  const list = chat.querySelector(`ol.messages[data-thread-id="${threadId}"]`);
  const form = document.getElementById("composer");
  const text = document.getElementById("composer-text");
  const send = document.getElementById("send");
  const stop = document.getElementById("stop");
  const state = document.getElementById("turn-state");
  const problem = document.getElementById("composer-error");

  // The turn under way (whoever sent it), for ■ Stop; and the one that keeps Send disabled:
  // this page's (or, after a reload, the one that was under way).
  let runId = Number(chat.dataset.runId) || null;
  let mine = runId;
  let sending = false;
  let reply = null; // the live reply the tokens go into
  const ended = new Set(); // turns seen to end: their later news changes nothing

  const atBottom = () => window.innerHeight + window.scrollY >= document.body.scrollHeight - 160;
  function keepingBottom(change) {
    const was = atBottom();
    change();
    if (was) window.scrollTo(0, document.body.scrollHeight);
  }

  const thread = ZergThread.messages(list, (added) => keepingBottom(() => {
    for (const item of added) {
      list.querySelector(`:scope > li.live[data-for="${Number(item.dataset.messageId)}"]`)?.remove();
    }
  }));

  function say(message, kind) {
    state.textContent = message;
    state.className = `turn-state small ${kind || ""}`;
  }

  function setButtons() {
    send.disabled = sending || mine !== null;
    stop.disabled = runId === null;
  }

  function openReply() {
    if (reply) return reply;
    reply = document.createElement("li");
    reply.className = "message assistant live";
    const head = document.createElement("div");
    head.className = "message-head";
    const role = document.createElement("span");
    role.className = "role";
    role.textContent = "Assistant";
    const note = document.createElement("span");
    note.className = "muted small writing";
    note.textContent = "writing…";
    head.append(role, " ", note);
    const body = document.createElement("div");
    body.className = "text";
    reply.append(head, body);
    list.append(reply);
    return reply;
  }

  /** The live reply is now stored as message `id`: it makes way once that is shown. */
  function replyStored(id) {
    if (!reply) return;
    reply.dataset.for = id;
    if (thread.has(id)) reply.remove();
    reply = null;
  }

  /** The turn ended with its reply unfinished: what came stays, marked as not saved. */
  function replyCutOff() {
    if (!reply) return;
    reply.classList.remove("live");
    reply.classList.add("cut-off");
    reply.querySelector(".writing").textContent = "stopped: this part was not saved";
    reply = null;
  }

  function turnStarted(id, own) {
    if (id == null || ended.has(id)) return;
    if (own) mine = id;
    if (runId === null || id > runId) runId = id;
    say(own || id === mine ? "Answering…" : "Answering a message sent from elsewhere…");
    setButtons();
  }

  function turnEnded(id, status, error) {
    if (id == null || ended.has(id)) return;
    ended.add(id);
    if (id === mine) mine = null;
    if (id === runId) {
      runId = null;
      replyCutOff();
      if (status === "cancelled") say("Cancelled: the turn was stopped before it finished.", "cancelled");
      else if (status === "succeeded") say("");
      else say(`The turn ${status === "timed_out" ? "timed out" : "failed"}: ${error || status}`, "error");
    }
    setButtons();
    thread.sync();
  }

  async function submit() {
    const content = text.value;
    if (!content.trim() || sending || mine !== null) return;
    sending = true;
    problem.textContent = "";
    setButtons();
    const result = await Zerg.api("POST", `/api/threads/${threadId}/messages`, { content });
    sending = false;
    if (!result.ok) {
      problem.textContent = result.data.detail;
      setButtons();
      return;
    }
    text.value = "";
    turnStarted(result.data.id, true);
    keepingBottom(() => {});
    thread.sync(); // the message sent, at once (its event may come first; then this is a no-op)
  }

  async function cancel() {
    if (runId === null) return;
    stop.disabled = true;
    say("Stopping…");
    const result = await Zerg.api("POST", `/api/runs/${runId}/cancel`);
    if (!result.ok) {
      problem.textContent = result.data.detail;
      setButtons();
      return;
    }
    if (Zerg.FINAL.has(result.data.status)) {
      turnEnded(result.data.id, result.data.status, result.data.error);
    }
  }

  async function checkTurn() {
    // After a break the turn may have ended without us hearing of it.
    if (runId === null) return;
    const result = await Zerg.api("GET", `/api/runs/${runId}`);
    if (result.ok && Zerg.FINAL.has(result.data.status)) {
      turnEnded(result.data.id, result.data.status, result.data.error);
    }
  }

  function onStreamChunk(data) {
    if (data.chunk_type === "assistant_token") {
      if (!ended.has(data.run_id)) keepingBottom(() => openReply().lastChild.append(data.content));
    } else if (data.chunk_type === "assistant_message") {
      replyStored(data.id);
      thread.sync();
    } else if (data.chunk_type === "tool_output") {
      thread.sync();
    }
  }

  function onEvent(event) {
    const data = event.data;
    if (event.type === "thread_message_created") {
      if (data.role === "assistant") replyStored(data.id);
      if (!thread.has(data.id)) thread.sync();
    } else if ((event.type === "run_created" || event.type === "run_updated")
               && data.trigger === "chat") {
      if (Zerg.FINAL.has(data.status)) turnEnded(data.id, data.status, data.error);
      else turnStarted(data.id, false);
    } else if (event.type === "stream_start") {
      turnStarted(data.run_id, false);
    } else if (event.type === "stream_chunk") {
      onStreamChunk(data);
    } else if (event.type === "stream_end") {
      turnEnded(data.run_id, data.status, data.error);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  stop.addEventListener("click", cancel);

  // (Re)connected: fetch what came while we were away (or since the page was rendered).
  Zerg.live([`thread:${threadId}`], onEvent, () => {
    thread.sync();
    checkTurn();
  });
  window.scrollTo(0, document.body.scrollHeight);
  text.focus();
})();
