"""What a long-lived Zerg process (`zerg serve`, `zerg worker`) holds for good: code loaded on
first use, off the event loop, and the garbage collector's settings.

Loading. The agent loop (LangChain, LangGraph) and each provider SDK take a second or more to
import, and a server that never runs an agent needs none of them: each is loaded when first
needed, once, on a worker thread while the event loop goes on serving (an import on the loop
would stall every run and request meanwhile).

Collecting. A full collection walks every object the process holds, on the event loop. With
those libraries loaded and a herd of runs in flight, one took 100-300 ms, and Python started
one every few hundred milliseconds: every request and run waited meanwhile. So what is loaded
is frozen (left out of collections for good: it lives as long as the process), young
collections run after 10,000 new objects rather than 700, and full ones about every thousand
runs rather than every few. Memory still goes back as usual: objects are freed when their last
reference goes, and the collector only exists for reference cycles (a few megabytes of them
wait a little longer). Measured with a herd of 1,000 runs: the event loop's lag p99 went from
0.5-1 s to under 50 ms.
"""

import asyncio
import gc
from collections.abc import Callable

# A young collection after 10,000 new objects (Python: 700); a middle one after 5 young ones;
# a full one after 1,000 middle ones (Python: 10 and 10), about every thousand runs.
YOUNG_THRESHOLD = 10_000
MIDDLE_THRESHOLD = 5
OLD_THRESHOLD = 1_000

_loading: dict[str, asyncio.Future[None]] = {}


def settle() -> None:
    """Freeze what the process has loaded so far, and collect less often from now on. Call
    once the process has started, and again after loading more for good."""
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


def loaded(name: str) -> bool:
    """Whether `load_once(name, …)` has finished."""
    loading = _loading.get(name)
    return loading is not None and loading.done() and loading.exception() is None


async def load_once(name: str, load: Callable[[], None]) -> None:
    """Run `load` (imports, warm-ups) once per process on a worker thread; every caller waits
    for the same load. A load that failed raises its error to every caller."""
    loading = _loading.get(name)
    loop = asyncio.get_running_loop()
    if loading is None or (not loading.done() and loading.get_loop() is not loop):
        loading = asyncio.ensure_future(asyncio.to_thread(load))
        _loading[name] = loading
    if not loading.done():
        await asyncio.shield(loading)
        settle()  # what it loaded stays for good
    loading.result()
