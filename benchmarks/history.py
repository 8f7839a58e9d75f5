"""Run history for benchmarks: clone the finished task runs of a stopped `zerg serve` until its
embedded SQLite files hold as many runs as a long-lived instance.

`seed_history(data_dir, runs)` copies real succeeded task runs — each run's row, its thread,
its messages, its stored events, and its run-engine (DBOS) workflow rows with their inputs and
outputs — under fresh ids, spread over the 30 days before the oldest real one. A clone is what
the same run would have left behind then: its timestamps (thread titles and event payloads
included) are moved back by a whole number of seconds, its ids and workflow ids are new and
consistent across both files, and only clones inside the event retention keep their events
(the server prunes older ones). `count_history(data_dir)` counts the rows of the main tables.

Self-check: a real server on a temporary data dir does 200 runs, is measured (request times,
runs/s of concurrent `?wait=true` clients), stopped, seeded, restarted and measured again:

    .venv/bin/python benchmarks/history.py [--runs 100000] [--clients 20] [--seconds 10]
"""

import argparse
import asyncio
import base64
import contextlib
import json
import math
import pickle
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from task_runs import concurrent as concurrent_runs
from task_runs import free_port, start_server

# Settings.resolved_database_url, and engine_database_url's '<stem>-engine.db' beside it.
ZERG_DB = "zerg.db"
ENGINE_DB = "zerg-engine.db"
HISTORY_DAYS = 30
# Settings.event_retention_days: the server prunes stored events older than this.
EVENT_RETENTION_DAYS = 7.0
BATCH = 20_000
WARMUP_S = 2.0
ZERG_TABLES = ("runs", "threads", "messages", "events")
# The per-workflow tables of DBOS 3.4's system database, each with its workflow id column.
ENGINE_TABLES = {
    "workflow_status": "workflow_uuid",
    "workflow_input": "workflow_uuid",
    "workflow_output": "workflow_uuid",
    "operation_outputs": "workflow_uuid",
    "notifications": "destination_uuid",
    "workflow_events": "workflow_uuid",
    "workflow_events_history": "workflow_uuid",
    "streams": "workflow_uuid",
}
# DBOS's epoch-millisecond columns, moved back like the clone's other timestamps.
ENGINE_EPOCH_COLUMNS = frozenset(
    {
        "created_at",
        "updated_at",
        "completed_at",
        "started_at_epoch_ms",
        "completed_at_epoch_ms",
        "workflow_deadline_epoch_ms",
        "delay_until_epoch_ms",
        "debounce_deadline_epoch_ms",
        "retention_timestamp",
        "created_at_epoch_ms",
    }
)
_MAPPED_WORKFLOW = (
    "coalesce((SELECT m.new FROM temp.wf_map AS m WHERE m.k = w.k AND m.src = s.{0}), s.{0})"
)
ENGINE_OVERRIDES = {
    "creator_xid": "CASE WHEN s.creator_xid IS NULL THEN NULL ELSE new_uuid() END",
    "owner_xid": "CASE WHEN s.owner_xid IS NULL THEN NULL ELSE new_uuid() END",
    "parent_workflow_id": _MAPPED_WORKFLOW.format("parent_workflow_id"),
    "child_workflow_id": _MAPPED_WORKFLOW.format("child_workflow_id"),
    "deduplication_id": "s.deduplication_id || '~' || w.new",
    "inputs": "clone_inputs(s.inputs, c.src_run, c.new_run)",
    "message_uuid": "lower(hex(randomblob(16)))",
}
# A task thread's title ends with the UTC time it was made (services/task_runs.py).
_TITLE_TIME = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] UTC"
_SHIFTED_TITLE = (
    f"CASE WHEN s.title GLOB '* {_TITLE_TIME}' THEN substr(s.title, 1, length(s.title) - 23) "
    "|| strftime('%Y-%m-%d %H:%M:%S', substr(s.title, length(s.title) - 22, 19), c.shift) "
    "|| ' UTC' ELSE s.title END"
)
_EVENT_TIMESTAMPS = ("queued_at", "started_at", "finished_at", "created_at", "updated_at")


@dataclass(frozen=True)
class Template:
    """A real succeeded task run that clones are made of."""

    run_id: int
    thread_id: int
    agent_id: int
    queued_at: datetime
    messages: int
    events: int


# -- SQL helpers ---------------------------------------------------------------------------


def _shifted_datetime(column: str) -> str:
    """SQLAlchemy stores UTC as 'YYYY-MM-DD HH:MM:SS.ffffff': move the seconds, keep the
    fraction (strftime would cut it to milliseconds)."""
    return f"strftime('%Y-%m-%d %H:%M:%S', {column}, c.shift) || substr({column}, 20)"


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    rows = conn.execute(f"PRAGMA {schema}.table_info({table})").fetchall()
    return [(str(row[1]), str(row[2]).upper()) for row in rows]


def _insert_select(
    conn: sqlite3.Connection, schema: str, table: str, values: dict[str, str], source: str
) -> str:
    """INSERT ... SELECT copying every column of `schema.table` from its row `s`, but for the
    expressions in `values`: new columns of later releases are copied as they are."""
    names = [name for name, _ in _columns(conn, schema, table)]
    exprs = [values.get(name, f's."{name}"') for name in names]
    quoted = ", ".join(f'"{name}"' for name in names)
    return f"INSERT INTO {schema}.{table} ({quoted}) SELECT {', '.join(exprs)} {source}"


# -- functions SQLite calls ----------------------------------------------------------------


def _workflow_inputs(run_id: int) -> str:
    """What DBOS stores as the inputs of `_task_run_workflow(run_id)` (and of notify)."""
    return base64.b64encode(pickle.dumps({"args": (run_id,), "kwargs": {}})).decode()


def _clone_inputs(inputs: str | None, src_run: int, new_run: int) -> str | None:
    """The clone's workflow inputs: its own run id where the original held the original's."""
    if inputs is not None and inputs == _workflow_inputs(src_run):
        return _workflow_inputs(new_run)
    return inputs


def _shift_iso(value: str, seconds: int) -> str:
    try:
        moment = datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return value
    return (moment - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S") + value[19:]


def _clone_event_data(
    data: str,
    new_id: int | None,
    thread_id: int,
    agent_id: int,
    run_id: int,
    title: str,
    shift_s: int,
) -> str:
    """An event payload as the clone would have published it: its ids and times."""
    body = json.loads(data)
    if not isinstance(body, dict):
        return data
    new = {
        "id": new_id,
        "thread_id": thread_id,
        "agent_id": agent_id,
        "run_id": run_id,
        "title": title,
    }
    for key, value in new.items():
        if body.get(key) is not None and value is not None:
            body[key] = value
    for key in _EVENT_TIMESTAMPS:
        if isinstance(body.get(key), str):
            body[key] = _shift_iso(body[key], shift_s)
    return json.dumps(body)


def _register_functions(conn: sqlite3.Connection) -> None:
    conn.create_function("clone_inputs", 3, _clone_inputs, deterministic=True)
    conn.create_function("clone_event_data", 7, _clone_event_data, deterministic=True)
    conn.create_function("new_uuid", 0, lambda: str(uuid.uuid4()))


# -- connection ------------------------------------------------------------------------------


def _lock(conn: sqlite3.Connection, engine_db: Path) -> None:
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")  # every database, attached ones too
    conn.execute("ATTACH DATABASE ? AS engine", (str(engine_db),))
    for schema in ("main", "engine"):
        # Seeding is redone from scratch if the machine crashes midway.
        conn.execute(f"PRAGMA {schema}.synchronous=OFF")
        conn.execute(f"PRAGMA {schema}.cache_size=-262144")
    conn.execute("PRAGMA temp_store=MEMORY")
    # The exclusive locks are taken here and kept until the connection closes.
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("SELECT count(*) FROM main.sqlite_master").fetchone()
    conn.execute("SELECT count(*) FROM engine.sqlite_master").fetchone()
    conn.execute("COMMIT")


@contextlib.contextmanager
def _open(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """Both files on one connection (the engine's attached as `engine`), locked exclusively
    for the whole seeding: a running `zerg serve` makes this fail instead of racing it."""
    zerg_db, engine_db = data_dir / ZERG_DB, data_dir / ENGINE_DB
    for path in (zerg_db, engine_db):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run a `zerg serve` on {data_dir} first")
    conn = sqlite3.connect(zerg_db, timeout=2, isolation_level=None)
    try:
        try:
            _lock(conn, engine_db)
        except sqlite3.OperationalError as exc:
            raise RuntimeError(
                f"cannot lock {zerg_db} and {engine_db} ({exc}): stop the `zerg serve` "
                "that uses them first"
            ) from exc
        _register_functions(conn)
        yield conn
    finally:
        conn.close()


# -- the plan: which clone is made of which run, with which ids and when -----------------


def _load_templates(conn: sqlite3.Connection) -> list[Template]:
    """The real succeeded task runs, with their messages and stored events numbered."""
    conn.executescript(
        """
        CREATE TEMP TABLE template AS
            SELECT id AS src_run, thread_id AS src_thread, agent_id, queued_at FROM main.runs
            WHERE status = 'succeeded' AND "trigger" != 'chat' AND thread_id IS NOT NULL;
        CREATE TEMP TABLE tmpl_msg (src_msg INTEGER PRIMARY KEY, src_thread, rank);
        INSERT INTO tmpl_msg SELECT m.id, m.thread_id,
            row_number() OVER (PARTITION BY m.thread_id ORDER BY m.id)
            FROM main.messages AS m JOIN temp.template AS t ON m.thread_id = t.src_thread;
        CREATE INDEX temp.tmpl_msg_thread ON tmpl_msg (src_thread, rank);
        -- A run's events lie between its first and last one; those without a run id in
        -- between (the agent going running, then idle) are its agent's.
        CREATE TEMP TABLE tmpl_event AS
            WITH span AS (
                SELECT t.src_run, t.agent_id, min(e.id) AS lo, max(e.id) AS hi
                FROM temp.template AS t JOIN main.events AS e ON e.run_id = t.src_run
                GROUP BY t.src_run
            ), owned AS (
                SELECT e.id AS src_event, min(span.src_run) AS src_run FROM span
                JOIN main.events AS e ON e.id BETWEEN span.lo AND span.hi AND (
                    e.run_id = span.src_run
                    OR (e.run_id IS NULL AND e.agent_id = span.agent_id))
                GROUP BY e.id
            )
            SELECT src_event, src_run,
                row_number() OVER (PARTITION BY src_run ORDER BY src_event) AS rank
            FROM owned;
        CREATE INDEX temp.tmpl_event_run ON tmpl_event (src_run, rank);
        """
    )
    rows = conn.execute(
        """
        SELECT t.src_run, t.src_thread, t.agent_id, t.queued_at,
            (SELECT count(*) FROM temp.tmpl_msg AS m WHERE m.src_thread = t.src_thread),
            (SELECT count(*) FROM temp.tmpl_event AS e WHERE e.src_run = t.src_run)
        FROM temp.template AS t ORDER BY t.src_run
        """
    ).fetchall()
    return [Template(r[0], r[1], r[2], _parse_utc(r[3]), r[4], r[5]) for r in rows]


def _parse_utc(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f")


def _next_id(conn: sqlite3.Connection, table: str) -> int:
    """The id after every one `table` ever had (its tables never reuse ids)."""
    row = conn.execute(
        f"SELECT max(coalesce((SELECT seq FROM main.sqlite_sequence WHERE name = ?), 0), "
        f"coalesce((SELECT max(id) FROM main.{table}), 0))",
        (table,),
    ).fetchone()
    return int(row[0]) + 1


def _owners(conn: sqlite3.Connection, agent_ids: list[int]) -> dict[int, int | None]:
    owners = dict(conn.execute("SELECT id, owner_id FROM main.agents").fetchall())
    missing = [agent_id for agent_id in agent_ids if agent_id not in owners]
    if missing:
        raise ValueError(f"no agents with ids {missing} in the database")
    return owners


def _clone_times(first: datetime, runs: int, rng: random.Random) -> list[datetime]:
    """`runs` times, in order, over the `HISTORY_DAYS` before `first` (uniformly at random,
    as independent triggers arrive)."""
    span = HISTORY_DAYS * 86_400.0
    offsets = sorted(rng.uniform(0, span) for _ in range(runs))
    start = first - timedelta(seconds=span + 1)
    return [start + timedelta(seconds=offset) for offset in offsets]


def _plan(
    conn: sqlite3.Connection, templates: list[Template], runs: int, agent_ids: list[int] | None
) -> None:
    """Fill `temp.clone`, one row per clone k = 1..runs (ids grow with time, as real ones
    do), and `temp.wf_map`, the clone's workflow ids for the original's."""
    owners = _owners(conn, agent_ids or [])
    now = datetime.now(UTC).replace(tzinfo=None)
    keep_events_after = now - timedelta(days=EVENT_RETENTION_DAYS)
    first = min(t.queued_at for t in templates)
    run_id, thread_id = _next_id(conn, "runs"), _next_id(conn, "threads")
    message_id, event_id = _next_id(conn, "messages"), _next_id(conn, "events")
    rows = []
    for k, when in enumerate(_clone_times(first, runs, random.Random(runs)), start=1):
        template = templates[(k - 1) % len(templates)]
        agent = agent_ids[(k - 1) % len(agent_ids)] if agent_ids else template.agent_id
        shift = math.ceil((template.queued_at - when).total_seconds())
        keep_events = when >= keep_events_after
        rows.append(
            (k, template.run_id, template.thread_id, run_id, thread_id, agent, owners.get(agent),
             message_id - 1, event_id - 1, int(keep_events), shift, f"-{shift} seconds",
             uuid.uuid4().hex)
        )  # fmt: skip
        run_id, thread_id = run_id + 1, thread_id + 1
        message_id += template.messages
        event_id += template.events if keep_events else 0
    conn.executescript(
        """
        CREATE TEMP TABLE clone (k INTEGER PRIMARY KEY, src_run, src_thread, new_run,
            new_thread, agent_id, owner_id, msg_base, ev_base, keep_events, shift_s, shift,
            wf_hex);
        CREATE TEMP TABLE wf_map (k INTEGER, src TEXT, new TEXT);
        """
    )
    conn.executemany(f"INSERT INTO temp.clone VALUES ({', '.join('?' * 13)})", rows)
    conn.executescript(
        """
        INSERT INTO temp.wf_map
            SELECT c.k, r.workflow_id, 'run-' || c.wf_hex
            FROM temp.clone AS c JOIN main.runs AS r ON r.id = c.src_run
            UNION ALL
            SELECT c.k, 'notify-' || substr(r.workflow_id, 5), 'notify-' || c.wf_hex
            FROM temp.clone AS c JOIN main.runs AS r ON r.id = c.src_run
            WHERE r.workflow_id GLOB 'run-*';
        CREATE INDEX temp.wf_map_k ON wf_map (k, src);
        """
    )


# -- the copies ------------------------------------------------------------------------------


def _zerg_statements(conn: sqlite3.Connection) -> list[str]:
    """Threads, runs, messages and events of clones k in [:lo, :hi], in id order."""
    clones = "FROM temp.clone AS c CROSS JOIN"
    batch = "c.k BETWEEN :lo AND :hi"

    def insert(table: str, values: dict[str, str], source: str) -> str:
        shifted = {
            name: _shifted_datetime(f"s.{name}")
            for name, kind in _columns(conn, "main", table)
            if kind == "DATETIME"
        }
        return _insert_select(conn, "main", table, shifted | values, source)

    return [
        insert(
            "threads",
            {"id": "c.new_thread", "agent_id": "c.agent_id", "title": _SHIFTED_TITLE},
            f"{clones} main.threads AS s ON s.id = c.src_thread WHERE {batch} ORDER BY c.k",
        ),
        insert(
            "runs",
            {
                "id": "c.new_run",
                "agent_id": "c.agent_id",
                "thread_id": "c.new_thread",
                "workflow_id": "'run-' || c.wf_hex",
                "idempotency_key": "s.idempotency_key || '~' || c.new_run",
                "slot_agent_id": "NULL",
                "delivery_hash": "CASE WHEN s.delivery_hash IS NULL THEN NULL "
                "ELSE lower(hex(randomblob(32))) END",
            },
            f"{clones} main.runs AS s ON s.id = c.src_run WHERE {batch} ORDER BY c.k",
        ),
        insert(
            "messages",
            {"id": "c.msg_base + tm.rank", "thread_id": "c.new_thread"},
            f"{clones} temp.tmpl_msg AS tm ON tm.src_thread = c.src_thread "
            f"CROSS JOIN main.messages AS s ON s.id = tm.src_msg "
            f"WHERE {batch} ORDER BY c.k, tm.rank",
        ),
        insert(
            "events",
            {
                "id": "c.ev_base + te.rank",
                "owner_id": "c.owner_id",
                "agent_id": "CASE WHEN s.agent_id IS NULL THEN NULL ELSE c.agent_id END",
                "thread_id": "CASE WHEN s.thread_id IS NULL THEN NULL ELSE c.new_thread END",
                "run_id": "CASE WHEN s.run_id IS NULL THEN NULL ELSE c.new_run END",
                "data": "clone_event_data(s.data, CASE "
                "WHEN s.type GLOB 'run_*' THEN c.new_run "
                "WHEN s.type GLOB 'thread_message_*' THEN c.msg_base + tm.rank "
                "WHEN s.type GLOB 'thread_*' THEN c.new_thread "
                "WHEN s.type GLOB 'agent_*' THEN c.agent_id END, "
                "c.new_thread, c.agent_id, c.new_run, nt.title, c.shift_s)",
            },
            f"{clones} temp.tmpl_event AS te ON te.src_run = c.src_run "
            "CROSS JOIN main.events AS s ON s.id = te.src_event "
            "CROSS JOIN main.threads AS nt ON nt.id = c.new_thread "
            "LEFT JOIN temp.tmpl_msg AS tm ON s.type GLOB 'thread_message_*' "
            "AND tm.src_msg = json_extract(s.data, '$.id') "
            f"WHERE {batch} AND c.keep_events ORDER BY c.k, te.rank",
        ),
    ]


def _engine_statements(conn: sqlite3.Connection) -> list[str]:
    """The clones' rows in every per-workflow table of the run engine."""
    present = {row[0] for row in conn.execute("SELECT name FROM engine.sqlite_master")}
    statements = []
    for table, id_column in ENGINE_TABLES.items():
        if table not in present:
            continue
        values = {id_column: "w.new"}
        for name, _kind in _columns(conn, "engine", table):
            if name in ENGINE_EPOCH_COLUMNS:
                values[name] = f's."{name}" - c.shift_s * 1000'
            elif name in ENGINE_OVERRIDES:
                values[name] = ENGINE_OVERRIDES[name]
        source = (
            "FROM temp.wf_map AS w CROSS JOIN temp.clone AS c ON c.k = w.k "
            f"CROSS JOIN engine.{table} AS s ON s.{id_column} = w.src "
            "WHERE w.k BETWEEN :lo AND :hi ORDER BY w.k"
        )
        statements.append(_insert_select(conn, "engine", table, values, source))
    return statements


def _copy(conn: sqlite3.Connection, runs: int) -> None:
    """Copy in batches, each batch one transaction over both files."""
    statements = _zerg_statements(conn) + _engine_statements(conn)
    for lo in range(1, runs + 1, BATCH):
        conn.execute("BEGIN")
        for statement in statements:
            conn.execute(statement, {"lo": lo, "hi": min(runs, lo + BATCH - 1)})
        conn.execute("COMMIT")


def seed_history(data_dir: Path, runs: int, *, agent_ids: list[int] | None = None) -> int:
    """Add `runs` finished task runs to the databases of the stopped `zerg serve` that owns
    `data_dir`, cloned from the succeeded task runs it already holds; returns how many.

    `agent_ids`: spread the clones over these agents in turn; default: each clone belongs to
    its original's agent. Clone ids grow with their times, but sit above the originals' ids
    although the originals stay the newest runs (ids are never reused, so they cannot go
    below). Statistics are not gathered (no ANALYZE): neither Zerg nor DBOS
    runs ANALYZE or `PRAGMA optimize`, so a real instance has none either.
    """
    if runs <= 0:
        return 0
    with _open(data_dir) as conn:
        templates = _load_templates(conn)
        if not templates:
            raise ValueError(f"{data_dir / ZERG_DB} has no succeeded task run to clone")
        _plan(conn, templates, runs, agent_ids)
        _copy(conn, runs)
        for schema in ("main", "engine"):
            conn.execute(f"PRAGMA {schema}.wal_checkpoint(TRUNCATE)")
    return runs


def count_history(data_dir: Path) -> dict[str, int]:
    """Row counts of the main tables of both files, keyed `file.table`."""
    counts: dict[str, int] = {}
    for name, tables in ((ZERG_DB, ZERG_TABLES), (ENGINE_DB, tuple(ENGINE_TABLES))):
        uri = f"{(data_dir / name).resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            for table in (t for t in tables if t in present):
                [count] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                counts[f"{Path(name).stem}.{table}"] = int(count)
    return counts


def foreign_key_violations(data_dir: Path) -> int:
    """How many rows of both files point at a row that does not exist."""
    total = 0
    for name in (ZERG_DB, ENGINE_DB):
        with contextlib.closing(sqlite3.connect(data_dir / name)) as conn:
            total += len(conn.execute("PRAGMA foreign_key_check").fetchall())
    return total


# -- self-check ------------------------------------------------------------------------------

AGENT = {
    "model": "scripted:demo",
    "system_instructions": "You are a benchmark.",
    "task_instructions": "What is 6 * 7?",
    "tools": ["calculator"],
}


@dataclass(frozen=True)
class Measurement:
    request_ms: dict[str, float]
    runs_per_s: float


async def _create_agents(client: httpx.AsyncClient, count: int) -> list[int]:
    ids = []
    for index in range(count):
        response = await client.post("/api/agents", json={**AGENT, "name": f"h{index}"})
        response.raise_for_status()
        ids.append(int(response.json()["id"]))
    return ids


async def _run(client: httpx.AsyncClient, agent_id: int) -> dict[str, object]:
    response = await client.post(f"/api/agents/{agent_id}/task", params={"wait": "true"})
    body: dict[str, object] = response.json()
    if body.get("status") != "succeeded":
        raise SystemExit(f"run did not succeed: {response.text}")
    return body


async def _time_get(client: httpx.AsyncClient, path: str, repeats: int = 5) -> float:
    """Median milliseconds of `repeats` GETs of `path`, each of which must answer 200."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = await client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"GET {path}: {response.status_code} {response.text[:300]}")
    return statistics.median(times)


async def _measure(client: httpx.AsyncClient, agent_ids: list[int], seconds: float) -> Measurement:
    newest = (await client.get("/api/runs", params={"limit": 1})).json()["items"][0]
    fresh = await _run(client, agent_ids[0])  # a new run still succeeds
    paths = {
        "/api/runs?limit=50": "/api/runs?limit=50",
        "/api/agents": "/api/agents",
        "/runs": "/runs",
        "/": "/",
        "/stats": "/stats",
        "/api/runs?limit=50&agent_id=A": f"/api/runs?limit=50&agent_id={agent_ids[-1]}",
        "/api/runs?limit=50&status=failed": "/api/runs?limit=50&status=failed",
        "/api/runs?limit=50&trigger=webhook": "/api/runs?limit=50&trigger=webhook",
        "/api/agents/A/usage": f"/api/agents/{agent_ids[0]}/usage",
        "/runs/NEWEST": f"/runs/{newest['id']}",
        "/threads/NEWEST": f"/threads/{newest['thread_id']}",
        "/api/runs/NEW": f"/api/runs/{fresh['id']}",
    }
    request_ms = {label: await _time_get(client, path) for label, path in paths.items()}
    await concurrent_runs(client, agent_ids, WARMUP_S)  # a fresh server's first runs are slower
    done, elapsed = await concurrent_runs(client, agent_ids, seconds)
    return Measurement(request_ms, done / elapsed)


async def _serve_and_measure(
    data_dir: Path, clients: int, seconds: float, template_runs: int
) -> Measurement:
    """Start a server on `data_dir` (the first time: make agents and `template_runs` runs),
    measure it, stop it."""
    port = free_port()
    server = start_server(data_dir, port, {})
    try:
        limits = httpx.Limits(max_connections=clients + 5)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=120, limits=limits
        ) as client:
            listed = (await client.get("/api/agents", params={"limit": 100})).json()["items"]
            agent_ids = [int(a["id"]) for a in listed] or await _create_agents(client, clients)
            for index in range(template_runs):
                await _run(client, agent_ids[index % len(agent_ids)])
            return await _measure(client, agent_ids[:clients], seconds)
    finally:
        server.terminate()
        server.wait(timeout=60)


def _report(empty: Measurement, seeded: Measurement, runs: int) -> None:
    print(f"\n{'request (median of 5)':<44} {'empty':>9} {f'+{runs:,} runs':>12}")
    for path, before in empty.request_ms.items():
        after = seeded.request_ms[path]
        print(f"GET {path:<40} {before:>7.1f}ms {after:>10.1f}ms")
    ratio = seeded.runs_per_s / empty.runs_per_s
    print(
        f"runs/s of concurrent ?wait=true clients: empty {empty.runs_per_s:.0f}, "
        f"with history {seeded.runs_per_s:.0f} ({ratio:.0%} of empty)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs of history to add")
    parser.add_argument("--templates", type=int, default=200, help="real runs made first")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=10, help="concurrent phase length")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="zerg-history-") as tmp:
        data_dir = Path(tmp)
        empty = await _serve_and_measure(data_dir, args.clients, args.seconds, args.templates)
        start = time.perf_counter()
        added = seed_history(data_dir, args.runs)
        seeding_s = time.perf_counter() - start
        print(f"seeded {added:,} runs in {seeding_s:.1f} s; rows now:")
        for table, count in count_history(data_dir).items():
            print(f"  {table:<34} {count:>10,}")
        print(f"foreign keys pointing nowhere: {foreign_key_violations(data_dir)}")
        seeded = await _serve_and_measure(data_dir, args.clients, args.seconds, 0)
    _report(empty, seeded, added)


if __name__ == "__main__":
    asyncio.run(main())
