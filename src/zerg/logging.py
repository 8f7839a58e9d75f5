"""Logging configured once, at an entry point: one line per record on stderr, JSON lines for
a log collector or plain text for a person at a terminal, every line of a run tagged with the
run, its agent and its trigger, and secrets blotted out of every line."""

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["auto", "json", "text"]

# The run whose work is logging, where a run executes (see `run_context`).
_run: contextvars.ContextVar[tuple[int, int, str] | None] = contextvars.ContextVar(
    "zerg_run", default=None
)
RUN_FIELDS = ("run_id", "agent_id", "trigger")

# Secrets a log line must never carry, whoever logged them: API tokens (`zerg_` and 43
# characters), provider keys (`sk-...`), webhook secrets (`whsec_...`), credentials in an
# Authorization header or a URL, and values named like secrets (`password=...`).
_SECRETS = [
    (re.compile(r"\bzerg_[A-Za-z0-9_-]{20,}"), "zerg_***"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "sk-***"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]{8,}"), "whsec_***"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (re.compile(r"(?i)(\bauthorization\W{1,4})[^\s\"',}\\]+"), r"\1***"),
    (re.compile(r"(?i)(\w+://)[^/\s:@\"']+:[^/\s@\"']+@"), r"\1***@"),
    (
        re.compile(
            r"(?i)\b((?:api[_-]?key|password|passwd|secret|token|zerg_session)"
            r"[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)[^\s\"',;&}\\]+"
        ),
        r"\1***",
    ),
]
# Attributes every LogRecord has: anything else on a record came from `extra=` and is a field
# (but uvicorn's `color_message`, its message again with terminal colours).
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
}
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_TEXT_DATE = "%Y-%m-%dT%H:%M:%S"


def redact(text: str) -> str:
    """`text` with every secret that looks like one replaced by `***`."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


@contextmanager
def run_context(run_id: int, agent_id: int, trigger: str) -> Iterator[None]:
    """Tag every record logged inside the block (in this task, and in the threads and tasks it
    starts, which copy the context) with the run's id, agent and trigger."""
    token = _run.set((run_id, agent_id, trigger))
    try:
        yield
    finally:
        _run.reset(token)


class RunContextFilter(logging.Filter):
    """Adds `run_id`, `agent_id` and `trigger` to a record logged inside `run_context`."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _run.get()
        if current is not None and not hasattr(record, "run_id"):
            record.run_id, record.agent_id, record.trigger = current
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, the run's fields, any
    `extra=` fields, and the exception; uvicorn's access lines also get their parts as fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            line.update(_access_fields(record.args))
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(line, default=str, ensure_ascii=False))


def _access_fields(args: tuple[Any, ...]) -> dict[str, Any]:
    """uvicorn logs an access as (client, method, path, HTTP version, status)."""
    if len(args) != 5:
        return {}
    client, method, path, version, status = args
    return {"client": client, "method": method, "path": path, "status": status, "http": version}


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, with the run's fields at the end inside a run."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT, _TEXT_DATE)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if hasattr(record, "run_id"):
            fields = " ".join(f"{name}={getattr(record, name, '')}" for name in RUN_FIELDS)
            first, newline, rest = text.partition("\n")
            text = f"{first} [{fields}]{newline}{rest}"
        return redact(text)


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is when a record comes (a test's captured stream, or
    the real one), never to a stream closed since."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def resolve_format(log_format: str) -> Literal["json", "text"]:
    """`auto`: text for a person at a terminal, JSON lines for anything else."""
    if log_format == "auto":
        return "text" if sys.stderr.isatty() else "json"
    return "json" if log_format == "json" else "text"


def make_handler(log_format: str = "auto") -> logging.Handler:
    """A stderr handler with Zerg's formatter and run fields (also uvicorn's, by its config)."""
    handler = StderrHandler()
    json_lines = resolve_format(log_format) == "json"
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(RunContextFilter())
    return handler


def configure_logging(level: str, log_format: str = "auto") -> None:
    """Zerg's loggers at `level`, and every other library's warnings, through one handler.
    (DBOS adds a console handler of its own only to a `dbos` logger that has none.)"""
    handler = make_handler(log_format)
    for name, logger_level in (("zerg", level.upper()), ("dbos", None)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        if logger_level is not None:
            logger.setLevel(logger_level)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, StderrHandler)]
    root.addHandler(handler)


class DeniedHandshakeFilter(logging.Filter):
    """Drops uvicorn's "returned without completing handshake" error, which it logs for every
    WebSocket handshake refused with an HTTP answer (a 401, 403 or 421 the hub sends on
    purpose): anyone could fill the log with it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing handshake" not in record.getMessage()
