"""Distributed mode on PostgreSQL: runs/s with 1 and 2 workers, and the time another worker
takes to finish the run of a worker killed mid-run (kill -9).

Starts its own PostgreSQL (like the tests), 2 API replicas (`zerg serve --no-execute`) and the
workers. The job: a `scripted:demo` agent with the calculator tool — 2 model calls and 1 tool
call per run — triggered with `?wait=true` by concurrent clients spread over both replicas.
The recovery run uses a fake OpenAI server whose second model call hangs until the kill.

    .venv/bin/python benchmarks/distributed.py [--clients 20] [--seconds 15]
        [--heartbeat 5] [--dead-after 20]
"""

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.openai_server import FakeOpenAI, Hang, Text, ToolCall
from tests.support.postgres import start_postgres
from tests.support.processes import WorkerProcess, ZergProcess


def wait_until(predicate: Callable[[], Any], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.02)


async def throughput(urls: list[str], agent_ids: list[int], seconds: float) -> float:
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

        deadline = time.perf_counter() + 2  # warm-up
        await asyncio.gather(*(one_client(i, a) for i, a in enumerate(agent_ids)))
        done = 0
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(one_client(i, a) for i, a in enumerate(agent_ids)))
        return done / (time.perf_counter() - start)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=15, help="length of each phase")
    parser.add_argument("--heartbeat", type=float, default=5, help="ZERG_HEARTBEAT_INTERVAL_S")
    parser.add_argument("--dead-after", type=float, default=20, help="ZERG_WORKER_DEAD_AFTER_S")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="zerg-bench-"))
    pg_root = Path(tempfile.mkdtemp(prefix="zerg-bench-pg-"))
    server = start_postgres(pg_root)
    # Started before the processes: the agents' config.base_url must be listed in their env.
    model = FakeOpenAI().start()
    processes: list[ZergProcess | WorkerProcess] = []
    try:
        subprocess.run(
            [
                str(server.bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(server.port),
                "-U",
                "zerg",
                "zerg",
            ],
            check=True,
        )
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
        apis = [ZergProcess(env, root / f"api{i}.log", ["--no-execute"]) for i in (1, 2)]
        workers = [WorkerProcess(env, root / f"w{i}.log", f"w{i}") for i in (1, 2)]
        processes.extend(apis)
        for api in apis:
            api.spawn()
        processes.append(workers[0].start())
        for api in apis:
            api.wait_ready()
        urls = [api.url for api in apis]
        agent = {
            "name": "bench",
            "model": "scripted:demo",
            "task_instructions": "What is 6 * 7?",
            "tools": ["calculator"],
        }
        agent_ids = [
            httpx.post(f"{urls[0]}/api/agents", json={**agent, "name": f"b{i}"}).json()["id"]
            for i in range(args.clients)
        ]
        sequential_ms(urls[0], agent_ids[0], 10)  # warm-up
        latencies = sequential_ms(urls[1], agent_ids[0], 100)
        one = asyncio.run(throughput(urls, agent_ids, args.seconds))
        processes.append(workers[1].start())
        two = asyncio.run(throughput(urls, agent_ids, args.seconds))
        recovered = recovery_s(apis, workers, model)
    finally:
        for process in processes:
            process.stop()
        model.stop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)

    print(
        f"job: scripted:demo, 2 model calls + 1 tool call; PostgreSQL; 2 API replicas; "
        f"{args.clients} clients with ?wait=true; {os.cpu_count()} cores"
    )
    print(
        f"sequential trigger→finished, 1 worker (100 runs): p50 {statistics.median(latencies):.0f}"
        f" ms, p95 {latencies[94]:.0f} ms"
    )
    print(f"1 worker:  {one:.0f} runs/s")
    print(f"2 workers: {two:.0f} runs/s")
    print(
        f"recovery after kill -9 of a worker mid-run (heartbeat {args.heartbeat:g} s, "
        f"dead after {args.dead_after:g} s): {recovered:.1f} s until the run succeeded "
        "on the other worker"
    )


if __name__ == "__main__":
    main()
