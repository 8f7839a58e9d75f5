"""Turns on the event loop: at most TURNS_PER_LOOP bodies at once, requests before runs, first
come first served, and no turn lost or doubled by nesting, waits, new tasks or cancels."""

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from zerg.agents import turns
from zerg.agents.turns import (
    Priority,
    answer_arrived,
    give_up_turn,
    turn,
    waiting,
)

pytestmark = pytest.mark.anyio


# The scenarios below fill every turn with a few named holders: run them with two turns a loop
# (each test gets a new loop, which reads the setting when it first hands out a turn).
TURNS_PER_LOOP = 2


@pytest.fixture(autouse=True)
def two_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(turns, "TURNS_PER_LOOP", TURNS_PER_LOOP)
    # Runs go on beside requests only after this long: never, in the scenarios that do not
    # test it, however slow the machine.
    monkeypatch.setattr(turns, "RUN_TURN_INTERVAL_S", 3600.0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # turns are kept per asyncio event loop


async def settle() -> None:
    """Let every ready task run until it blocks. These tests' tasks wait only for each other,
    never for I/O or time, so a task still waiting after this waits until another one acts."""
    for _ in range(50):
        await asyncio.sleep(0)


class Contenders:
    """Tasks that each hold a turn until released, and a record of who held one when."""

    def __init__(self) -> None:
        self.started: list[str] = []  # names, in the order their bodies began
        self.holding = 0
        self.peak = 0
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._gates: dict[str, asyncio.Event] = {}
        self._probes = itertools.count()

    def hold(self) -> None:
        self.holding += 1
        self.peak = max(self.peak, self.holding)

    def let_go(self) -> None:
        self.holding -= 1

    def start(self, name: str, priority: Priority = Priority.RUN) -> None:
        gate = self._gates[name] = asyncio.Event()

        async def body() -> None:
            async with turn(priority):
                self.started.append(name)
                self.hold()
                try:
                    await gate.wait()
                finally:
                    self.let_go()

        self.tasks[name] = asyncio.create_task(body())

    def release(self, *names: str) -> None:
        for name in names:
            self._gates[name].set()

    async def join(self, *names: str) -> None:
        for name in names:
            await self.tasks[name]

    async def free_turns(self) -> int:
        """How many fresh tasks can hold a turn at once now (call it when no one waits)."""
        probes = [f"probe{next(self._probes)}" for _ in range(TURNS_PER_LOOP + 1)]
        for probe in probes:
            self.start(probe)
        await settle()
        free = sum(probe in self.started for probe in probes)
        self.release(*probes)
        await self.join(*probes)
        return free

    async def close(self) -> None:
        self.release(*self._gates)
        for task in self.tasks.values():
            if not task.done():
                task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)


@pytest.fixture
async def contenders() -> AsyncIterator[Contenders]:
    tasks = Contenders()
    yield tasks
    await tasks.close()


async def test_at_most_turns_per_loop_bodies_run_at_once(contenders: Contenders) -> None:
    names = [f"run{i}" for i in range(10)]
    for name in names:
        contenders.start(name)
    await settle()

    assert contenders.started == names[:TURNS_PER_LOOP]

    contenders.release(*names)
    await contenders.join(*names)

    assert contenders.started == names
    assert contenders.peak == TURNS_PER_LOOP


async def test_a_waiting_request_is_served_before_a_run_that_waited_longer(
    contenders: Contenders,
) -> None:
    contenders.start("held0")
    contenders.start("held1")
    await settle()
    contenders.start("run", Priority.RUN)
    await settle()
    contenders.start("request", Priority.REQUEST)
    await settle()
    assert contenders.started == ["held0", "held1"]

    contenders.release("held0")
    await settle()
    assert contenders.started == ["held0", "held1", "request"]

    contenders.release("request")
    await settle()
    assert contenders.started == ["held0", "held1", "request", "run"]


async def test_no_run_takes_a_turn_while_a_request_holds_one(contenders: Contenders) -> None:
    """A burst of triggers is answered before the runs it starts: the loop is theirs while
    one is handled, even with a turn free."""
    contenders.start("request", Priority.REQUEST)
    await settle()
    contenders.start("run", Priority.RUN)
    await settle()
    assert contenders.started == ["request"]  # a turn is free, but a request holds one

    contenders.start("next request", Priority.REQUEST)
    await settle()
    assert contenders.started == ["request", "next request"]

    contenders.release("request")
    await settle()
    assert "run" not in contenders.started

    contenders.release("next request")
    await settle()
    assert contenders.started == ["request", "next request", "run"]
    assert await contenders.free_turns() == TURNS_PER_LOOP - 1  # the run still holds its turn


async def test_a_request_that_keeps_its_turn_slows_the_runs_down_but_cannot_stop_them(
    contenders: Contenders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While requests hold turns, one run at a time goes on, one every RUN_TURN_INTERVAL_S,
    whether or not any turn changes hands."""
    interval = 0.2
    monkeypatch.setattr(turns, "TURNS_PER_LOOP", 3)
    monkeypatch.setattr(turns, "RUN_TURN_INTERVAL_S", interval)
    contenders.start("request", Priority.REQUEST)  # never gives its turn back
    await settle()
    for run in ("run0", "run1", "run2"):
        contenders.start(run, Priority.RUN)
    await settle()
    assert contenders.started == ["request"]

    await asyncio.sleep(interval * 1.25)
    await settle()
    assert contenders.started == ["request", "run0"]

    contenders.release("run0")
    await settle()
    assert "run1" not in contenders.started  # not at once after the last

    await asyncio.sleep(interval * 1.25)
    await settle()
    assert contenders.started[-1] == "run1"

    await asyncio.sleep(interval * 1.25)
    await settle()
    assert "run2" not in contenders.started  # one run at a time
    contenders.release("run1")
    await settle()
    assert contenders.started[-1] == "run2"


async def test_a_request_that_stops_waiting_lets_the_runs_go_on(contenders: Contenders) -> None:
    contenders.start("held0")
    contenders.start("held1")
    await settle()
    contenders.start("request", Priority.REQUEST)
    await settle()
    contenders.start("run", Priority.RUN)
    await settle()

    contenders.tasks["request"].cancel()  # its client went away while it waited
    await settle()
    contenders.release("held0")
    await settle()
    assert contenders.started == ["held0", "held1", "run"]


@pytest.mark.parametrize("priority", [Priority.REQUEST, Priority.RUN])
async def test_equals_are_served_first_come_first_served(
    contenders: Contenders, priority: Priority
) -> None:
    held = [f"held{i}" for i in range(TURNS_PER_LOOP)]
    for name in held:
        contenders.start(name)
    await settle()
    queued = [f"waiter{i}" for i in range(5)]
    for name in queued:
        contenders.start(name, priority)
    await settle()

    contenders.release(*queued)  # each goes as soon as it has its turn
    contenders.release(*held)
    await contenders.join(*held, *queued)

    assert contenders.started == held + queued


async def test_waiting_lends_the_turn_and_takes_one_back_after(contenders: Contenders) -> None:
    in_wait, wait_over, back, leave = (asyncio.Event() for _ in range(4))

    async def model_call() -> None:
        async with turn(Priority.RUN):
            contenders.hold()
            async with waiting():
                contenders.let_go()
                in_wait.set()
                await wait_over.wait()
            contenders.hold()
            back.set()
            await leave.wait()
            contenders.let_go()

    contenders.start("other")
    caller = asyncio.create_task(model_call())
    await in_wait.wait()
    contenders.start("waiter")
    await settle()
    assert contenders.started == ["other", "waiter"]  # it has the caller's turn

    wait_over.set()
    await settle()
    assert not back.is_set()  # every turn is held: the caller waits for one

    contenders.release("waiter")
    await settle()
    assert back.is_set()
    assert contenders.holding == TURNS_PER_LOOP  # the caller and "other"
    assert contenders.peak == TURNS_PER_LOOP

    leave.set()
    await caller
    contenders.release("other")
    await contenders.join("other", "waiter")
    assert await contenders.free_turns() == TURNS_PER_LOOP


async def test_a_nested_turn_in_the_same_task_is_the_turn_it_holds(
    contenders: Contenders,
) -> None:
    leave = asyncio.Event()

    async def nested() -> None:
        async with turn(Priority.RUN):
            async with turn(Priority.REQUEST):  # no turn is free: taking one would never end
                contenders.started.append("inner")
            await leave.wait()

    contenders.start("other")
    task = asyncio.create_task(nested())
    await settle()
    assert "inner" in contenders.started

    contenders.start("waiter")
    await settle()
    assert "waiter" not in contenders.started  # leaving the nested turn gave nothing up

    leave.set()
    await task
    await settle()
    assert "waiter" in contenders.started


async def test_a_task_started_in_a_turn_waits_for_a_turn_of_its_own(
    contenders: Contenders,
) -> None:
    leave = asyncio.Event()
    children: list[asyncio.Task[None]] = []

    async def child() -> None:
        async with turn(Priority.RUN):
            contenders.started.append("child")
            contenders.hold()
            contenders.let_go()

    async def parent() -> None:
        async with turn(Priority.RUN):
            contenders.hold()
            children.append(asyncio.create_task(child()))  # inherits the context, not the turn
            await leave.wait()
            contenders.let_go()

    contenders.start("other")
    task = asyncio.create_task(parent())
    await settle()
    assert "child" not in contenders.started

    contenders.release("other")
    await settle()
    assert "child" in contenders.started
    assert contenders.peak == TURNS_PER_LOOP  # the parent kept its turn meanwhile

    leave.set()
    await task
    await children[0]
    assert await contenders.free_turns() == TURNS_PER_LOOP


async def test_a_wait_cancelled_before_its_turn_costs_no_turn(contenders: Contenders) -> None:
    for name in ("held0", "held1", "first", "cancelled", "last"):
        contenders.start(name)
    await settle()
    contenders.tasks["cancelled"].cancel()
    await settle()
    assert contenders.tasks["cancelled"].cancelled()

    contenders.release("held0", "held1")
    await settle()
    assert contenders.started == ["held0", "held1", "first", "last"]

    contenders.release("first", "last")
    await contenders.join("held0", "held1", "first", "last")
    assert await contenders.free_turns() == TURNS_PER_LOOP


async def test_a_cancel_landing_as_the_turn_is_handed_over_passes_it_on(
    contenders: Contenders,
) -> None:
    leave = asyncio.Event()

    async def hand_over() -> None:
        async with turn(Priority.RUN):
            await leave.wait()
        # The turn has just passed to "unlucky": its wait is over, but it has not run since.
        contenders.tasks["unlucky"].cancel()

    contenders.start("other")
    handing = asyncio.create_task(hand_over())
    await settle()
    contenders.start("unlucky")
    contenders.start("next")
    await settle()
    assert contenders.started == ["other"]

    leave.set()
    await handing
    await settle()
    assert contenders.tasks["unlucky"].cancelled()
    assert contenders.started == ["other", "next"]

    contenders.release("other", "next")
    await contenders.join("other", "next")
    assert await contenders.free_turns() == TURNS_PER_LOOP


async def test_a_turn_given_up_for_good_is_given_up_once(contenders: Contenders) -> None:
    gave_up, leave = asyncio.Event(), asyncio.Event()

    async def request() -> None:
        async with turn(Priority.REQUEST):
            give_up_turn()  # its answer has started
            gave_up.set()
            await leave.wait()

    contenders.start("other")
    task = asyncio.create_task(request())
    await gave_up.wait()
    contenders.start("waiter")
    await settle()
    assert contenders.started == ["other", "waiter"]

    leave.set()
    await task
    contenders.release("other", "waiter")
    await contenders.join("other", "waiter")
    assert await contenders.free_turns() == TURNS_PER_LOOP


@pytest.mark.parametrize("streaming", [False, True])
async def test_an_answer_takes_the_turn_back_unless_it_streams(
    contenders: Contenders, streaming: bool
) -> None:
    answered, wait_over, leave = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def model_call() -> None:
        async with turn(Priority.RUN):
            async with waiting():
                await answer_arrived(streaming)  # the model client's response hook
                answered.set()
                await wait_over.wait()  # the answer is still being read
            await leave.wait()

    contenders.start("other")
    caller = asyncio.create_task(model_call())
    await answered.wait()
    contenders.start("probe")
    await settle()
    # Not streaming: the caller holds its turn again before its wait ends, so none is free.
    assert ("probe" in contenders.started) is streaming

    wait_over.set()
    await settle()
    contenders.release("other", "probe")
    leave.set()
    await caller
    await contenders.join("other", "probe")
    assert "probe" in contenders.started
    assert await contenders.free_turns() == TURNS_PER_LOOP  # the turn was not taken twice
