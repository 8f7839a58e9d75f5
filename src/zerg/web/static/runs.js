// The run history kept live (its first page refreshes as runs come and change), and a run's
// page following its run until it ends.
"use strict";
(() => {
  const results = document.getElementById("run-results");
  if (results && results.dataset.live === "yes") followHistory(results);
  const run = document.getElementById("run");
  if (run && !Zerg.FINAL.has(run.dataset.status)) followRun(run);

  function followHistory(results) {
    let timer = null;
    let latest = 0; // the newest refresh asked for: an older answer arriving late is dropped
    function refresh() {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const asked = ++latest;
        const response = await fetch(`/runs-table${location.search}`, {
          credentials: "same-origin", headers: { Accept: "text/html" },
        });
        // A redirect is the sign-in page (the session ended): keep the rows as they are.
        if (!response.ok || response.redirected || asked !== latest) return;
        results.innerHTML = await response.text();
      }, 150);
    }
    Zerg.live(["agents"], (event) => {
      if (event.type === "run_created" || event.type === "run_updated") refresh();
    }, refresh); // subscribed: runs may have come since the page was rendered, or while away
  }

  function followRun(run) {
    const runId = Number(run.dataset.runId);
    const badge = document.getElementById("run-status");
    function show(data) {
      if (data.id !== runId) return;
      badge.className = `badge ${data.status}`;
      badge.textContent = data.status;
      // A finished run has its totals and messages: the server shows them.
      if (Zerg.FINAL.has(data.status)) location.reload();
    }
    Zerg.live([`run:${runId}`], (event) => {
      if (event.type === "run_created" || event.type === "run_updated") show(event.data);
    }, async () => {
      // What happened before the subscription (or while disconnected) is read once.
      const answer = await Zerg.api("GET", `/api/runs/${runId}`);
      if (answer.ok) show(answer.data);
    });
  }
})();
