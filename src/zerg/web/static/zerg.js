// Zerg's dashboard: what every page shares. Calls to the API carry the page's CSRF token;
// live updates come over one WebSocket (/api/ws) that reconnects by itself.
"use strict";
(() => {
  const SIGNED_OUT = 4401; // the hub's close code for a sign-in that has ended
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

  /** Call the API: resolves to {ok, status, data}; data.detail says what went wrong. */
  async function api(method, path, body) {
    const headers = { "X-CSRF-Token": csrf, Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      return { ok: false, status: 0, data: { detail: "Zerg did not answer; is it running?" } };
    }
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch (error) { data = null; }
    }
    if (!response.ok && !(data && data.detail)) {
      data = { detail: `request failed (HTTP ${response.status})` };
    }
    return { ok: response.ok, status: response.status, data };
  }

  /**
   * Follow `topics` live. `onEvent(message)` gets every event ({type, topic, id, data});
   * `onOpen()` runs on every (re)connection once the server has the subscription in place:
   * then a page reads what it may have missed (since it was rendered, or while the socket
   * was down) and no later change can slip by. Returns {subscribe(topics), close()}.
   */
  function live(topics, onEvent, onOpen) {
    const wanted = new Set(topics);
    let socket = null;
    let delay = 500;
    let closed = false;
    const state = document.getElementById("live-state");
    // The page's #live-state says how live updates stand, in words and in `data-state`:
    // `live` (subscribed), `paused` (reconnecting) or `ended` (signed out).
    const show = (text, status) => {
      if (!state) return;
      state.textContent = text;
      state.dataset.state = status;
    };
    // Once the sign-in the socket was opened with has ended (closed with SIGNED_OUT),
    // connecting again would be refused: the page says so and offers a new sign-in.
    function signInAgain() {
      if (!state) return;
      const link = document.createElement("a");
      link.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
      link.textContent = "Sign in again";
      state.replaceChildren("Your session has ended, and live updates with it. ", link);
      state.dataset.state = "ended";
    }

    function connect() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      socket = new WebSocket(`${scheme}://${location.host}/api/ws`);
      let opening = true;
      const opened = () => {
        opening = false;
        show("", "live");
        if (onOpen) onOpen();
      };
      socket.onopen = () => {
        delay = 500;
        if (wanted.size) socket.send(JSON.stringify({ type: "subscribe", topics: [...wanted] }));
        else opened();
      };
      socket.onmessage = (message) => {
        let event;
        try { event = JSON.parse(message.data); } catch (error) { return; }
        if (event.type === "subscribed" && opening) opened();
        else if (event.topic !== undefined && event.data !== undefined) onEvent(event);
      };
      socket.onclose = (event) => {
        if (closed) return;
        if (event.code === SIGNED_OUT) {
          signInAgain();
          return;
        }
        show("Live updates paused; reconnecting…", "paused");
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000);
      };
    }
    connect();
    return {
      subscribe(more) {
        const added = more.filter((topic) => !wanted.has(topic));
        added.forEach((topic) => wanted.add(topic));
        if (added.length && socket && socket.readyState === WebSocket.OPEN) {
          socket.send(JSON.stringify({ type: "subscribe", topics: added }));
        }
      },
      close() { closed = true; if (socket) socket.close(); },
    };
  }

  /** A time as the server shows it (UTC, to the second). */
  function when(iso) {
    if (!iso) return "—";
    return new Date(iso).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  const FINAL = new Set(["succeeded", "failed", "cancelled", "timed_out"]);
  window.Zerg = { api, live, when, csrf, FINAL };
})();
