"""What a long-lived Zerg process (`zerg serve`, `zerg worker`) holds for good: code loaded on
first use, off the event loop, and the garbage collector's settings.

Loading. The agent loop (LangChain, LangGraph) and each provider SDK take a second or more to
import, and a server that never runs an agent needs none of them: each is loaded when first
needed, once, on a worker thread while the event loop goes on serving (an import on the loop
would stall every run and request meanwhile).

Collecting. A full collection walks every object the process holds, on the event loop. With
those libraries loaded and a herd of runs in flight, one took 100-300 ms, and Python started
one every few hundred milliseconds: every request and run waited meanwhile. So what is loaded
is frozen (left out of collections for good: it lives as long as the process), and the event
loop paces the collections itself (`pace`): the young objects every 25 ms, the middle
generation every fifth time, the oldest every thousandth time of that, so that each pass
covers what a short moment allocated. Python's own trigger counts objects allocated less
objects freed, so when a herd's runs ended and freed theirs, the young generation grew
unseen to 200,000 objects and a pass over it stalled the loop for 150-200 ms; with 1,000 runs
in flight a middle pass took 25-50 ms. Paced, the longest pass in a herd of 1,000 took 22 ms.
Python's trigger stays, at 10,000 objects rather than 700, for a burst between two paced
passes.

Memory still goes back as usual: objects are freed when their last reference goes, and the
collector only exists for reference cycles.
"""

import asyncio
import gc
from collections.abc import Callable

# Python's own trigger: a young collection after 10,000 new objects (Python: 700); a middle
# one after 5 young ones; a full one after 1,000 middle ones (Python: 10 and 10).
YOUNG_THRESHOLD = 10_000
MIDDLE_THRESHOLD = 5
OLD_THRESHOLD = 1_000
# How often the event loop collects (`pace`).
PACE_S = 0.025

_loading: dict[str, asyncio.Future[None]] = {}


def settle() -> None:
    """Freeze what the process has loaded so far, and collect less often from now on. Call
    once the process has started, and again after loading more for good."""
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


def collect_due() -> int:
    """One paced collection: the oldest generation after `OLD_THRESHOLD` middle collections
    since its last, else the middle one after `MIDDLE_THRESHOLD` young ones, else the young
    one. Returns the generation collected."""
    _, young_since, middle_since = gc.get_count()
    generation = 0
    if middle_since >= OLD_THRESHOLD:
        generation = 2
    elif young_since >= MIDDLE_THRESHOLD:
        generation = 1
    gc.collect(generation)
    return generation


async def pace(interval_s: float = PACE_S) -> None:
    """Until cancelled: a collection (`collect_due`) every `interval_s`."""
    while True:
        await asyncio.sleep(interval_s)
        collect_due()


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
