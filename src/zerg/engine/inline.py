"""DBOS's per-workflow bookkeeping on the event loop, in embedded mode.

DBOS sends three calls per async workflow through `asyncio.to_thread`: recording the workflow,
entering it, and recording its outcome. On the embedded SQLite file each is a local write well
under a millisecond, and the hop to a thread and back (a wake-up, two GIL hand-offs, a loop
wake-up) cost more than the write: running those three on the loop gave about a quarter more
task runs per second (100 to 125 runs/s without HTTP, 91 to 103 through it). Any other call
still goes to DBOS's threads, and so do these if a DBOS release renames them: the worst case is
the old speed, never a blocked loop on an unknown call. On PostgreSQL each call is a network
round trip, so distributed mode keeps the threads.
"""

import functools
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from dbos import DBOS

logger = logging.getLogger(__name__)

# (module, qualified name) of the calls run on the loop (dbos 3.4).
INLINE_CALLS = frozenset(
    {
        ("dbos._core", "_init_workflow"),
        ("dbos._outcome", "Pending.then.<locals>.<lambda>.<locals>.<lambda>"),
        ("dbos._core", "_get_wf_invoke_func.<locals>.persist"),
    }
)


def _target(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The function `asyncio.to_thread` wrapped (it submits `partial(context.run, func)`)."""
    if isinstance(fn, functools.partial) and fn.args and callable(fn.args[0]):
        target: Callable[..., Any] = fn.args[0]
        return target
    return fn


def runs_inline(fn: Callable[..., Any]) -> bool:
    target = _target(fn)
    return (getattr(target, "__module__", None), getattr(target, "__qualname__", None)) in (
        INLINE_CALLS
    )


class InlineBookkeeping(ThreadPoolExecutor):
    """The event loop's default executor: DBOS's bookkeeping calls run in place, the rest on
    DBOS's own threads. Like DBOS's own default executor, it never shuts those threads down
    (asyncio shuts a loop's default executor down when the loop closes)."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        super().__init__(max_workers=1)  # never used: submit is overridden
        # The attribute DBOS checks before installing its own default executor (see below).
        self.executor = executor

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if not runs_inline(fn):
            return self.executor.submit(fn, *args, **kwargs)
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


def install(dbos: DBOS) -> bool:
    """Make DBOS install `InlineBookkeeping` as the loop's default executor. Call after launch.

    Before each `to_thread`, DBOS sets the loop's default executor to the one it keeps in
    `_shared_executor_field`, replacing it only when that one's `executor` is not DBOS's pool:
    ours, put there, is kept. Returns False (and changes nothing) on a DBOS without that field.
    """
    if not hasattr(dbos, "_shared_executor_field"):
        logger.warning("this DBOS release has no shared executor; bookkeeping stays on threads")
        return False
    # DBOS reads only `.executor` of it, and asyncio needs a ThreadPoolExecutor: both hold.
    dbos._shared_executor_field = InlineBookkeeping(dbos._executor)  # type: ignore[assignment]
    return True
