"""`zerg runs watch`: runs as they change, from the WebSocket hub of a real server. The watch
runs as a real process, so that it can be interrupted with Ctrl-C (SIGINT)."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx
import pytest
from rich.console import Console

from tests.cli.runner import Cli, error_line
from tests.support.postgres import free_port
from tests.support.processes import ZergProcess
from zerg.cli.watch import Board, WatchOptions, duration
from zerg.schemas.runs import RunRead, RunStatus

WAIT_S = 30


class Watcher:
    """`zerg runs watch ARGS` in a child process, its stdout and stderr read line by line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        zerg = Path(sys.executable).parent / "zerg"
        self.process = subprocess.Popen(
            [str(zerg), "runs", "watch", *args],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self.readers: list[threading.Thread] = []
        self.stdout = self._reader(self.process.stdout)
        self.stderr = self._reader(self.process.stderr)

    def _reader(self, stream: IO[str]) -> "queue.Queue[str]":
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            with stream:
                for line in stream:
                    lines.put(line)

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        self.readers.append(thread)
        return lines

    @staticmethod
    def line(lines: "queue.Queue[str]") -> str:
        return lines.get(timeout=WAIT_S).rstrip("\n")

    def wait_for_news(self, start: str) -> str:
        """The next stderr line, which must start with `start`."""
        line = self.line(self.stderr)
        assert line.startswith(start), line
        return line

    def events_until_finished(self) -> list[dict[str, object]]:
        events = []
        while True:
            event = json.loads(self.line(self.stdout))
            events.append(event)
            if event["data"]["status"] not in ("queued", "running"):  # type: ignore[index]
                return events

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=WAIT_S)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT_S)
        for reader in self.readers:  # each closes its pipe at the end of the output
            reader.join(timeout=WAIT_S)


@pytest.fixture
def watchers() -> Iterator[list[Watcher]]:
    started: list[Watcher] = []
    yield started
    for watcher in started:
        watcher.stop()


def make_agent(base_url: str, name: str = "calc") -> int:
    agent = httpx.post(
        f"{base_url}/api/agents",
        json={"name": name, "model": "scripted:demo", "task_instructions": "What is 6 * 7?"},
    )
    agent.raise_for_status()
    return int(agent.json()["id"])


def run_task(base_url: str, agent_id: int) -> int:
    run = httpx.post(f"{base_url}/api/agents/{agent_id}/task?wait=true", timeout=WAIT_S)
    run.raise_for_status()
    return int(run.json()["id"])


def test_json_lines_follow_a_run_and_ctrl_c_exits_0(
    api_cli: Cli, base_url: str, watchers: list[Watcher]
) -> None:
    agent_id = make_agent(base_url)
    watcher = Watcher(api_cli.env, "--json")
    watchers.append(watcher)
    watcher.wait_for_news(f"watching runs at {base_url}")

    run_id = run_task(base_url, agent_id)
    events = watcher.events_until_finished()

    assert events[0]["type"] == "run_created"
    assert {e["type"] for e in events[1:]} == {"run_updated"}
    statuses = [e["data"]["status"] for e in events]  # type: ignore[index]
    assert statuses[0] == "queued" and "running" in statuses and statuses[-1] == "succeeded"
    assert all(e["data"]["id"] == run_id and e["topic"] == "agents" for e in events)  # type: ignore[index]
    final = events[-1]["data"]
    assert final == httpx.get(f"{base_url}/api/runs/{run_id}").json()
    assert watcher.interrupt() == 0


def test_lines_filtered_by_agent_and_status_stop_after_count(
    api_cli: Cli, base_url: str, watchers: list[Watcher]
) -> None:
    calc, other = make_agent(base_url, "calc"), make_agent(base_url, "other")
    watcher = Watcher(api_cli.env, "--agent", str(calc), "--status", "succeeded", "--count", "1")
    watchers.append(watcher)
    watcher.wait_for_news("watching runs at")

    run_task(base_url, other)
    run_id = run_task(base_url, calc)

    line = watcher.line(watcher.stdout)
    assert watcher.process.wait(timeout=WAIT_S) == 0
    assert line.startswith(f"run {run_id}: succeeded agent calc ({calc}), manual, ")
    assert " tokens, " in line
    assert watcher.stdout.empty()


def test_reconnects_when_the_server_restarts(zerg: ZergProcess, watchers: list[Watcher]) -> None:
    zerg.start()
    agent_id = make_agent(zerg.url)
    watcher = Watcher({**zerg.env, "ZERG_SERVER_URL": zerg.url}, "--json")
    watchers.append(watcher)
    watcher.wait_for_news("watching runs at")

    zerg.kill()
    watcher.wait_for_news("lost the connection")
    zerg.start()
    while not (line := watcher.line(watcher.stderr)).startswith("reconnected to"):
        assert line.startswith("lost the connection"), line
    run_id = run_task(zerg.url, agent_id)

    events = watcher.events_until_finished()
    assert events[-1]["data"]["id"] == run_id  # type: ignore[index]
    assert events[-1]["data"]["status"] == "succeeded"  # type: ignore[index]
    assert watcher.interrupt() == 0


def test_an_agent_you_cannot_see_and_no_server_are_one_error_line(api_cli: Cli, cli: Cli) -> None:
    assert error_line(api_cli("runs", "watch", "--agent", "99"), 3) == (
        "error: agent 99 does not exist"
    )
    no_server = cli("runs", "watch", ZERG_SERVER_URL=f"http://127.0.0.1:{free_port()}")
    assert "start it with `zerg serve`" in error_line(no_server, 1)


def _run(run_id: int, status: RunStatus, **fields: object) -> RunRead:
    queued = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    values: dict[str, object] = {
        "id": run_id,
        "agent_id": 1,
        "thread_id": None,
        "trigger": "manual",
        "status": status,
        "queued_at": queued,
        "started_at": queued + timedelta(seconds=1),
        "finished_at": None,
        "duration_ms": None,
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "cost_usd": None,
        "error": None,
    }
    return RunRead.model_validate(values | fields)


def test_the_table_shows_the_newest_matching_runs() -> None:
    options = WatchOptions(
        agent=None,
        statuses=frozenset({RunStatus.SUCCEEDED, RunStatus.RUNNING}),
        limit=2,
        as_json=False,
        count=None,
    )
    board = Board(options)
    board.agents[1] = "calc"
    done = _run(1, RunStatus.SUCCEEDED, duration_ms=1500, total_tokens=42, cost_usd=0.0012)
    assert board.apply(done)
    assert not board.apply(done)  # the same state again is no change
    assert not board.apply(_run(2, RunStatus.FAILED))  # filtered out
    board.apply(_run(3, RunStatus.RUNNING))
    board.apply(_run(4, RunStatus.RUNNING))

    console = Console(record=True, width=140)
    console.print(board.table())
    rows = [line for line in console.export_text().splitlines() if "calc (1)" in line]

    assert [row.split()[1] for row in rows] == ["4", "3"]  # newest first, at most --limit
    assert board.line(done) == (
        "run 1: succeeded agent calc (1), manual, 1.5 s, 42 tokens, $0.0012"
    )


def test_duration_ticks_while_running_and_is_final_once_finished() -> None:
    running = _run(1, RunStatus.RUNNING)
    assert duration(running, running.started_at + timedelta(seconds=75)) == "1 m 15 s"  # type: ignore[operator]
    assert duration(_run(2, RunStatus.SUCCEEDED, duration_ms=2500), datetime.now(UTC)) == "2.5 s"
    assert duration(_run(3, RunStatus.QUEUED, started_at=None), datetime.now(UTC)) == "-"
