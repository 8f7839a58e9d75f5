"""zerg.logging: JSON lines or text, every line of a run tagged with it, secrets redacted."""

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.test_run_control import hanging_agent
from tests.support.openai_server import FakeOpenAI
from tests.support.processes import ZergProcess
from zerg import logging as zerg_logging
from zerg.logging import JsonFormatter, RunContextFilter, TextFormatter, redact, run_context

TOKEN = "zerg_" + "Ab3" * 14 + "x"  # the shape of an API token: zerg_ and 43 characters


class Lines(logging.Handler):
    """Formats every record as Zerg's handler would, keeping the lines and their threads."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.addFilter(RunContextFilter())
        self.lines: list[tuple[int | None, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.thread, self.format(record)))


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    """Every record of every logger, at DEBUG, as JSON lines."""
    handler = Lines(JsonFormatter())
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    zerg = logging.getLogger("zerg")
    zerg.addHandler(handler)  # also when an entry point stopped it propagating
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        zerg.removeHandler(handler)
        root.setLevel(saved)


def record(message: str, *args: Any, **fields: Any) -> logging.LogRecord:
    made = logging.LogRecord("zerg.test", logging.WARNING, __file__, 1, message, args, None)
    for name, value in fields.items():
        setattr(made, name, value)
    return made


def test_a_json_line_has_the_record_and_its_run() -> None:
    tagged = record("run %s failed", 7, extra_field="x")
    with run_context(7, 3, "webhook"):
        RunContextFilter().filter(tagged)

    line = json.loads(JsonFormatter().format(tagged))

    assert line["level"] == "WARNING" and line["logger"] == "zerg.test"
    assert line["message"] == "run 7 failed"
    assert (line["run_id"], line["agent_id"], line["trigger"]) == (7, 3, "webhook")
    assert line["extra_field"] == "x"
    assert line["time"].endswith("+00:00")
    plain = record("outside")
    RunContextFilter().filter(plain)
    assert "run_id" not in json.loads(JsonFormatter().format(plain))


def test_a_text_line_ends_with_the_run() -> None:
    tagged = record("step")
    with run_context(7, 3, "api"):
        RunContextFilter().filter(tagged)

    line = TextFormatter().format(tagged)

    assert " WARNING zerg.test: step [run_id=7 agent_id=3 trigger=api]" in line


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"token {TOKEN} refused", TOKEN),
        ("OPENAI_API_KEY=sk-proj-abcdefghijklmnop1234", "sk-proj-abcdefghijklmnop1234"),
        ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("headers {'authorization': 'Bearer abc.def.ghi-123'}", "abc.def.ghi-123"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("posting to https://ada:hunter2@hooks.example.com/x", "hunter2"),
        ('{"password": "correct horse"}', "correct"),
        ("GET /hooks/x?api_key=s3cr3tvalue&x=1", "s3cr3tvalue"),
    ],
)
def test_secrets_are_redacted(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "***" in redact(text)


def test_what_is_no_secret_stays() -> None:
    text = "run 7: total_tokens=12 input_tokens: 3, zerg_events channel, 4 tokens"
    assert redact(text) == text


def test_auto_is_text_on_a_terminal_and_json_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zerg_logging.sys.stderr, "isatty", lambda: True, raising=False)
    assert zerg_logging.resolve_format("auto") == "text"
    monkeypatch.setattr(zerg_logging.sys.stderr, "isatty", lambda: False, raising=False)
    assert zerg_logging.resolve_format("auto") == "json"
    assert zerg_logging.resolve_format("text") == "text"


def test_every_line_a_run_logs_carries_its_run(
    client: httpx.Client, openai_server: FakeOpenAI, json_lines: Lines
) -> None:
    """The run's own lines (Zerg's), and its model client's (openai, and httpx2 under it):
    all tagged."""
    openai_server.reply_error(500, {"error": {"message": f"bad key {TOKEN}"}})
    agent = hanging_agent(client, openai_server)
    test_thread = threading.get_ident()

    run = client.post(f"/api/agents/{agent['id']}/task?wait=true").json()

    assert run["status"] == "failed"
    during = [
        json.loads(line)
        for thread, line in json_lines.lines
        if thread != test_thread and '"logger": "uvicorn' not in line
    ]
    run_lines = [
        line for line in during if line["logger"].startswith(("zerg.services", "openai", "httpx"))
    ]
    loggers = {line["logger"] for line in run_lines}
    assert {"zerg.services.task_runs", "openai._base_client", "httpx2"} <= loggers
    for line in run_lines:
        assert (line.get("run_id"), line.get("agent_id"), line.get("trigger")) == (
            run["id"],
            agent["id"],
            run["trigger"],
        ), line
    assert TOKEN not in "\n".join(line for _, line in json_lines.lines)


def test_zerg_serve_logs_json_lines_without_secrets(zerg: ZergProcess) -> None:
    zerg.start()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{zerg.url}/health?token={TOKEN}", headers=headers).status_code == 200
    assert httpx.get(f"{zerg.url}/api/me", headers=headers).status_code == 200
    zerg.stop()

    text = zerg.log.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    [access] = [line for line in lines if "token" in str(line.get("path"))]
    assert access["logger"] == "uvicorn.access" and access["status"] == 200
    assert access["path"] == "/health?token=***"
    assert any(line["message"].startswith("database ready at") for line in lines)
    assert TOKEN not in text
    assert "color_message" not in text
