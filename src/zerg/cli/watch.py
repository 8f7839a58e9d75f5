"""`zerg runs watch`: runs as they change, live from the server's WebSocket hub: a table in a
terminal, one line (or one JSON line) per change otherwise."""

import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.table import Table
from websockets.exceptions import WebSocketException

from zerg.cli.common import all_pages, parse_answer, server_json
from zerg.cli.streams import open_hub
from zerg.schemas.common import Page
from zerg.schemas.runs import RunRead, RunStatus
from zerg.settings import Settings

RUN_EVENTS = frozenset({"run_created", "run_updated"})
AGENT_EVENTS = frozenset({"agent_created", "agent_updated"})
RETRY_MIN_S, RETRY_MAX_S = 0.5, 10.0
# Runs remembered to tell a change from a repeat; the oldest are forgotten first.
REMEMBERED = 1000
_STYLES = {
    RunStatus.QUEUED: "dim",
    RunStatus.RUNNING: "yellow",
    RunStatus.SUCCEEDED: "green",
    RunStatus.FAILED: "red",
    RunStatus.CANCELLED: "magenta",
    RunStatus.TIMED_OUT: "red",
}


@dataclass(frozen=True)
class WatchOptions:
    agent: int | None
    statuses: frozenset[RunStatus]
    limit: int
    as_json: bool
    count: int | None


def duration(run: RunRead, now: datetime) -> str:
    if run.duration_ms is not None:
        seconds = run.duration_ms / 1000
    elif run.started_at is not None and run.status == RunStatus.RUNNING:
        seconds = max(0.0, (now - run.started_at).total_seconds())
    else:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} m {int(seconds % 60):02d} s"


def _clock(value: datetime | None) -> str:
    return value.astimezone().strftime("%H:%M:%S") if value is not None else "-"


def _cost(run: RunRead) -> str:
    return f"${run.cost_usd:.4f}" if run.cost_usd is not None else "-"


class Board:
    """The runs seen so far and the names of their agents, kept current from the hub's events."""

    def __init__(self, options: WatchOptions) -> None:
        self.options = options
        self.runs: dict[int, RunRead] = {}
        self.agents: dict[int, str] = {}
        self.note = "connecting…"

    def matches(self, run: RunRead) -> bool:
        return not self.options.statuses or run.status in self.options.statuses

    def apply(self, run: RunRead) -> bool:
        """Remember `run`; whether it is a change the watch shows."""
        changed = self.runs.get(run.id) != run
        self.runs[run.id] = run
        if len(self.runs) > REMEMBERED:
            del self.runs[min(self.runs)]
        return changed and self.matches(run)

    def agent(self, agent_id: int) -> str:
        name = self.agents.get(agent_id)
        return f"{name} ({agent_id})" if name is not None else str(agent_id)

    def line(self, run: RunRead) -> str:
        return (
            f"run {run.id}: {run.status:9} agent {self.agent(run.agent_id)}, {run.trigger}, "
            f"{duration(run, datetime.now(UTC))}, {run.total_tokens} tokens, {_cost(run)}"
        )

    def table(self) -> Table:
        now = datetime.now(UTC)
        table = Table(caption=self.note, caption_justify="left", expand=False)
        for name in ("ID", "AGENT", "TRIGGER", "STATUS", "QUEUED / STARTED"):
            table.add_column(name, no_wrap=True)
        for name in ("DURATION", "TOKENS", "COST"):
            table.add_column(name, justify="right", no_wrap=True)
        shown = [run for run in self.runs.values() if self.matches(run)]
        for run in sorted(shown, key=lambda r: r.id, reverse=True)[: self.options.limit]:
            table.add_row(
                str(run.id),
                self.agent(run.agent_id),
                run.trigger,
                f"[{_STYLES[run.status]}]{run.status}[/]",
                f"{_clock(run.queued_at)} / {_clock(run.started_at)}",
                duration(run, now),
                str(run.total_tokens),
                _cost(run),
            )
        return table


class Output(Protocol):
    def __enter__(self) -> "Output": ...
    def __exit__(self, *exc: object) -> None: ...
    def connected(self, url: str, again: bool) -> None: ...
    def lost(self, reason: str, retry_s: float) -> None: ...
    def show(self, message: dict[str, Any], run: RunRead) -> None: ...


class LiveTable:
    """A table redrawn in place (running durations tick)."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.live = Live(get_renderable=board.table, console=Console(), refresh_per_second=2)

    def __enter__(self) -> "LiveTable":
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def connected(self, url: str, again: bool) -> None:
        self.board.note = f"live from {url} · Ctrl-C to stop"

    def lost(self, reason: str, retry_s: float) -> None:
        self.board.note = f"lost the connection ({reason}): reconnecting in {retry_s:g} s"

    def show(self, message: dict[str, Any], run: RunRead) -> None:
        self.live.refresh()


class Lines:
    """One line per change on stdout (JSON lines: the hub's messages), news on stderr."""

    def __init__(self, board: Board, as_json: bool) -> None:
        self.board, self.as_json = board, as_json

    def __enter__(self) -> "Lines":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def connected(self, url: str, again: bool) -> None:
        what = "reconnected to" if again else "watching runs at"
        typer.echo(f"{what} {url} (Ctrl-C to stop)", err=True)

    def lost(self, reason: str, retry_s: float) -> None:
        typer.echo(f"lost the connection ({reason}): reconnecting in {retry_s:g} s", err=True)

    def show(self, message: dict[str, Any], run: RunRead) -> None:
        if self.as_json:
            typer.echo(json.dumps(message, separators=(",", ":")))
        else:
            typer.echo(self.board.line(run))


class Watch:
    def __init__(self, settings: Settings, options: WatchOptions) -> None:
        self.settings, self.options = settings, options
        self.board = Board(options)
        self.table = sys.stdout.isatty() and not options.as_json
        self.output: Output = (
            LiveTable(self.board) if self.table else Lines(self.board, options.as_json)
        )
        self.topic = f"agent:{options.agent}" if options.agent is not None else "agents"
        self.shown = 0
        self.delay = RETRY_MIN_S

    def run(self) -> None:
        # The usual one-line errors for a server that is down or refuses the token.
        server_json(self.settings, "GET", "/api/me")
        if not self.options.as_json:
            self._learn_agents(all_pages(self.settings, "/api/agents"))
        again = False
        with self.output:
            while (reason := self._follow(again)) is not None:
                self.output.lost(reason, self.delay)
                time.sleep(self.delay)
                self.delay, again = min(self.delay * 2, RETRY_MAX_S), True

    def _follow(self, again: bool) -> str | None:
        """Follow the hub until --count changes were shown (None), or until the connection
        drops (why)."""
        try:
            with open_hub(self.settings, [self.topic]) as ws:
                self.delay = RETRY_MIN_S
                # What changed while no connection was open (the first time: what is there).
                if self._catch_up(show=again):
                    return None
                self.output.connected(self.settings.resolved_server_url, again)
                for raw in ws:
                    message = json.loads(raw)
                    if message.get("type") in AGENT_EVENTS:
                        self._learn_agents([message.get("data")])
                    elif message.get("type") in RUN_EVENTS and self._event(message):
                        return None
            return "the server closed it"
        except (WebSocketException, OSError, httpx.TransportError) as exc:
            return str(exc) or type(exc).__name__

    def _catch_up(self, *, show: bool) -> bool:
        params: dict[str, Any] = {"limit": self.options.limit if self.table else 50}
        if self.options.agent is not None:
            params["agent_id"] = self.options.agent
        data = server_json(self.settings, "GET", "/api/runs", params=params, raise_unreachable=True)
        parse_answer(Page[RunRead], data)
        for item in reversed(data["items"]):
            message = {"type": "run_updated", "topic": self.topic, "id": None, "data": item}
            if self._event(message, show=show):
                return True
        return False

    def _event(self, message: dict[str, Any], *, show: bool = True) -> bool:
        """Take in a run's new state and show it if it changed; True once --count changes
        were shown."""
        try:
            run = RunRead.model_validate(message.get("data"))
        except ValidationError:
            return False  # not a run this client understands: a newer server's
        if not self.board.apply(run) or not show:
            return False
        self.output.show(message, run)
        self.shown += 1
        return self.options.count is not None and self.shown >= self.options.count

    def _learn_agents(self, agents: list[Any]) -> None:
        for agent in agents:
            # An update may carry only what changed (a status): a name is taken when there is one.
            if isinstance(agent, dict) and isinstance(agent.get("name"), str):
                self.board.agents[agent["id"]] = agent["name"]
