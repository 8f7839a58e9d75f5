"""The API under a schema-driven fuzzer (Schemathesis): whatever the input, and whatever the order
of calls, no answer is a 5xx and every error is `{"detail", "code"}`.

Schemathesis runs as its command line does (examples, coverage, fuzzing, then stateful sequences
that follow the OpenAPI links from each created object to the operations on it) against one real
server on loopback, on SQLite: the database adds nothing to what input validation does. A fixed
seed makes the run repeatable and a failure reproducible.
"""

import contextlib
import itertools
import json
import socket
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from schemathesis import Case, CheckContext, HookContext, Response
from schemathesis.config import InferenceAlgorithm
from schemathesis.engine import Status, events, from_schema
from schemathesis.engine.recorder import ScenarioRecorder
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.support.server import serve_in_thread
from zerg.api.app import create_app
from zerg.db.engine import create_db_engine
from zerg.db.migrate import upgrade
from zerg.settings import Settings

pytestmark = pytest.mark.filterwarnings(
    # The server runs in this process (so that the network guard covers it), and the run
    # engine's queue thread draws from the global `random` now and then: Hypothesis sees the
    # global state move during a draw and blames the strategies, which do not use it.
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
SEED = 20261130
MAX_EXAMPLES = 50  # per operation and phase
SCENARIOS = 60  # sequences of calls in the stateful phase


@schemathesis.check
def error_shape(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """An error answer is a JSON object with a non-empty `detail` and `code` (plus `errors`
    on a validation error), like every error the API documents."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:  # not UTF-8, or not JSON
        text = response.text_lossy()[:200]
        raise AssertionError(f"the error body is not JSON: {text!r}") from None
    assert isinstance(body, dict), f"the error body is not an object: {body!r}"
    extra = {"errors"} if body.get("code") == "validation_error" else set()
    assert {"detail", "code"} <= set(body) <= {"detail", "code"} | extra, body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert isinstance(body["code"], str) and body["code"], body
    return None


# The server under test: its URL and its SQLite file (one at a time).
_SERVER: dict[str, Path] = {}
_deliveries = itertools.count()


@schemathesis.hook
def before_call(ctx: HookContext, case: Case, **kwargs: object) -> None:
    """Every other delivery (`POST /hooks/{public_id}`) goes to a trigger that exists, made when
    none does. A trigger's public id is random and no generator guesses it; the stateful phase
    reaches one only through a created trigger, before anything deletes it, which happened
    once in a whole run, and in some runs never."""
    if ctx.operation is None or ctx.operation.label != "POST /hooks/{public_id}":
        return
    if next(_deliveries) % 2 == 0:
        (url, database), *_ = _SERVER.items()
        case.path_parameters = {
            **(case.path_parameters or {}),
            "public_id": _a_trigger(url, database),
        }


def _a_trigger(url: str, database: Path) -> str:
    """The public id of the newest trigger, created (with its agent) when there is none."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        row = db.execute("SELECT public_id FROM triggers ORDER BY id DESC LIMIT 1").fetchone()
    if row is not None:
        return str(row[0])
    agent = {"name": "hooked", "model": "scripted:echo", "task_instructions": "Say hi."}
    with httpx.Client(base_url=url) as http:
        agent_id = http.post("/api/agents", json=agent).json()["id"]
        return str(http.post(f"/api/agents/{agent_id}/triggers", json={}).json()["public_id"])


def _only_loopback(host: object, *args: object, **kwargs: object) -> object:
    # The network guard refuses connections; this refuses the name lookups before them, so
    # an agent's notify_url or http_get call made by the fuzzer sends no DNS query either.
    if host in ("localhost", "127.0.0.1", "::1", None, b"localhost", b"127.0.0.1"):
        return _getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]
    raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no names ({host!r})")


_getaddrinfo = socket.getaddrinfo


@pytest.fixture
def fuzz_url(tmp_path: Path) -> Iterator[str]:
    config = Settings(database_url=f"sqlite:///{tmp_path / 'zerg.db'}", data_dir=tmp_path / "data")
    engine = create_db_engine(config.resolved_database_url)
    upgrade(engine)
    engine.dispose()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", _only_loopback)
        with serve_in_thread(create_app(config)) as url:
            _seed(url)
            _SERVER[url] = tmp_path / "zerg.db"
            try:
                yield url
            finally:
                _SERVER.clear()


def _seed(url: str) -> None:
    """One object of each kind, each with id 1: the first value the generators try.

    The operations run one after another in each phase, the agents' first, and deleting an
    agent deletes its threads: the thread belongs to agent 4, past the ids 1 to 3 that the
    coverage phase tries, so that it is still there for the thread operations. No generator
    guesses a trigger's random public id: deliveries reach a trigger through `before_call`, and
    through the stateful phase's link from a created trigger's `public_id`.
    """
    agent = {"name": "seeded", "model": "scripted:echo", "task_instructions": "Say hi."}
    with httpx.Client(base_url=url) as http:
        created = [
            (http.post("/api/agents", json={**agent, "concurrency": "queue"}), 1),
            (http.post("/api/agents", json=agent), 2),
            (http.post("/api/agents", json=agent), 3),
            (http.post("/api/agents", json=agent), 4),
            (http.post("/api/threads", json={"agent_id": 4}), 1),
            (http.post("/api/agents/1/task"), 1),
            (http.post("/api/agents/1/triggers", json={}), 1),
        ]
    for response, expected_id in created:
        assert response.is_success and response.json()["id"] == expected_id, response.text


def _schema(base_url: str) -> OpenApiSchema:
    """The served schema (with its links), and a run that checks only what this test is for."""
    config = schemathesis.Config(seed=SEED)
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)
    schema.config.update(base_url=base_url)
    schema.config.checks.update(included_check_names=["not_a_server_error", "error_shape"])
    schema.config.phases.update(phases=["examples", "coverage", "fuzzing", "stateful"])
    schema.config.generation.update(max_examples=MAX_EXAMPLES, database="none")
    stateful = schema.config.phases.stateful
    stateful.generation.update(max_examples=SCENARIOS, database="none")
    # Links come from the schema alone. Learning more from the URLs in responses builds a router
    # on the main thread while a worker thread parses source for Hypothesis, and on Python 3.11
    # two threads building ASTs at once can fail ("AST constructor recursion depth mismatch").
    stateful.inference.algorithms = [InferenceAlgorithm.DEPENDENCY_ANALYSIS]
    return schema


@dataclass
class Run:
    """What a run did: the answers each operation gave, and the failures found."""

    answers: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, event: events.EngineEvent) -> None:
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            for case_id, interaction in recorder.interactions.items():
                if interaction.response is not None:
                    label = recorder.cases[case_id].value.operation.label
                    self.answers[label].append(_answer(interaction.response))
            if event.status == Status.FAILURE:
                self.failures.extend(_describe(recorder))
        elif isinstance(event, events.NonFatalError):
            self.failures.append(f"{event.label}: {event.info}")
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.EngineFinished):
            self.seconds = event.running_time

    def unreached(self) -> list[str]:
        """Operations that never got past input validation or the lookup of an unknown id."""
        missed = {(404, "not_found"), (405, "method_not_allowed"), (422, "validation_error")}
        return sorted(op for op, seen in self.answers.items() if not set(seen) - missed)

    def figures(self) -> str:
        calls = sum(map(len, self.answers.values()))
        lines = [f"{calls} calls to {len(self.answers)} operations in {self.seconds:.1f}s"]
        for label, seen in sorted(self.answers.items()):
            statuses = sorted({status for status, _ in seen})
            lines.append(f"  {label}: {len(seen)} calls, statuses {statuses}")
        return "\n".join(lines)


def _answer(response: Response) -> tuple[int, str]:
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body.get("code", "") if isinstance(body, dict) else ""


def _describe(recorder: ScenarioRecorder) -> Iterator[str]:
    """Each failed check: the operation, what failed, the response, and a curl to replay it."""
    for case_id, checks in recorder.checks.items():
        interaction = recorder.interactions.get(case_id)
        response = interaction.response if interaction is not None else None
        answer = "" if response is None else f"{response.status_code} {response.text_lossy()[:500]}"
        for check in checks:
            if check.failure_info is not None:
                failure = check.failure_info.failure
                yield (
                    f"{failure.operation}: {failure.title}\n{failure.message}\n"
                    f"{answer}\n{check.failure_info.code_sample}"
                )


def test_no_input_and_no_sequence_of_calls_makes_the_api_fail(fuzz_url: str) -> None:
    schema = _schema(fuzz_url)
    run = Run()
    for event in from_schema(schema).execute():
        run.add(event)

    print(run.figures())
    assert not run.failures, "\n\n".join(dict.fromkeys(run.failures))
    # Every operation was called, and the links and the seeded objects took each one past
    # input validation and unknown ids to real objects.
    assert len(run.answers) == len(list(schema.get_all_operations()))
    assert not run.unreached(), run.figures()


def test_every_id_in_a_path_is_linked_from_the_operation_that_creates_it(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'zerg.db'}", data_dir=tmp_path)
    app = create_app(settings)
    operations = [op for ops in app.openapi()["paths"].values() for op in ops.values()]
    linked = {
        (link["operationId"], name)
        for op in operations
        for response in op["responses"].values()
        for link in response.get("links", {}).values()
        for name in link.get("parameters", {})
    }
    ids = {
        (op["operationId"], p["name"])
        for op in operations
        for p in op.get("parameters", ())
        if p["in"] == "path"
    }

    assert ids, "no operation has an id in its path"
    assert ids <= linked, f"not linked: {sorted(ids - linked)}"


@pytest.mark.parametrize(
    ("status", "body", "valid"),
    [
        (200, {"anything": 1}, True),
        (404, {"detail": "agent 1 does not exist", "code": "not_found"}, True),
        (422, {"detail": "invalid request: x", "code": "validation_error", "errors": []}, True),
        (404, {"detail": "x", "code": "not_found", "errors": []}, False),
        (422, {"detail": [{"loc": ["body"], "msg": "x"}]}, False),  # FastAPI's own shape
        (500, "Internal Server Error", False),
        (409, {"detail": "", "code": "conflict"}, False),
    ],
)
def test_the_error_shape_check(status: int, body: object, valid: bool) -> None:
    response = Response(
        status_code=status,
        headers={"content-type": ["application/json"]},
        content=json.dumps(body).encode(),
        request=requests.Request("GET", "http://127.0.0.1/").prepare(),
        elapsed=0.0,
        verify=False,
    )

    if valid:
        error_shape(None, response, None)  # type: ignore[arg-type]
    else:
        with pytest.raises(AssertionError):
            error_shape(None, response, None)  # type: ignore[arg-type]
