"""The in-process limit: Zerg's agent loop alone, with no persistence and no HTTP API.

The same job as `benchmarks/compare.py` gives a `zerg serve` — 2 model calls through the
`openai:` client path with 1 calculator call between — run by the same compiled LangGraph
graph, model client and tools a task run uses, but straight on one event loop: no database, no
durable engine, no API. What a run costs here is the floor of what it can cost in the server.

    .venv/bin/python benchmarks/agent_loop.py --model-url http://127.0.0.1:PORT/v1 [--runs 300]

prints one JSON line: {"runs": N, "cpu_ms_per_run": …, "wall_ms_per_run": …}.
"""

import argparse
import asyncio
import json
import time

from langchain_core.messages import HumanMessage, SystemMessage

from zerg.agents.models import chat_model
from zerg.agents.runner import _agent_graph, _RunContext, run_tracing_hooks_inline
from zerg.settings import Settings

MODEL = "openai:bench"


async def one_run(settings: Settings, model_url: str) -> None:
    model = await chat_model(MODEL, {"base_url": model_url}, settings)
    graph = _agent_graph(("calculator",), None)
    state = {
        "messages": [
            SystemMessage(content="You are a benchmark."),
            HumanMessage(content="What is 6 * 7?"),
        ]
    }
    produced = []
    config = {"recursion_limit": 101}
    context = _RunContext(model=model)
    async for _mode, update in graph.astream(
        state, config, context=context, stream_mode=["updates"]
    ):
        for node_update in update.values():
            produced.extend((node_update or {}).get("messages", []))
    if len(produced) != 3 or produced[-1].text != "6 * 7 = 42.":
        raise SystemExit(f"unexpected run: {produced}")


async def measure(model_url: str, runs: int) -> dict[str, float]:
    settings = Settings(model_base_urls=model_url)
    run_tracing_hooks_inline()  # as `zerg serve` does
    for _ in range(20):  # warm-up: imports, the compiled graph, the first connection
        await one_run(settings, model_url)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(runs):
        await one_run(settings, model_url)
    return {
        "runs": runs,
        "cpu_ms_per_run": (time.process_time() - cpu) * 1000 / runs,
        "wall_ms_per_run": (time.perf_counter() - wall) * 1000 / runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-url", required=True, help="the model server's base URL (/v1)")
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.model_url, args.runs))))


if __name__ == "__main__":
    main()
