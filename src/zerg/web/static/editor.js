// The agent editor: the schedule's next fires as you type, copy buttons, and an address bar
// that never re-posts a form (so a secret shown once is not shown, or created, again).
"use strict";
(() => {
  const editor = document.getElementById("editor");
  if (!editor) return;

  // A page answering a POST (errors, a new secret) reloads as the plain GET of its agent.
  const canonical = editor.dataset.canonical;
  if (canonical) history.replaceState(null, "", canonical + location.hash);
  document.getElementById("error-summary")?.focus();
  document.getElementById("new-secret")?.scrollIntoView({ block: "center" });

  const DEBOUNCE_MS = 300;
  const schedule = document.getElementById("schedule");
  const timezone = document.getElementById("timezone");
  const preview = document.getElementById("schedule-preview");
  let timer = null;
  let asked = 0;

  function showPreview(result) {
    const list = document.getElementById("fire-times");
    const note = document.getElementById("preview-note");
    const zone = document.getElementById("preview-zone");
    list.replaceChildren();
    if (!result.ok) {
      preview.dataset.state = "error";
      zone.textContent = "";
      note.textContent = result.data.detail;
      return;
    }
    const fires = result.data;
    zone.textContent = ` (${fires.timezone})`;
    for (const shown of fires.shown) {
      const item = document.createElement("li");
      item.textContent = shown;
      list.append(item);
    }
    preview.dataset.state = fires.shown.length ? "times" : "none";
    note.textContent = fires.shown.length
      ? "" : "No schedule: the agent runs when started or triggered.";
  }

  async function refreshPreview() {
    const ticket = ++asked;
    const query = new URLSearchParams({ schedule: schedule.value, timezone: timezone.value });
    preview.setAttribute("aria-busy", "true");
    const result = await Zerg.api("GET", `/agents/schedule-preview?${query}`);
    if (ticket !== asked) return; // an answer to older keystrokes than the latest
    preview.removeAttribute("aria-busy");
    showPreview(result);
  }

  function schedulePreview() {
    clearTimeout(timer);
    timer = setTimeout(refreshPreview, DEBOUNCE_MS);
  }

  if (schedule && timezone && preview) {
    for (const input of [schedule, timezone]) {
      input.addEventListener("input", schedulePreview);
      input.addEventListener("change", schedulePreview);
    }
  }

  // Copy buttons: the clipboard when the page may use it (HTTPS or localhost), otherwise the
  // text is selected for the user to copy.
  async function copy(button) {
    const input = document.getElementById(button.dataset.copy);
    const note = button.closest(".copy-row").parentElement.querySelector(".copy-note");
    try {
      await navigator.clipboard.writeText(input.value);
      note.textContent = "Copied.";
    } catch (error) {
      input.focus();
      input.select();
      note.textContent = "Selected: press Ctrl+C (⌘C on a Mac) to copy.";
    }
  }

  editor.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-copy]");
    if (button) copy(button);
  });
})();
