"""Task-run latency and throughput through the HTTP API of a real `zerg serve`.

The job: a `scripted:demo` agent with the calculator tool — 2 model calls and 1 tool call per
run, every message persisted. Prints sequential trigger→finished p50/p95, the runs/s that
20 concurrent clients get, and the server's CPU time per run while they run.

    .venv/bin/python benchmarks/task_runs.py [--runs 300] [--clients 20] [--seconds 15]
"""

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, port: int, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    zerg = Path(sys.executable).with_name("zerg")
    env = {**os.environ, "ZERG_DATA_DIR": str(data_dir), "ZERG_LOG_LEVEL": "warning", **extra_env}
    process = subprocess.Popen([str(zerg), "serve", "--port", str(port)], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("zerg serve did not start")


def server_cpu(pid: int) -> tuple[float, float] | None:
    """CPU seconds used so far by the server process and by its main thread, which runs the
    event loop (the API, the engine and every run); None where /proc is missing."""
    seconds = []
    for stat in (Path(f"/proc/{pid}/stat"), Path(f"/proc/{pid}/task/{pid}/stat")):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        seconds.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return seconds[0], seconds[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def sequential(client: httpx.AsyncClient, agent_id: int, runs: int) -> list[float]:
    latencies = []
    for _ in range(runs):
        start = time.perf_counter()
        response = await client.post(f"/api/agents/{agent_id}/task", params={"wait": "true"})
        latencies.append((time.perf_counter() - start) * 1000)
        body = response.json()
        if body["status"] != "succeeded":
            raise SystemExit(f"run did not succeed: {body}")
    return latencies


async def concurrent(
    client: httpx.AsyncClient, agent_ids: list[int], seconds: float
) -> tuple[int, float]:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(agent_id: int) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            response = await client.post(f"/api/agents/{agent_id}/task", params={"wait": "true"})
            if response.json()["status"] != "succeeded":
                raise SystemExit(f"run did not succeed: {response.text}")
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(agent_id) for agent_id in agent_ids))
    return done, time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="sequential runs")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=15, help="concurrent phase length")
    args = parser.parse_args()

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="zerg-bench-") as data_dir:
        server = start_server(Path(data_dir), port, {})
        try:
            limits = httpx.Limits(max_connections=args.clients + 5)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits
            ) as client:
                agent = {
                    "name": "bench",
                    "model": "scripted:demo",
                    "system_instructions": "You are a benchmark.",
                    "task_instructions": "What is 6 * 7?",
                    "tools": ["calculator"],
                }
                agent_ids = []
                for index in range(args.clients):
                    response = await client.post("/api/agents", json={**agent, "name": f"b{index}"})
                    agent_ids.append(response.json()["id"])
                await sequential(client, agent_ids[0], 20)  # warm-up
                latencies = await sequential(client, agent_ids[0], args.runs)
                cpu_before = server_cpu(server.pid)
                done, elapsed = await concurrent(client, agent_ids, args.seconds)
                cpu_after = server_cpu(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)

    cores = os.cpu_count()
    print(f"job: scripted:demo, 2 model calls + 1 tool call, SQLite (embedded), {cores} cores")
    print(
        f"sequential trigger→finished over HTTP ({args.runs} runs): "
        f"p50 {statistics.median(latencies):.1f} ms, p95 {percentile(latencies, 0.95):.1f} ms"
    )
    print(
        f"{args.clients} concurrent clients for {elapsed:.1f} s: {done} runs, "
        f"{done / elapsed:.0f} runs/s"
    )
    if cpu_before and cpu_after:
        process_ms, loop_ms = (
            (a - b) * 1000 / done for b, a in zip(cpu_before, cpu_after, strict=True)
        )
        print(
            f"server CPU per run in that phase: {process_ms:.1f} ms, {loop_ms:.1f} ms of it on "
            f"the event-loop thread (busy {loop_ms * done / elapsed / 10:.0f}% of the time)"
        )


if __name__ == "__main__":
    asyncio.run(main())
