"""Turns on the event loop: requests that change something first, the runs' own work second.

One event loop serves the API and executes every run. A run's work between two waits (storing
its messages, the agent loop's steps, building the next model request) is CPU on that loop, and
asyncio serves whatever is ready in turn: with a thousand runs ready at once, a request waits
behind all of them, and a burst of triggers is answered only as fast as the runs it started let
it. So that work is done in turns, a few at a time:

- a request that changes something (a trigger, a chat message, a form) takes a turn before it
  is handled, ahead of any run waiting for one, and gives it up once its answer starts or while
  it waits (`?wait=true` waits for the run without a turn);
- a run holds a turn while it works and gives it up while it waits for a model or a tool; no
  run is handed a turn while a request holds or waits for one, so a burst of triggers is
  answered before the runs it started compete with it for the loop (runs already working
  finish their step), except one run every `RUN_TURN_INTERVAL_S`, so that a flood of requests
  slows the runs down without stopping them.

Whoever waits for a turn takes no time on the loop, the health check never waits for one, and
no work is slowed down (the loop only ever does one thing at a time anyway): a request waits
for at most a few steps, not for every run's, and runs go out to their models at the pace the
loop can serve them.
"""

import asyncio
import weakref
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from enum import IntEnum

# Turns on one loop: enough that a step waiting a moment (a thread, a database round trip) leaves
# the loop to another, few enough that a request waits for only a few steps. Measured with 20
# clients and with herds of 300 and 1,000 runs: 2 turns cost a fifth of the throughput (more
# handing over); 4 and 8 the same throughput (alternating pairs: 44-54 and 44-52 runs/s), but
# with 8 more runs' steps share each pass of the loop: its lag p99 in the herds was 50-100 ms,
# against 25-40 ms with 4 (/health's p99: 54-65 ms against 25-37 ms).
TURNS_PER_LOOP = 4
# While requests keep taking turns, a run is handed one at most this often (and one at a time):
# a flood of requests slows the runs down but cannot stop them.
RUN_TURN_INTERVAL_S = 0.1


class Priority(IntEnum):
    REQUEST = 0
    RUN = 1


class _Turns:
    """A loop's turns: a semaphore that serves waiting requests before waiting runs, and hands
    runs a turn while requests hold or wait for turns only one at a time, and at most once
    every `RUN_TURN_INTERVAL_S`."""

    def __init__(self, slots: int) -> None:
        self.free = slots
        self.waiting: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())
        self.held = [0, 0]  # turns held, by priority
        # When a run was last handed a turn (loop time; created on the loop, by its first turn).
        self.run_turn_at = asyncio.get_running_loop().time()
        # Hands the waiting runs their turn when it is due, also if no turn changes hands.
        self._timer: asyncio.TimerHandle | None = None

    def _open_to(self, priority: Priority) -> bool:
        if self.free == 0:
            return False
        if priority == Priority.REQUEST:
            return True
        if not (self.held[Priority.REQUEST] or self.waiting[Priority.REQUEST]):
            return True
        since = asyncio.get_running_loop().time() - self.run_turn_at
        return not self.held[Priority.RUN] and since >= RUN_TURN_INTERVAL_S

    async def acquire(self, priority: Priority) -> None:
        if not self.waiting[priority] and self._open_to(priority):
            self._grant(priority)
            return
        granted = asyncio.get_running_loop().create_future()
        queue = self.waiting[priority]
        queue.append(granted)
        self._keep_runs_going()
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release(priority)  # handed a turn just as the wait was cancelled: pass it on
            else:
                queue.remove(granted)
                self._hand_on()  # the runs may go on without this request
            raise

    def release(self, priority: Priority) -> None:
        self.free += 1
        self.held[priority] -= 1
        self._hand_on()

    def _grant(self, priority: Priority) -> None:
        self.free -= 1
        self.held[priority] += 1
        if priority == Priority.RUN:
            self.run_turn_at = asyncio.get_running_loop().time()

    def _hand_on(self) -> None:
        """Pass free turns straight to the waiters, requests first."""
        for priority in Priority:
            queue = self.waiting[priority]
            while queue and self._open_to(priority):
                self._grant(priority)
                queue.popleft().set_result(None)
        self._keep_runs_going()

    def _keep_runs_going(self) -> None:
        """While runs wait, look again when the next one is due: a request that holds its turn
        for long (or never gives it back) holds the runs up for one interval at most."""
        if self._timer is None and self.waiting[Priority.RUN]:
            self._timer = asyncio.get_running_loop().call_later(RUN_TURN_INTERVAL_S, self._due)

    def _due(self) -> None:
        self._timer = None
        self._hand_on()


_loops: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns]" = weakref.WeakKeyDictionary()


class _Turn:
    """One task's claim on a turn: held while it works, given up while it waits."""

    def __init__(self, priority: Priority) -> None:
        loop = asyncio.get_running_loop()
        turns = _loops.get(loop)
        if turns is None:
            turns = _loops[loop] = _Turns(TURNS_PER_LOOP)
        self.turns = turns
        self.priority = priority
        self.held = False
        self.waits = 0  # waits under way: a step's tool calls may run side by side
        self.task = asyncio.current_task()
        self.loop = loop
        self.ended = False  # its `turn()` is over: a task it started must not take it back

    async def take(self) -> None:
        await self.turns.acquire(self.priority)
        if self.ended:  # its `turn()` ended while this waited (a task it started took it back)
            self.turns.release(self.priority)
            return
        self.held = True

    def applies(self) -> bool:
        """Whether the running task may use this claim: a task started from a turn inherits
        the claim with the context, also when it runs on another loop or outlives the turn."""
        return not self.ended and self.loop is asyncio.get_running_loop()

    def give_up(self) -> None:
        if self.held:
            self.held = False
            self.turns.release(self.priority)


_current: ContextVar[_Turn | None] = ContextVar("zerg_loop_turn", default=None)


@asynccontextmanager
async def turn(priority: Priority) -> AsyncIterator[None]:
    """Hold a turn on the running loop for the body, except inside `waiting()`. Nested in
    another turn of the same task, it does nothing (a task started from a turn, such as a run's
    workflow started by a trigger, inherits the context, not the turn)."""
    current = _current.get()
    if current is not None and current.task is asyncio.current_task():
        yield
        return
    claim = _Turn(priority)
    await claim.take()
    token = _current.set(claim)
    try:
        yield
    finally:
        _current.reset(token)
        claim.ended = True
        claim.give_up()


def give_up_turn() -> None:
    """Give the current turn up for good (a request whose answer has started)."""
    claim = _current.get()
    if claim is not None and claim.applies() and claim.waits == 0:
        claim.give_up()


@asynccontextmanager
async def waiting() -> AsyncIterator[None]:
    """Give the turn up for the body (a model call, a tool, another run), and take it back
    after. Without a turn it does nothing."""
    claim = _current.get()
    if claim is None or not claim.applies() or (claim.waits == 0 and not claim.held):
        yield
        return
    if claim.waits == 0:
        claim.give_up()
    claim.waits += 1
    try:
        yield
    finally:
        claim.waits -= 1
        if claim.waits == 0 and not claim.held and not claim.ended:
            await claim.take()


async def answer_arrived(streaming: bool) -> None:
    """Take the turn back as soon as a model's answer has arrived, before it is read and
    parsed (that is the run's work again), unless it streams (a streamed answer keeps arriving
    for a while). Called by the model clients' response hook."""
    claim = _current.get()
    if claim is None or not claim.applies() or streaming:
        return
    if claim.waits == 1 and not claim.held:
        await claim.take()
