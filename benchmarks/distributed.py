"""Distributed mode on PostgreSQL: runs/s with 1 and 2 workers, what each part costs per run,
and the time another worker takes to finish the run of a worker killed mid-run (kill -9).

Starts its own PostgreSQL (like the tests, with pg_stat_statements), 2 API replicas
(`zerg serve --no-execute`) and the workers. The job: a `scripted:demo` agent with the
calculator tool — 2 model calls and 1 tool call per run — triggered with `?wait=true` by
concurrent clients spread over both replicas. The recovery run uses a fake OpenAI server whose
second model call hangs until the kill.

Prints the sequential trigger→finished p50/p95; runs/s with 1 and 2 workers and, in each
phase, CPU per run of the API replicas, the workers and PostgreSQL (postmaster and backends),
PostgreSQL commits and statements per run and the statements issued most, and PostgreSQL's CPU
per run by who spends it (by connection application name: `zerg`, `zerg-events`,
`dbos_transact`; the server's own processes by kind); the worker's CPU per run against an
embedded `zerg serve` (SQLite) under the same load, as the median of alternating pairs of
phases (this machine's speed drifts by tens of percent within minutes: phases measured minutes
apart compare the drift, not the code); the runs/s one core of each part carries and the part
that limits first as workers are added; the recovery time. Also writes the report to
`benchmarks/results/distributed-<date>.md`. Linux only (reads /proc).

    .venv/bin/python benchmarks/distributed.py [--clients 20] [--seconds 15] [--pairs 3]
        [--pair-seconds 8] [--heartbeat 5] [--dead-after 20]
"""

import argparse
import asyncio
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.openai_server import FakeOpenAI, Hang, Text, ToolCall
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.processes import WorkerProcess, ZergProcess

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("API", "worker", "PostgreSQL")
REPLICAS = 2
AGENT = {
    "name": "bench",
    "model": "scripted:demo",
    "task_instructions": "What is 6 * 7?",
    "tools": ["calculator"],
}
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")
LABELS = ("1 worker", "2 workers")  # the two throughput phases


@dataclass(frozen=True)
class Statement:
    """One normalized statement's pg_stat_statements counters."""

    query: str
    calls: int
    total_ms: float


@dataclass(frozen=True)
class Sample:
    """Counters read at one moment: CPU seconds per part, and PostgreSQL's own counters."""

    cpu_s: dict[str, float]
    commits: int = 0
    rollbacks: int = 0
    statements: dict[int, Statement] = field(default_factory=dict)
    # PostgreSQL's CPU seconds by who spends them: connections by application name, the
    # server's own processes by kind.
    postgres_cpu_s: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Phase:
    """A measured throughput phase: the runs it finished and how the counters grew."""

    runs: int
    seconds: float
    before: Sample
    after: Sample

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.seconds

    def per_run(self, read: Callable[[Sample], float]) -> float:
        return (read(self.after) - read(self.before)) / self.runs

    def cpu_ms_per_run(self, part: str) -> float:
        return self.per_run(lambda sample: sample.cpu_s[part]) * 1000

    def statements(self) -> list[Statement]:
        """The statements issued during the phase, most called first."""
        grown = []
        for key, now in self.after.statements.items():
            then = self.before.statements.get(key, Statement(now.query, 0, 0.0))
            grown.append(Statement(now.query, now.calls - then.calls, now.total_ms - then.total_ms))
        return sorted((s for s in grown if s.calls), key=lambda s: s.calls, reverse=True)


@dataclass(frozen=True)
class Pair:
    """One worker phase (1 worker) and one embedded phase, measured back to back."""

    worker_ms: float  # the worker's CPU per run
    embedded_ms: float  # the embedded server's CPU per run
    embedded_runs_per_s: float

    @property
    def ratio(self) -> float:
        return self.worker_ms / self.embedded_ms


@dataclass(frozen=True)
class Embedded:
    """An embedded `zerg serve` (SQLite) beside the cluster, with its agents."""

    server: ZergProcess
    agent_ids: list[int]

    def phase(self, seconds: float) -> Phase:
        pids = [pid_of(self.server)]
        return asyncio.run(
            phase(
                [self.server.url],
                self.agent_ids,
                seconds,
                lambda: Sample({"embedded": tree_cpu_s(pids)}),
            )
        )


@dataclass(frozen=True)
class Distributed:
    """What the distributed deployment measured."""

    latencies_ms: list[float]
    phases: list[Phase]  # with 1, then 2 workers
    pairs: list[Pair]  # alternating, with 1 worker
    recovery_s: float
    postgres_version: str


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def tree_cpu_s(pids: list[int]) -> float:
    """CPU seconds used so far by `pids` and all their descendants: live ones from their own
    utime+stime, exited ones (once reaped) from their parent's cutime+cstime."""
    fields: dict[int, list[str]] = {}
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            fields[int(entry.name)] = stat
            children[int(stat[1])].append(int(entry.name))

    def ticks(pid: int) -> int:
        stat = fields.get(pid)
        own = sum(int(stat[i]) for i in (11, 12, 13, 14)) if stat else 0
        return own + sum(ticks(child) for child in children[pid])

    return sum(ticks(pid) for pid in pids) / os.sysconf("SC_CLK_TCK")


def pid_of(process: ZergProcess | WorkerProcess) -> int:
    assert process.process is not None
    return process.process.pid


def postgres_counters(stats: Engine) -> tuple[int, int, dict[int, Statement]]:
    """Commits, rollbacks and pg_stat_statements of this database (leaving out these queries)."""
    with stats.connect() as conn:
        commits, rollbacks = conn.execute(
            text(
                "SELECT xact_commit, xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        ).one()
        rows = conn.execute(
            text(
                "SELECT queryid, min(query), sum(calls), sum(total_exec_time) "
                "FROM pg_stat_statements WHERE queryid IS NOT NULL AND dbid = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND query NOT LIKE '%pg_stat%' GROUP BY queryid"
            )
        ).all()
    statements = {int(r[0]): Statement(str(r[1]), int(r[2]), float(r[3])) for r in rows}
    return int(commits), int(rollbacks), statements


def postgres_cpu_by_user(stats: Engine) -> dict[str, float]:
    """CPU seconds so far of each PostgreSQL process, summed by its connection's application
    name (a server process's kind for the others), leaving out the asking connection."""
    with stats.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT pid, backend_type, application_name FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid()"
            )
        ).all()
    by_user: dict[str, float] = defaultdict(float)
    for pid, backend_type, application_name in rows:
        stat = _stat(int(pid))
        if stat is not None:
            label = application_name or backend_type or "?"
            by_user[label] += sum(int(stat[i]) for i in (11, 12)) / os.sysconf("SC_CLK_TCK")
    return dict(by_user)


def server_version(stats: Engine) -> str:
    with stats.connect() as conn:
        return str(conn.execute(text("SHOW server_version")).scalar())


def postmaster_pid(server: PostgresServer) -> int:
    return int((server.datadir / "postmaster.pid").read_text().split("\n", 1)[0])


@contextmanager
def postgres(root: Path) -> Iterator[tuple[PostgresServer, Engine]]:
    """A server with pg_stat_statements and a `zerg` database; yields it and a stats engine."""
    server = start_postgres(root, settings={"shared_preload_libraries": "pg_stat_statements"})
    try:
        admin = create_engine(server.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE zerg"))
        admin.dispose()
        stats = create_engine(server.url_for("zerg"), isolation_level="AUTOCOMMIT", pool_size=1)
        with stats.connect() as conn:
            conn.execute(text("CREATE EXTENSION pg_stat_statements"))
        yield server, stats
        stats.dispose()
    finally:
        server.stop()


def wait_until(predicate: Callable[[], Any], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.02)


def create_agents(url: str, count: int) -> list[int]:
    return [
        httpx.post(f"{url}/api/agents", json={**AGENT, "name": f"b{i}"}).json()["id"]
        for i in range(count)
    ]


async def phase(
    urls: list[str], agent_ids: list[int], seconds: float, sample: Callable[[], Sample]
) -> Phase:
    """A 2 s warm-up, then `seconds` of one client per agent, `sample()` taken around it."""
    done = 0
    deadline = 0.0
    limits = httpx.Limits(max_connections=len(agent_ids) + 5)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one_client(index: int, agent_id: int) -> None:
            nonlocal done
            url = urls[index % len(urls)]
            while time.perf_counter() < deadline:
                response = await client.post(f"{url}/api/agents/{agent_id}/task?wait=true")
                if response.json()["status"] != "succeeded":
                    raise SystemExit(f"run did not succeed: {response.text}")
                done += 1

        deadline = time.perf_counter() + 2
        await asyncio.gather(*(one_client(i, a) for i, a in enumerate(agent_ids)))
        before = sample()
        done = 0
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(one_client(i, a) for i, a in enumerate(agent_ids)))
        elapsed = time.perf_counter() - start
        return Phase(done, elapsed, before, sample())


def sequential_ms(url: str, agent_id: int, runs: int) -> list[float]:
    latencies = []
    with httpx.Client(timeout=60) as client:
        for _ in range(runs):
            start = time.perf_counter()
            body = client.post(f"{url}/api/agents/{agent_id}/task?wait=true").json()
            latencies.append((time.perf_counter() - start) * 1000)
            if body["status"] != "succeeded":
                raise SystemExit(f"run did not succeed: {body}")
    return sorted(latencies)


def recovery_s(apis: list[ZergProcess], workers: list[WorkerProcess], model: FakeOpenAI) -> float:
    """Seconds from kill -9 of the worker running a run to that run succeeding elsewhere."""
    model.enqueue(ToolCall("calculator", {"expression": "6 * 7"}, call_id="c1"), Hang())
    agent = httpx.post(
        f"{apis[0].url}/api/agents",
        json={
            "name": "recover",
            "model": "openai:gpt-test",
            "task_instructions": "What is 6 * 7?",
            "tools": ["calculator"],
            "config": {"base_url": f"{model.base_url}/v1", "max_retries": 0},
        },
    ).json()
    run = httpx.post(f"{apis[0].url}/api/agents/{agent['id']}/task").json()
    wait_until(lambda: model.count() == 2, 30)
    model.enqueue(Text("It is 42."))
    executor = _executor_of(apis[0], run["id"])
    victim = next(w for w in workers if w.executor_id == executor)
    victim.kill()
    killed = time.monotonic()
    url = f"{apis[1].url}/api/runs/{run['id']}"
    wait_until(lambda: httpx.get(url).json()["status"] == "succeeded", 120)
    elapsed = time.monotonic() - killed
    if len(model.completed) != 2:
        raise SystemExit(f"a completed model call was repeated: {len(model.completed)}")
    return elapsed


def _executor_of(api: ZergProcess, run_id: int) -> str:
    engine = create_engine(api.env["ZERG_DATABASE_URL"])
    with engine.connect() as conn:
        value = conn.execute(text("SELECT executor_id FROM runs WHERE id = :id"), {"id": run_id})
        executor = str(value.scalar())
    engine.dispose()
    return executor


@contextmanager
def embedded_server(root: Path, clients: int) -> Iterator[Embedded]:
    """One embedded `zerg serve` (SQLite) with an agent per client; its CPU is "embedded"."""
    env = {"ZERG_DATA_DIR": str(root / "embedded"), "ZERG_LOG_LEVEL": "info"}
    server = ZergProcess(env, root / "embedded.log").start()
    try:
        yield Embedded(server, create_agents(server.url, clients))
    finally:
        server.stop()


def alternating_pairs(
    count: int, seconds: float, worker_phase: Callable[[], Phase], embedded: Embedded
) -> list[Pair]:
    """`count` pairs of a 1-worker phase and an embedded phase, the order flipped each pair."""
    pairs = []
    for index in range(count):
        measured: dict[str, Phase] = {}
        order = ("worker", "embedded") if index % 2 == 0 else ("embedded", "worker")
        for who in order:
            measured[who] = worker_phase() if who == "worker" else embedded.phase(seconds)
        alone = measured["embedded"]
        pairs.append(
            Pair(
                measured["worker"].cpu_ms_per_run("worker"),
                alone.cpu_ms_per_run("embedded"),
                alone.runs_per_s,
            )
        )
    return pairs


def cluster_sampler(
    apis: list[ZergProcess], workers: list[WorkerProcess], postmaster: int, stats: Engine
) -> Callable[[], Sample]:
    def sample() -> Sample:
        cpu = {
            "API": tree_cpu_s([pid_of(api) for api in apis]),
            "worker": tree_cpu_s([pid_of(worker) for worker in workers]),
            "PostgreSQL": tree_cpu_s([postmaster]),
        }
        return Sample(cpu, *postgres_counters(stats), postgres_cpu_by_user(stats))

    return sample


def run_distributed(root: Path, pg_root: Path, args: argparse.Namespace) -> Distributed:
    # Started before the processes: the agents' config.base_url must be listed in their env.
    model = FakeOpenAI().start()
    try:
        with postgres(pg_root) as (server, stats), embedded_server(root, args.clients) as alone:
            return measure_cluster(root, server, stats, model, alone, args)
    finally:
        model.stop()


def measure_cluster(
    root: Path,
    server: PostgresServer,
    stats: Engine,
    model: FakeOpenAI,
    embedded: Embedded,
    args: argparse.Namespace,
) -> Distributed:
    env = {
        "ZERG_DATABASE_URL": server.url_for("zerg"),
        "ZERG_DATA_DIR": str(root / "data"),
        "ZERG_LOG_LEVEL": "info",  # workers say "ready" at info; logs go to files
        "ZERG_HEARTBEAT_INTERVAL_S": str(args.heartbeat),
        "ZERG_WORKER_DEAD_AFTER_S": str(args.dead_after),
        "ZERG_MODEL_BASE_URLS": f"{model.base_url}/v1",
    }
    subprocess.run(
        [str(Path(sys.executable).with_name("zerg")), "db", "upgrade"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    apis = [
        ZergProcess(env, root / f"api{i}.log", ["--no-execute"]) for i in range(1, REPLICAS + 1)
    ]
    workers = [WorkerProcess(env, root / f"w{i}.log", f"w{i}") for i in (1, 2)]
    processes: list[ZergProcess | WorkerProcess] = [*apis]
    try:
        for api in apis:
            api.spawn()
        processes.append(workers[0].start())
        for api in apis:
            api.wait_ready()
        urls = [api.url for api in apis]
        agent_ids = create_agents(urls[0], args.clients)
        sequential_ms(urls[0], agent_ids[0], 10)  # warm-up
        latencies = sequential_ms(urls[1], agent_ids[0], 100)
        postmaster = postmaster_pid(server)
        sample = cluster_sampler(apis, workers[:1], postmaster, stats)
        one = asyncio.run(phase(urls, agent_ids, args.seconds, sample))
        pairs = alternating_pairs(
            args.pairs,
            args.pair_seconds,
            lambda: asyncio.run(phase(urls, agent_ids, args.pair_seconds, sample)),
            embedded,
        )
        processes.append(workers[1].start())
        sample = cluster_sampler(apis, workers, postmaster, stats)
        two = asyncio.run(phase(urls, agent_ids, args.seconds, sample))
        recovered = recovery_s(apis, workers, model)
    finally:
        for process in processes:
            process.stop()
    return Distributed(latencies, [one, two], pairs, recovered, server_version(stats))


def machine(postgres_version: str) -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return (
        f"machine: {os.cpu_count()} cores ({model}), {mem_kb / 2**20:.0f} GiB RAM; "
        f"Python {platform.python_version()}; PostgreSQL {postgres_version.split()[0]}"
    )


def cpu_lines(phases: list[Phase], pairs: list[Pair], pair_seconds: float) -> list[str]:
    lines = ["CPU per run, ms:    API  worker  PostgreSQL  (runs)"]
    for label, one in zip(LABELS, phases, strict=True):
        api, worker, pg = (one.cpu_ms_per_run(part) for part in PARTS)
        lines.append(f"  {label:<10} {api:7.2f} {worker:7.2f} {pg:11.2f}  ({one.runs})")
    lines.append(
        f"worker (1 worker) against an embedded zerg serve (SQLite) under the same load, "
        f"{len(pairs)} alternating pairs of {pair_seconds:g} s phases:"
    )
    lines.append("  worker ms  embedded ms  (embedded runs/s)  ratio")
    for pair in pairs:
        lines.append(
            f"  {pair.worker_ms:9.2f}  {pair.embedded_ms:11.2f}  ({pair.embedded_runs_per_s:14.0f})"
            f"  {pair.ratio:5.2f}x"
        )
    median = statistics.median(pair.ratio for pair in pairs)
    alone = statistics.median(pair.embedded_ms for pair in pairs)
    ratios = ", ".join(
        f"{one.cpu_ms_per_run('worker') / alone:.2f}x ({label})"
        for label, one in zip(LABELS, phases, strict=True)
    )
    return [
        *lines,
        f"worker CPU per run ÷ embedded, median of the pairs: {median:.2f}x (target ≤ 1.2x)",
        f"the phases above ÷ the pairs' median embedded ({alone:.2f} ms): {ratios} (information)",
    ]


def postgres_lines(phases: list[Phase], top: int = 8) -> list[str]:
    lines = []
    for label, one in zip(LABELS, phases, strict=True):
        statements = one.statements()
        # "BEGIN" may carry its isolation level ("BEGIN ISOLATION LEVEL READ COMMITTED").
        control = sum(
            s.calls for s in statements if s.query.upper().split(" ")[0] in TRANSACTION_CONTROL
        )
        total = sum(s.calls for s in statements)
        commits = one.per_run(lambda s: s.commits)
        rollbacks = one.per_run(lambda s: s.rollbacks)
        lines.append(
            f"PostgreSQL per run, {label}: {commits:.1f} commits, {rollbacks:.1f} "
            f"rollbacks, {total / one.runs:.1f} statements "
            f"({control / one.runs:.1f} of them BEGIN/COMMIT/ROLLBACK)"
        )
    last = phases[-1]
    before, after = last.before.postgres_cpu_s, last.after.postgres_cpu_s
    spent = {user: after[user] - before.get(user, 0.0) for user in after}
    shares = ", ".join(
        f"{user} {seconds * 1000 / last.runs:.2f}"
        for user, seconds in sorted(spent.items(), key=lambda item: -item[1])
        if seconds > 0
    )
    lines.append(f"PostgreSQL CPU per run by user, ms, {LABELS[-1]}: {shares}")
    lines.append(f"top {top} statements, {LABELS[-1]}: calls/run, mean ms, query")
    for statement in last.statements()[:top]:
        query = " ".join(statement.query.split())
        lines.append(
            f"  {statement.calls / last.runs:5.2f} {statement.total_ms / statement.calls:6.3f}"
            f"  {query[:70]}{'…' if len(query) > 70 else ''}"
        )
    return lines


def capacity_lines(last: Phase) -> list[str]:
    per_core = {part: 1000 / last.cpu_ms_per_run(part) for part in PARTS}
    carried = ", ".join(f"{part} {per_core[part]:.0f}" for part in PARTS)
    lines = [
        f"runs/s one core carries ({LABELS[-1]}): {carried} "
        f"(target for PostgreSQL ≥ 500: {per_core['PostgreSQL']:.0f})",
        f"ceiling with {REPLICAS} API replicas, one core per process, PostgreSQL on one core:",
        "  workers  runs/s  limited by",
    ]
    for workers in (1, 2, 4, 8, 16):
        ceilings = {
            "worker": workers * per_core["worker"],
            "API": REPLICAS * per_core["API"],
            "PostgreSQL": per_core["PostgreSQL"],
        }
        part = min(ceilings, key=ceilings.__getitem__)
        lines.append(f"  {workers:7d}  {ceilings[part]:6.0f}  {part}")
    return lines


def report(args: argparse.Namespace, result: Distributed) -> list[str]:
    latencies = result.latencies_ms
    one, two = result.phases
    return [
        machine(result.postgres_version),
        f"job: scripted:demo, 2 model calls + 1 tool call; PostgreSQL; {REPLICAS} API replicas; "
        f"{args.clients} clients with ?wait=true; phases of {args.seconds:g} s",
        f"sequential trigger→finished, 1 worker (100 runs): p50 {statistics.median(latencies):.0f}"
        f" ms, p95 {latencies[94]:.0f} ms",
        f"1 worker:  {one.runs_per_s:.0f} runs/s",
        f"2 workers: {two.runs_per_s:.0f} runs/s",
        *cpu_lines(result.phases, result.pairs, args.pair_seconds),
        *postgres_lines(result.phases),
        *capacity_lines(two),
        f"recovery after kill -9 of a worker mid-run (heartbeat {args.heartbeat:g} s, "
        f"dead after {args.dead_after:g} s): {result.recovery_s:.1f} s until the run succeeded "
        "on the other worker",
    ]


def write_markdown(lines: list[str]) -> Path:
    today = datetime.date.today().isoformat()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"distributed-{today}.md"
    command = " ".join([".venv/bin/python", *sys.argv])
    body = "\n".join(lines[1:])
    path.write_text(
        f"# Distributed mode, {today}\n\n{lines[0]}\n\n`{command}`\n\n```text\n{body}\n```\n"
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=15, help="length of each phase")
    parser.add_argument(
        "--pairs", type=int, default=3, help="alternating worker/embedded pairs (odd: a median)"
    )
    parser.add_argument("--pair-seconds", type=float, default=8, help="length of a pair's phase")
    parser.add_argument("--heartbeat", type=float, default=5, help="ZERG_HEARTBEAT_INTERVAL_S")
    parser.add_argument("--dead-after", type=float, default=20, help="ZERG_WORKER_DEAD_AFTER_S")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="zerg-bench-"))
    pg_root = Path(tempfile.mkdtemp(prefix="zerg-bench-pg-"))
    try:
        result = run_distributed(root, pg_root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)
    lines = report(args, result)
    print("\n".join(lines))
    print(f"written to {write_markdown(lines)}")


if __name__ == "__main__":
    main()
