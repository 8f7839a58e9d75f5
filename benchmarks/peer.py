"""LangGraph Server (`langgraph dev`, in-memory) as the benchmark's peer: its venv, its process
and a client that runs the benchmark job on it the way the driver runs it on Zerg.

The peer runs in a venv of its own (`PEER_VENV`) with the same langchain, langchain-openai,
langgraph and langchain-core versions as Zerg's interpreter, so both run the same agent loop;
its graphs are in `benchmarks/peer_graph/`. `benchmarks/compare.py` imports this module, in
Zerg's venv, and drives the peer with the client functions below.

Mind, when reading its numbers, that the in-memory runtime of `langgraph dev` picks queued runs
up by polling every 0.5 s, and skips runs created during the current sleep: a lone run waits
0.5 to 1 s before it starts (about 1 s, back to back), however fast the job itself is.
"""

import importlib.metadata
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

BENCHMARKS = Path(__file__).resolve().parent
PEER_VENV = BENCHMARKS / ".peer-venv"
PEER_GRAPH = BENCHMARKS / "peer_graph"
# The server's liveness route (the CLI itself polls it before opening the Studio).
PEER_HEALTH_PATH = "/ok"
PEER_CLI = "langgraph-cli[inmem]"
PINNED = ("langchain", "langchain-openai", "langgraph", "langchain-core")
ANSWER = "6 * 7 = 42."
JOB_INPUT = {"messages": [{"role": "user", "content": "What is 6 * 7? Use the calculator."}]}


def progress(text: str) -> None:
    print(f"peer: {text}", file=sys.stderr, flush=True)


# -- the venv ---------------------------------------------------------------------------------


def requirements() -> list[str]:
    """The CLI and the agent-loop packages at exactly the versions Zerg's interpreter has."""
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in PINNED]
    return [PEER_CLI, *pins]


def ensure_peer() -> Path:
    """Make `PEER_VENV` if missing, (re)install when the pins changed; the `langgraph` path."""
    python = PEER_VENV / "bin" / "python"
    langgraph = PEER_VENV / "bin" / "langgraph"
    stamp = PEER_VENV / "zerg-requirements.txt"
    wanted = "\n".join(requirements()) + "\n"
    if langgraph.exists() and stamp.exists() and stamp.read_text() == wanted:
        return langgraph
    if not python.exists():
        progress(f"creating {PEER_VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    progress("installing " + " ".join(requirements()))
    command = [str(python), "-m", "pip", "install", "--quiet", *requirements()]
    subprocess.run(command, check=True, stdout=sys.stderr)
    stamp.write_text(wanted)
    return langgraph


# -- the process ------------------------------------------------------------------------------


def peer_env(fast_url: str, slow_url: str) -> dict[str, str]:
    """The peer's environment: the graphs' model URLs, and nothing that reaches the internet."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        PEER_FAST_MODEL_URL=fast_url,
        PEER_SLOW_MODEL_URL=slow_url,
        # The CLI posts usage analytics from a thread; the server checks for a newer release.
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGGRAPH_NO_VERSION_CHECK="true",
        # Explicitly off, so a LANGSMITH_API_KEY in the caller's environment cannot turn
        # tracing on (the server enables it whenever a key is set and these are not).
        LANGSMITH_TRACING="false",
        LANGSMITH_TRACING_V2="false",
        LANGCHAIN_TRACING_V2="false",
        # The server's own default is INFO, a line or two per run; Zerg is benchmarked at warning.
        LOG_LEVEL="WARNING",
    )
    return env


def peer_command(langgraph: Path, port: int, n_jobs: int | None, allow_blocking: bool) -> list[str]:
    command = [str(langgraph), "dev", "--no-browser", "--no-reload"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    if n_jobs is not None:
        command += ["--n-jobs-per-worker", str(n_jobs)]
    if allow_blocking:
        command.append("--allow-blocking")
    return [*command, "--config", str(PEER_GRAPH / "langgraph.json")]


def start_peer(
    port: int,
    n_jobs: int | None,
    fast_url: str,
    slow_url: str,
    log: Path,
    *,
    allow_blocking: bool = True,
) -> subprocess.Popen[bytes]:
    """Start `langgraph dev` (from `ensure_peer`) on `port`, its output to `log`; returns at
    once.

    `n_jobs` is the number of runs executed at once. Left out, `langgraph dev` runs ONE at a
    time (its CLI passes 1, whatever `--help` says), so give it for any concurrent measurement.
    `allow_blocking` turns off the dev server's blocking-call detector (blockbuster), which
    wraps file and socket functions with a stack check on every call; a deployed LangGraph
    Server does not run it. Without `--no-reload` uvicorn would run the server in a child
    process under a file watcher; with it there is one process, whose event loop serves the
    API and executes the runs (the in-memory queue runs them as tasks on that same loop).
    """
    langgraph = PEER_VENV / "bin" / "langgraph"
    # The in-memory server pickles its store to `.langgraph_api/` in its working directory
    # every 10 s and loads it at start: start each peer from an empty store, as Zerg is.
    shutil.rmtree(PEER_GRAPH / ".langgraph_api", ignore_errors=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            peer_command(langgraph, port, n_jobs, allow_blocking),
            cwd=PEER_GRAPH,
            env=peer_env(fast_url, slow_url),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


# -- the client -------------------------------------------------------------------------------


class PeerRunError(RuntimeError):
    """A run that failed, or ended without the job's final answer."""


@dataclass(frozen=True)
class PeerRun:
    """A background run, as `start` returns it for `join`."""

    thread_id: str
    run_id: str


def run_request(graph: str) -> dict[str, Any]:
    # `on_completion: keep`: a run without a thread gets a new one, kept like every Zerg thread.
    return {"assistant_id": graph, "input": JOB_INPUT, "on_completion": "keep"}


def check_answer(values: Any) -> None:
    """Raise `PeerRunError` unless the run's final state ends with the job's answer."""
    if not isinstance(values, dict):
        raise PeerRunError(f"unexpected run output: {values!r}")
    if "__error__" in values:
        raise PeerRunError(f"run failed: {values['__error__']}")
    messages = values.get("messages") or [{}]
    content = messages[-1].get("content")
    if content != ANSWER:
        raise PeerRunError(f"run ended with {content!r}, not {ANSWER!r}")


async def run_wait(client: aiohttp.ClientSession, graph: str) -> None:
    """One run of the job on `graph` in a new thread, answered when it has finished."""
    async with client.post("/runs/wait", json=run_request(graph)) as response:
        response.raise_for_status()
        check_answer(await response.json())


async def start(client: aiohttp.ClientSession, graph: str) -> PeerRun:
    """Queue one background run of the job on `graph` in a new thread; returns once queued."""
    async with client.post("/runs", json=run_request(graph)) as response:
        response.raise_for_status()
        run = await response.json()
    return PeerRun(thread_id=run["thread_id"], run_id=run["run_id"])


async def join(client: aiohttp.ClientSession, run: PeerRun) -> None:
    """Wait until `run` has finished; raise unless it ended with the job's answer."""
    async with client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/join") as response:
        response.raise_for_status()
        check_answer(await response.json())
