"""Embedded mode runs DBOS's per-workflow bookkeeping on the event loop, and nothing else."""

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zerg.engine import RunEngine, inline
from zerg.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_bookkeeping_runs_on_the_loop_and_other_calls_on_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    placed: list[tuple[str, bool]] = []
    decide = inline.runs_inline

    def record(fn: Callable[..., Any]) -> bool:
        target = inline._target(fn)
        placed.append((f"{target.__module__}:{target.__qualname__}", decide(fn)))
        return decide(fn)

    monkeypatch.setattr(inline, "runs_inline", record)
    threads: dict[str, int] = {}
    finished = asyncio.Event()

    async def execute(run_id: int, workflow_id: str | None) -> None:
        threads["loop"] = threading.get_ident()
        # Anything else sent to a thread still gets one.
        threads["to_thread"] = await asyncio.to_thread(threading.get_ident)
        finished.set()

    engine = RunEngine(Settings(data_dir=tmp_path), execute, "embedded")
    await asyncio.to_thread(engine.launch)
    try:
        await engine.submit(1, "1", "run-inline-test", queued=False)
        await asyncio.wait_for(finished.wait(), 30)
        await asyncio.sleep(0.2)  # the outcome is recorded after the body returns
    finally:
        engine.shutdown()

    on_loop = {name for name, inline_ in placed if inline_}
    # If a DBOS release renames these, runs get slower (they go back to threads): update
    # INLINE_CALLS for that release.
    assert on_loop == {f"{module}:{name}" for module, name in inline.INLINE_CALLS}
    assert threads["to_thread"] != threads["loop"]
