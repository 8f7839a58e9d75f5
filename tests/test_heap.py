"""The garbage collector as a long-lived process paces it (`zerg.heap`): cycles are collected
on the event loop's clock, whatever Python's own trigger does, and each generation in turn."""

import asyncio
import gc
import weakref
from collections.abc import Callable, Iterator

import pytest

from zerg import heap


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def no_automatic_collection() -> Iterator[None]:
    """Python's trigger off: only what the test does collects."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle(freed: Callable[[], None] = lambda: None) -> weakref.ref[Node]:
    """A reference cycle no one else holds: only the collector can free it (then `freed`)."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a, lambda _: freed())


@pytest.mark.anyio
async def test_the_pace_collects_cycles_when_python_would_not(
    no_automatic_collection: None,
) -> None:
    freed = asyncio.Event()
    garbage = cycle(freed.set)
    await asyncio.sleep(0.05)
    assert garbage() is not None  # nothing else collects here
    pacing = asyncio.create_task(heap.pace(0.01))
    try:
        await asyncio.wait_for(freed.wait(), timeout=5)
    finally:
        pacing.cancel()


def test_each_older_generation_is_collected_once_its_turn_has_come(
    no_automatic_collection: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(heap, "OLD_THRESHOLD", 2)
    gc.collect()  # every generation's count starts at 0
    collected = [heap.collect_due() for _ in range(13)]
    young = [0] * heap.MIDDLE_THRESHOLD
    assert collected == [*young, 1, *young, 1, 2]
    assert gc.get_count()[1:] == (0, 0)


def test_a_cycle_that_survives_young_collections_is_freed_by_an_older_one(
    no_automatic_collection: None,
) -> None:
    gc.collect()
    kept = Node()
    kept.other = Node()
    kept.other.other = kept  # a cycle, held from outside for now
    garbage = weakref.ref(kept)
    heap.collect_due()  # young: survives (still referenced), moves to the middle generation
    del kept
    generations = [heap.collect_due()]
    while garbage() is not None and len(generations) < 2 * heap.MIDDLE_THRESHOLD:
        generations.append(heap.collect_due())
    assert garbage() is None
    assert generations[-1] == 1  # the young collections do not see the middle generation
