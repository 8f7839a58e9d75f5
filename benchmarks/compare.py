"""Zerg and its peer, LangGraph Server, side by side on one machine in one run.

Both systems get the same job — 2 model calls with 1 tool call between, through langchain-openai's
client against a local OpenAI-compatible server (`benchmarks/model_server.py`) that answers at
once or after `--delay` seconds — and are driven by the same client code, one system at a time:

- cold start to a healthy health check (median of 3 restarts) and idle RSS;
- sequential trigger → finished, p50/p95;
- `--clients` concurrent clients for `--seconds`: runs/s and the server's CPU per run; then
  Zerg and the peer at its default jobs again, one after the other, for `--pairs` alternating
  pairs, so that the machine's drift falls on both sides of the ratio (the verdict's figure);
- herds of N runs started at once with slow model calls: how long until every trigger was
  answered and every run finished, the server CPU the herd used, and the health check's p99
  meanwhile (Zerg also reports its event-loop lag);
- Zerg's server CPU per run against the in-process limit (`benchmarks/agent_loop.py`: the same
  agent loop with no persistence and no API), measured in the same run;
- Zerg's throughput with `--history` runs of history against without: the data dir as the
  benchmark left it and a copy seeded with the history, served in turn for `--history-pairs`
  alternating pairs, so that the machine's drift falls on both sides of each pair.

The peer is `langgraph dev` from `langgraph-cli[inmem]`, installed into its own virtual
environment (`benchmarks/peer.py`), at its default jobs per worker and at one as large as the
largest herd. The table, with the machine and the date, is written to `benchmarks/results/`.

    .venv/bin/python benchmarks/compare.py [--quick] [--herds 100,300,1000] [--history 100000]
"""

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import history  # noqa: E402
import peer  # noqa: E402
from task_runs import free_port, percentile  # noqa: E402

ANSWER = "6 * 7 = 42."
FINAL_EVENTS = {"run.succeeded", "run.failed", "run.cancelled", "run.timed_out"}


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 120) -> float:
    """Seconds from now until `url` answers 200 (the caller started `process` just before)."""
    start = time.perf_counter()
    deadline = start + timeout_s
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited ({process.returncode})")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - start
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"{url} did not become healthy")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- what a process tree uses, from /proc ---------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children(current)
    return pids


def cpu_seconds(pid: int) -> float:
    """CPU time of the process tree under `pid`, reaped children included."""
    total = 0.0
    for index, member in enumerate(tree(pid)):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12])
        if index == 0:
            ticks += int(fields[13]) + int(fields[14])
        total += ticks / os.sysconf("SC_CLK_TCK")
    return total


def rss_mb(pid: int) -> float:
    total = 0
    for member in tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total += next(int(line.split()[1]) for line in status.splitlines() if "VmRSS" in line)
    return total / 1024


# --- the two systems behind one interface ---------------------------------------------------


class System(Protocol):
    name: str
    url: str
    health: str
    process: subprocess.Popen[bytes]

    async def prepare(self, client: aiohttp.ClientSession, lanes: int) -> None: ...

    async def run_wait(self, client: aiohttp.ClientSession, lane: int) -> None: ...

    async def start(self, client: aiohttp.ClientSession, lane: int, slow: bool) -> Any: ...

    async def join(self, client: aiohttp.ClientSession, handle: Any) -> None: ...

    def launch(self) -> None: ...


@dataclass
class Zerg:
    """An embedded `zerg serve` (SQLite): one agent per lane, since an agent runs one at a time."""

    fast_url: str
    slow_url: str
    data_dir: Path
    name: str = "Zerg"
    health: str = "/health"
    port: int = field(default_factory=free_port)
    fast_agents: list[int] = field(default_factory=list)
    slow_agents: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        env = {
            **os.environ,
            "ZERG_DATA_DIR": str(self.data_dir),
            "ZERG_LOG_LEVEL": "warning",
            "ZERG_MODEL_BASE_URLS": f"{self.fast_url},{self.slow_url}",
        }
        env.pop("OPENAI_API_KEY", None)
        zerg = Path(sys.executable).with_name("zerg")
        log = (self.data_dir.parent / "zerg.log").open("ab")
        self.process = subprocess.Popen(
            [str(zerg), "serve", "--port", str(self.port)], env=env, stdout=log, stderr=log
        )

    async def _agents(self, client: aiohttp.ClientSession, url: str, count: int) -> list[int]:
        agent = {
            "model": "openai:bench",
            "system_instructions": "You are a benchmark.",
            "task_instructions": "What is 6 * 7?",
            "tools": ["calculator"],
            "config": {"base_url": url},
        }
        tag = "slow" if url == self.slow_url else "fast"
        ids: list[int] = []
        for index in range(count):
            body = {**agent, "name": f"{tag}-{index}-{time.monotonic_ns()}"}
            async with client.post("/api/agents", json=body) as response:
                response.raise_for_status()
                ids.append((await response.json())["id"])
        return ids

    async def prepare(self, client: aiohttp.ClientSession, lanes: int) -> None:
        self.fast_agents += await self._agents(client, self.fast_url, lanes - len(self.fast_agents))

    async def prepare_slow(self, client: aiohttp.ClientSession, count: int) -> None:
        missing = count - len(self.slow_agents)
        if missing > 0:
            self.slow_agents += await self._agents(client, self.slow_url, missing)

    async def run_wait(self, client: aiohttp.ClientSession, lane: int) -> None:
        agent = self.fast_agents[lane]
        async with client.post(f"/api/agents/{agent}/task?wait=true") as response:
            run = await response.json()
        if response.status != 200 or run["status"] != "succeeded":
            raise SystemExit(f"Zerg: run did not succeed: {run}")

    async def start(self, client: aiohttp.ClientSession, lane: int, slow: bool) -> int:
        agent = (self.slow_agents if slow else self.fast_agents)[lane]
        async with client.post(f"/api/agents/{agent}/task") as response:
            run = await response.json()
        if response.status != 202:
            raise SystemExit(f"Zerg: trigger refused: {run}")
        return int(run["id"])

    async def join(self, client: aiohttp.ClientSession, handle: int) -> None:
        """Follow the run's event stream to its terminal event."""
        async with client.get(f"/api/runs/{handle}/events") as response:
            async for raw in response.content:
                line = raw.decode().strip()
                if line.startswith("event:") and (event := line[6:].strip()) in FINAL_EVENTS:
                    if event != "run.succeeded":
                        raise SystemExit(f"Zerg: run {handle} ended {event}")
                    return
        raise SystemExit(f"Zerg: run {handle}'s events ended without its end")

    async def check_answer(self, client: aiohttp.ClientSession) -> None:
        """The last run's thread holds the model's answer (the job really ran)."""
        async with client.get("/api/runs?limit=1") as response:
            runs = await response.json()
        thread = runs["items"][0]["thread_id"] if "items" in runs else runs[0]["thread_id"]
        async with client.get(f"/api/threads/{thread}/messages") as response:
            messages = await response.json()
        items = messages["items"] if isinstance(messages, dict) else messages
        if items[-1]["content"] != ANSWER or len(items) != 5:
            raise SystemExit(f"Zerg: unexpected thread: {items}")

    async def loop_lag(self, client: aiohttp.ClientSession) -> dict[float, float]:
        """The cumulative event-loop lag histogram: {bucket upper bound: count}."""
        async with client.get("/metrics") as response:
            text = await response.text()
        buckets = {}
        for line in text.splitlines():
            if line.startswith("zerg_event_loop_lag_seconds_bucket"):
                bound = line.split('le="')[1].split('"')[0]
                buckets[float(bound)] = float(line.rsplit(" ", 1)[1])
        return buckets


@dataclass
class Peer:
    """`langgraph dev` (in-memory runtime) serving the same job as two graphs, fast and slow."""

    fast_url: str
    slow_url: str
    log: Path
    jobs: int | None
    health: str = peer.PEER_HEALTH_PATH
    port: int = field(default_factory=free_port)

    @property
    def name(self) -> str:
        return f"peer ({self.jobs} jobs)" if self.jobs else "peer (default jobs)"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        self.process = peer.start_peer(self.port, self.jobs, self.fast_url, self.slow_url, self.log)

    async def prepare(self, client: aiohttp.ClientSession, lanes: int) -> None:
        pass

    async def run_wait(self, client: aiohttp.ClientSession, lane: int) -> None:
        await peer.run_wait(client, "fast")

    async def start(self, client: aiohttp.ClientSession, lane: int, slow: bool) -> Any:
        return await peer.start(client, "slow" if slow else "fast")

    async def join(self, client: aiohttp.ClientSession, handle: Any) -> None:
        await peer.join(client, handle)


# --- the measures ---------------------------------------------------------------------------


def client_for(system: System, connections: int) -> aiohttp.ClientSession:
    """The driver's client, on aiohttp: httpx's pool looks at every open connection for each
    request, so with a thousand of them the client, not the server, would set the pace. Idle
    connections close before the servers' 5 s keep-alive does, so none is reused as it closes."""
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=3)
    timeout = aiohttp.ClientTimeout(total=600)
    return aiohttp.ClientSession(system.url, connector=connector, timeout=timeout)


async def sequential(system: System, runs: int) -> list[float]:
    async with client_for(system, 5) as client:
        await system.prepare(client, 1)
        for _ in range(10):  # warm-up
            await system.run_wait(client, 0)
        latencies = []
        for _ in range(runs):
            start = time.perf_counter()
            await system.run_wait(client, 0)
            latencies.append((time.perf_counter() - start) * 1000)
        if isinstance(system, Zerg):
            await system.check_answer(client)
    return latencies


async def concurrent(system: System, clients: int, seconds: float) -> tuple[float, float]:
    """Runs/s of `clients` clients each running one run after another, and the server's CPU
    ms per run meanwhile."""
    async with client_for(system, clients + 5) as client:
        await system.prepare(client, clients)
        done = 0
        deadline = 0.0

        async def lane(index: int) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await system.run_wait(client, index)
                done += 1

        deadline = time.perf_counter() + min(3.0, seconds)  # warm-up
        await asyncio.gather(*(lane(i) for i in range(clients)))
        done = 0
        cpu = cpu_seconds(system.process.pid)
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(lane(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(system.process.pid) - cpu
    return done / elapsed, cpu * 1000 / done


@dataclass
class Herd:
    runs: int
    answered_s: float = 0.0
    finished_s: float = 0.0
    cpu_s: float = 0.0
    health_p99_ms: float = 0.0
    health_max_ms: float = 0.0
    lag_p99_ms: float | None = None
    error: str | None = None

    @property
    def bound_s(self) -> float:
        return 3 + 1.2 * self.cpu_s


async def probe_health(system: System, stop: asyncio.Event, latencies: list[float]) -> None:
    async with client_for(system, 1) as client:
        while not stop.is_set():
            start = time.perf_counter()
            async with client.get(system.health) as response:
                await response.read()
            latencies.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(0.05)


async def herd(system: System, runs: int) -> Herd:
    result = Herd(runs)
    async with client_for(system, runs + 10) as client:
        if isinstance(system, Zerg):
            await system.prepare_slow(client, runs)
            lag_before = await system.loop_lag(client)
        health: list[float] = []
        stopped = asyncio.Event()
        prober = asyncio.create_task(probe_health(system, stopped, health))
        await asyncio.sleep(0.3)
        cpu = cpu_seconds(system.process.pid)
        start = time.perf_counter()
        try:
            handles = await asyncio.gather(*(system.start(client, i, True) for i in range(runs)))
            result.answered_s = time.perf_counter() - start
            await asyncio.gather(*(system.join(client, h) for h in handles))
            result.finished_s = time.perf_counter() - start
        except (SystemExit, aiohttp.ClientError, peer.PeerRunError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"[:200]
        result.cpu_s = cpu_seconds(system.process.pid) - cpu
        stopped.set()
        await prober
        result.health_p99_ms = percentile(health, 0.99)
        result.health_max_ms = max(health)
        if isinstance(system, Zerg):
            lag = await system.loop_lag(client)
            result.lag_p99_ms = lag_p99_ms(lag_before, lag)
        await asyncio.sleep(1)  # let the server settle before the next measure
    return result


def lag_p99_ms(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The upper bound of the lag bucket holding the 99th percentile of the samples between."""
    counts = sorted((bound, after[bound] - before.get(bound, 0)) for bound in after)
    total = counts[-1][1] if counts else 0
    if not total:
        return None
    for bound, cumulative in counts:
        if cumulative >= 0.99 * total:
            return bound * 1000
    return None


@dataclass
class Report:
    name: str
    first_start_s: float = 0.0
    restart_s: float = 0.0
    idle_rss_mb: float = 0.0
    final_rss_mb: float = 0.0
    seq: list[float] = field(default_factory=list)
    runs_per_s: float = 0.0
    cpu_ms_per_run: float = 0.0
    herds: list[Herd] = field(default_factory=list)
    history_runs: int = 0
    # (runs/s without the history, runs/s with it), one per alternating pair.
    history_pairs: list[tuple[float, float]] = field(default_factory=list)

    @property
    def history_share(self) -> float:
        """The median over the pairs of with / without."""
        return statistics.median(seeded / empty for empty, seeded in self.history_pairs)


def start_and_time(system: System) -> float:
    system.launch()
    return wait_healthy(system.url + system.health, system.process)


def cold_starts(system: System, restarts: int) -> tuple[float, float]:
    """Seconds to healthy: the first start, and the median of `restarts` restarts."""
    first = start_and_time(system)
    times = []
    for _ in range(restarts):
        stop(system.process)
        times.append(start_and_time(system))
    return first, statistics.median(times)


def measure(system: System, args: argparse.Namespace, herds: list[int]) -> Report:
    report = Report(system.name)
    print(f"== {system.name}", file=sys.stderr)
    try:
        report.first_start_s, report.restart_s = cold_starts(system, 3)
        time.sleep(2)
        report.idle_rss_mb = rss_mb(system.process.pid)
        if args.runs:
            report.seq = asyncio.run(sequential(system, args.runs))
            print(f"   sequential p50 {statistics.median(report.seq):.1f} ms", file=sys.stderr)
        report.runs_per_s, report.cpu_ms_per_run = asyncio.run(
            concurrent(system, args.clients, args.seconds)
        )
        print(f"   {report.runs_per_s:.1f} runs/s", file=sys.stderr)
        for runs in herds:
            result = asyncio.run(herd(system, runs))
            report.herds.append(result)
            print(f"   herd {runs}: {result}", file=sys.stderr)
        report.final_rss_mb = rss_mb(system.process.pid)
    finally:
        stop(system.process)
    return report


def fresh_throughput(system: System, args: argparse.Namespace) -> float:
    """The concurrent phase's runs/s on the system started anew, then stopped."""
    start_and_time(system)
    try:
        return asyncio.run(concurrent(system, args.clients, args.seconds))[0]
    finally:
        stop(system.process)


def alternating_pairs(
    first: System, second: System, pairs: int, args: argparse.Namespace
) -> list[tuple[float, float]]:
    """(`first`'s runs/s, `second`'s) of the concurrent phase, each started anew, for `pairs`
    pairs; which of the two goes first alternates from pair to pair, so that the machine's
    drift falls on both sides of each pair's ratio."""
    measured = []
    for index in range(pairs):
        if index % 2:
            theirs = fresh_throughput(second, args)
            ours = fresh_throughput(first, args)
        else:
            ours = fresh_throughput(first, args)
            theirs = fresh_throughput(second, args)
        measured.append((ours, theirs))
        print(f"   pair {index + 1}: {ours:.1f} / {theirs:.1f} runs/s", file=sys.stderr)
    return measured


def measure_history(zerg: Zerg, args: argparse.Namespace, report: Report) -> None:
    """Throughput without and with `args.history` runs of history, in alternating pairs: the
    stopped server's data dir is copied, the copy seeded, and the two served in turn."""
    seeded = Zerg(zerg.fast_url, zerg.slow_url, zerg.data_dir.with_name("zerg-history"))
    shutil.copytree(zerg.data_dir, seeded.data_dir)
    seeded.fast_agents = list(zerg.fast_agents)
    report.history_runs = history.seed_history(seeded.data_dir, args.history)
    print(f"   seeded {report.history_runs} runs of history; without / with it:", file=sys.stderr)
    report.history_pairs = alternating_pairs(zerg, seeded, args.history_pairs, args)


def in_process_limit(fast_url: str, runs: int) -> dict[str, float]:
    script = HERE / "agent_loop.py"
    command = [sys.executable, str(script), "--model-url", fast_url, "--runs", str(runs)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


# --- the table ------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        cpu = next(ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if "model name" in ln)
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def fmt_herd(h: Herd | None) -> str:
    if h is None:
        return "not run"
    if h.error:
        return f"failed: {h.error}"
    return f"{h.finished_s:.1f} s (bound {h.bound_s:.1f} s: CPU {h.cpu_s:.1f} s)"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def render(
    zerg: Report,
    peers: list[Report],
    limit: dict[str, float],
    args: argparse.Namespace,
    pairs: list[tuple[float, float]],
) -> str:
    default, big = peers[0], peers[-1]
    z_p50 = statistics.median(zerg.seq)
    p_p50 = statistics.median(default.seq) if default.seq else None
    rows: list[tuple[str, str, str, str, str]] = []

    def row(measure: str, peer_v: str, zerg_v: str, ratio: str, target: str, ok: bool | None):
        rows.append((measure, peer_v, zerg_v, ratio, f"{target}: {verdict(ok)}"))

    if p_p50:
        row(
            "sequential trigger → finished, p50 (p95)",
            f"{p_p50:.0f} ms ({percentile(default.seq, 0.95):.0f})",
            f"{z_p50:.1f} ms ({percentile(zerg.seq, 0.95):.1f})",
            f"1/{p_p50 / z_p50:.0f}",
            "≤ 1/40 of the peer",
            z_p50 <= p_p50 / 40,
        )
    best_peer = max(default.runs_per_s, big.runs_per_s)
    row(
        f"{args.clients} concurrent clients, runs/s",
        " / ".join(f"{p.runs_per_s:.1f} ({p.name[6:-1]})" for p in peers),
        f"{zerg.runs_per_s:.1f}",
        f"{zerg.runs_per_s / best_peer:.2f}x",
        "≥ 2x the peer" + (" (verdict: the pairs below)" if pairs else ""),
        None if pairs else zerg.runs_per_s >= 2 * best_peer,
    )
    if pairs:
        share = statistics.median(ours / theirs for ours, theirs in pairs)
        row(
            f"{args.clients} concurrent clients, runs/s, {len(pairs)} alternating pairs "
            f"with the peer at default jobs (median ratio)",
            ", ".join(f"{theirs:.1f}" for _, theirs in pairs),
            ", ".join(f"{ours:.1f}" for ours, _ in pairs),
            f"{share:.2f}x",
            "≥ 2x the peer",
            share >= 2,
        )
    for z_herd in zerg.herds:
        peer_herds = [next((h for h in p.herds if h.runs == z_herd.runs), None) for p in peers]
        peer_text = " / ".join(fmt_herd(h) for h in peer_herds)
        ok = z_herd.error is None and z_herd.finished_s <= z_herd.bound_s
        best = [h.finished_s for h in peer_herds if h and not h.error]
        ratio = f"{min(best) / z_herd.finished_s:.1f}x faster" if best else "—"
        row(
            f"herd of {z_herd.runs} runs, model calls {args.delay:g} s: all finished",
            peer_text,
            fmt_herd(z_herd),
            ratio,
            "≤ 3 s + 1.2 x herd CPU",
            ok,
        )
        answered = [f"{h.answered_s:.2f} s" if h and not h.error else "—" for h in peer_herds]
        row(
            f"herd of {z_herd.runs}: all {z_herd.runs} triggers answered",
            " / ".join(answered),
            f"{z_herd.answered_s:.2f} s",
            "",
            f"≤ {z_herd.runs * 3} ms",
            z_herd.answered_s * 1000 <= z_herd.runs * 3,
        )
        health = [f"{h.health_p99_ms:.0f} ms" if h else "—" for h in peer_herds]
        lag = f"; loop lag p99 ≤ {z_herd.lag_p99_ms:.0f} ms" if z_herd.lag_p99_ms else ""
        row(
            f"herd of {z_herd.runs}: health check p99 (max)",
            " / ".join(health),
            f"{z_herd.health_p99_ms:.0f} ms ({z_herd.health_max_ms:.0f}){lag}",
            "",
            "< 100 ms; loop lag < 50 ms",
            z_herd.health_p99_ms < 100 and (z_herd.lag_p99_ms or 0) < 50,
        )
    ratio = zerg.cpu_ms_per_run / limit["cpu_ms_per_run"]
    row(
        "server CPU per run vs the in-process limit",
        " / ".join(f"{p.cpu_ms_per_run:.1f} ms" for p in peers),
        f"{zerg.cpu_ms_per_run:.1f} ms vs {limit['cpu_ms_per_run']:.1f} ms",
        f"{ratio:.1f}x",
        "≤ 4x",
        ratio <= 4,
    )
    if zerg.history_pairs:
        pairs = ", ".join(f"{seeded:.1f}/{empty:.1f}" for empty, seeded in zerg.history_pairs)
        row(
            f"throughput with {zerg.history_runs:,} runs of history vs without, "
            f"median of {len(zerg.history_pairs)} alternating pairs",
            "—",
            f"{pairs} runs/s (with/without)",
            f"{zerg.history_share:.0%}",
            "≥ 90 %",
            zerg.history_share >= 0.9,
        )
    row(
        "idle RSS after start (after the benchmark)",
        " / ".join(f"{p.idle_rss_mb:.0f} MB ({p.final_rss_mb:.0f})" for p in peers),
        f"{zerg.idle_rss_mb:.0f} MB ({zerg.final_rss_mb:.0f})",
        f"{zerg.idle_rss_mb / default.idle_rss_mb:.2f}x",
        "< 150 MB",
        zerg.idle_rss_mb < 150,
    )
    row(
        "cold start to healthy: restart median (first start)",
        " / ".join(f"{p.restart_s:.2f} s ({p.first_start_s:.2f})" for p in peers),
        f"{zerg.restart_s:.2f} s ({zerg.first_start_s:.2f})",
        f"{zerg.restart_s / default.restart_s:.2f}x",
        "< 2 s",
        zerg.restart_s < 2,
    )
    header = (
        "| measure | peer: LangGraph Server | Zerg | ratio | target |\n"
        "| --- | --- | --- | --- | --- |\n"
    )
    body = "".join(f"| {' | '.join(r)} |\n" for r in rows)
    peer_names = ", ".join(p.name for p in peers)
    return (
        f"# Zerg vs LangGraph Server, {datetime.date.today().isoformat()}\n\n"
        f"Machine: {machine()}.\n\n"
        f"Job: 2 model calls + 1 calculator call through langchain-openai against a local "
        f"OpenAI-compatible server (answers at once; {args.delay:g} s per call in the herds). "
        f"Zerg: embedded `zerg serve` on SQLite. Peer: `langgraph dev` (in-memory runtime), "
        f"{peer_names}; where two figures are given they are in that order. "
        f"In-process limit: {limit['cpu_ms_per_run']:.1f} ms CPU per run "
        f"({limit['runs']:.0f} runs of `benchmarks/agent_loop.py`).\n\n"
        f"{header}{body}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="Zerg's sequential runs")
    parser.add_argument("--peer-runs", type=int, default=30, help="the peer's sequential runs")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15, help="concurrent phase length")
    parser.add_argument("--herds", default="100,300,1000", help="herd sizes")
    parser.add_argument("--peer-default-herds", default="100", help="herds at default jobs")
    parser.add_argument("--delay", type=float, default=1.5, help="model call delay in herds")
    parser.add_argument("--history", type=int, default=100_000, help="runs of history (0: skip)")
    parser.add_argument("--history-pairs", type=int, default=3, help="pairs without/with history")
    parser.add_argument("--pairs", type=int, default=5, help="alternating pairs with the peer")
    parser.add_argument("--skip-peer", action="store_true", help="measure Zerg only")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.peer_runs, args.seconds = 30, 5, 3
        args.herds, args.peer_default_herds, args.history = "50", "50", 2000
        args.history_pairs = args.pairs = 2
    herds = [int(n) for n in args.herds.split(",") if n]
    root = Path(tempfile.mkdtemp(prefix="zerg-compare-"))
    servers = []
    try:
        urls = []
        for delay in (0.0, args.delay):
            port = free_port()
            command = [sys.executable, str(HERE / "model_server.py"), "--port", str(port)]
            server = subprocess.Popen(
                [*command, "--delay", str(delay)], stdout=subprocess.PIPE, text=True
            )
            servers.append(server)
            assert server.stdout is not None
            server.stdout.readline()
            urls.append(f"http://127.0.0.1:{port}/v1")
        fast_url, slow_url = urls
        limit = in_process_limit(fast_url, 300)
        print(f"== in-process limit: {limit}", file=sys.stderr)
        zerg = Zerg(fast_url, slow_url, root / "zerg")
        zerg_report = measure(zerg, args, herds)
        if args.history:
            measure_history(zerg, args, zerg_report)
        peers: list[Report] = []
        if not args.skip_peer:
            peer.ensure_peer()
            default = Peer(fast_url, slow_url, root / "peer-default.log", None)
            peer_herds = [int(n) for n in args.peer_default_herds.split(",") if n]
            big = Peer(fast_url, slow_url, root / "peer-big.log", max(herds))
            default_args = argparse.Namespace(**{**vars(args), "runs": args.peer_runs})
            peers.append(measure(default, default_args, peer_herds))
            big_args = argparse.Namespace(**{**vars(args), "runs": 0})
            peers.append(measure(big, big_args, herds))
            print("== Zerg / peer (default jobs), alternating", file=sys.stderr)
            pairs = alternating_pairs(zerg, default, args.pairs, args)
        else:
            peers, pairs = [zerg_report], []
        table = render(zerg_report, peers, limit, args, pairs)
    finally:
        for server in servers:
            server.terminate()
        shutil.rmtree(root, ignore_errors=True)
    print(table)
    if args.quick or args.skip_peer:
        return  # a smoke run or Zerg alone does not replace the day's comparison
    out = HERE / "results" / f"compare-{datetime.date.today().isoformat()}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(table)
    print(f"written to {out.relative_to(HERE.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
