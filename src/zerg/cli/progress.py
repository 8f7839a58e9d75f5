"""What `zerg agents run --wait` shows on stderr while it waits: the run's status and its steps,
as a spinner in a terminal and as plain lines otherwise."""

import json
import queue
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import httpx
import typer
from rich.console import Console

from zerg.cli.common import parse_answer, server_json
from zerg.cli.streams import TERMINAL_EVENTS, RunEvents, SseEvent
from zerg.schemas.runs import RunRead, RunStatus
from zerg.settings import Settings

SHORT = 100
POLL_S = 1.0
FINAL_STATUSES = frozenset(RunStatus) - {RunStatus.QUEUED, RunStatus.RUNNING}


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= SHORT else f"{line[: SHORT - 1]}…"


def _call(call: dict[str, Any]) -> str:
    args = call.get("args")
    return f"{call.get('name', '?')}({_short(json.dumps(args)) if args else ''})"


def describe(event: SseEvent) -> str | None:
    """One line for an event worth showing: status changes, tool calls and answers."""
    if event.event == "run.queued":
        return "queued"
    if event.event == "run.started":
        return "running"
    if event.event != "message.created":
        return None  # token deltas, and the terminal event, which the result line reports
    message = event.json()
    role, content = message.get("role"), str(message.get("content") or "")
    if role == "assistant" and message.get("tool_calls"):
        return "calling " + ", ".join(_call(c) for c in message["tool_calls"])
    if role == "assistant" and content:
        return f"assistant: {_short(content)}"
    if role == "tool":
        name = message.get("name")
        return f"tool {name}: {_short(content)}" if name else f"tool: {_short(content)}"
    return None  # the system and user messages: the agent's own instructions


class Reporter(Protocol):
    def step(self, text: str) -> None: ...


class _Lines:
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id

    def step(self, text: str) -> None:
        typer.echo(f"run {self.run_id}: {text}", err=True)


class _Spinner:
    def __init__(self, run_id: int, console: Console, status: Any) -> None:
        self.run_id, self.console, self.status = run_id, console, status

    def step(self, text: str) -> None:
        if text in ("queued", "running"):
            self.status.update(f"run {self.run_id}: {text}")
        else:
            self.console.print(f"  {text}", markup=False, highlight=False)


@contextmanager
def reporter(run_id: int) -> Iterator[Reporter]:
    if not sys.stderr.isatty():
        yield _Lines(run_id)
        return
    console = Console(stderr=True)
    with console.status(f"run {run_id}: queued") as status:
        yield _Spinner(run_id, console, status)


def _read_run(settings: Settings, run_id: int) -> RunRead:
    return parse_answer(RunRead, server_json(settings, "GET", f"/api/runs/{run_id}"))


def wait_with_progress(settings: Settings, run: RunRead, timeout: float) -> RunRead:
    """Follow the run's events until it ends or `timeout` passes; the run as it then is."""
    deadline = time.monotonic() + timeout
    shown: str | None = None
    with reporter(run.id) as report, RunEvents(settings, run.id) as events:
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                event = events.get(timeout=remaining)
            except queue.Empty:
                break
            except (httpx.HTTPError, ValueError):
                return _poll(settings, run.id, deadline, report)
            if event is None:
                break
            line = describe(event)
            # A resumed stream can repeat the status it stopped at.
            if line is not None and not (line == shown and line in ("queued", "running")):
                report.step(line)
                shown = line
            if event.event in TERMINAL_EVENTS:
                return parse_answer(RunRead, event.json())
    return _read_run(settings, run.id)


def _poll(settings: Settings, run_id: int, deadline: float, report: Reporter) -> RunRead:
    """Status changes only, read every second: for a server whose event stream cannot be read
    (a proxy that buffers it, say)."""
    shown = None
    while True:
        run = _read_run(settings, run_id)
        if run.status != shown and run.status not in FINAL_STATUSES:
            report.step(run.status)
            shown = run.status
        if run.status in FINAL_STATUSES or time.monotonic() + POLL_S > deadline:
            return run
        time.sleep(POLL_S)
