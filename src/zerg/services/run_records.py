"""The task-run path's reads and writes, through SQLAlchemy Core.

Every statement is built once, at import: on this path building a statement per call cost more
than running it (a run executes about twenty).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, case, func, insert, or_, select, update

from zerg import clock
from zerg.errors import Conflict, InvalidInput, NotFound, TooMany
from zerg.models import agents_table, messages_table, runs_table, threads_table
from zerg.schemas.agents import AgentStatus
from zerg.schemas.runs import RunRead, RunStatus, RunTrigger
from zerg.schemas.threads import MessageRead
from zerg.services.budgets import Limits, check_day
from zerg.services.ownership import may_see
from zerg.services.threads import ThreadService
from zerg.services.users import Actor

_runs, _agents, _messages = runs_table.c, agents_table.c, messages_table.c
_threads = threads_table.c

# An agent's budget (`budgets.Limits`), read with what a trigger or a run reads of it.
_BUDGET = (
    _agents.max_run_tokens,
    _agents.max_run_cost_usd,
    _agents.max_day_tokens,
    _agents.max_day_cost_usd,
)
# The run holding the agent's slot (`concurrency: reject`) comes with the agent: at most one.
_SLOT = runs_table.alias("slot")
_AGENT_FOR_RUN = (
    select(_agents.task_instructions, _agents.concurrency, _agents.owner_id)
    .add_columns(*_BUDGET, _SLOT.c.id.label("busy_id"), _SLOT.c.status.label("busy_status"))
    .select_from(agents_table.outerjoin(_SLOT, _SLOT.c.slot_agent_id == _agents.id))
    .where(_agents.id == bindparam("agent_id"))
)
_OWNER_OF_RUN = (
    select(_agents.owner_id)
    .join_from(runs_table, agents_table, _runs.agent_id == _agents.id)
    .where(_runs.id == bindparam("run_id"))
)
_RUN_BY_KEY = select(runs_table).where(_runs.idempotency_key == bindparam("key"))
_QUEUED_COUNT = select(func.count()).where(
    _runs.agent_id == bindparam("agent_id"), _runs.status == RunStatus.QUEUED
)
_INSERT_RUN = insert(runs_table).returning(*runs_table.c)
_LOAD_JOB = (
    select(_runs.id, _runs.status, _runs.trigger, _runs.thread_id, _runs.input)
    .add_columns(_runs.queued_at, _runs.started_at, _agents.id, _agents.model, _agents.config)
    .add_columns(_agents.tools, _agents.system_instructions, _agents.task_instructions)
    .add_columns(_agents.timeout_s, _agents.notify_url, _runs.workflow_id, _agents.owner_id)
    .add_columns(_runs.message_id, *_BUDGET)
    .join_from(runs_table, agents_table, _runs.agent_id == _agents.id)
    .where(_runs.id == bindparam("run_id"))
)
_RUN_STATUS = select(_runs.status).where(_runs.id == bindparam("run_id"))
_RUN_WORKFLOW = select(_runs.workflow_id).where(_runs.id == bindparam("run_id"))
_RUN_MESSAGE = select(_runs.message_id).where(_runs.id == bindparam("run_id"))
_CANCELLED_AMONG = select(_runs.id).where(
    _runs.id.in_(bindparam("run_ids", expanding=True)), _runs.status == RunStatus.CANCELLED
)
_OPEN_RUNS = (
    select(_runs.id, _runs.agent_id, _runs.workflow_id, _agents.concurrency)
    .add_columns(_runs.trigger, _runs.thread_id)
    .join_from(runs_table, agents_table, _runs.agent_id == _agents.id)
    .where(
        or_(_runs.status == RunStatus.QUEUED, _runs.status == RunStatus.RUNNING),
        _runs.queued_at <= bindparam("cutoff"),
    )
    .order_by(_runs.id)
)
# Updates set the columns given at execution.
_UPDATE_RUNNING = (
    update(runs_table)
    .where(_runs.id == bindparam("run_id"), _runs.status == RunStatus.RUNNING)
    .returning(*runs_table.c)
)
# A finished run's usage, when it changed.
_UPDATE_USAGE = (
    update(runs_table)
    .where(
        _runs.id == bindparam("run_id"),
        or_(
            # Not the column names: an UPDATE reserves those for SET.
            _runs.input_tokens != bindparam("new_input"),
            _runs.output_tokens != bindparam("new_output"),
        ),
    )
    .returning(*runs_table.c)
)
_UPDATE_AGENT = update(agents_table).where(_agents.id == bindparam("agent_id"))
_OTHER_RUNNING = (
    select(_runs.id)
    .where(
        _runs.agent_id == bindparam("agent_id"),
        _runs.id != bindparam("run_id"),
        _runs.status == RunStatus.RUNNING,
        _runs.trigger != "chat",
    )
    .limit(1)
)
# The agent's status once one of its runs has ended, in the statement that sets it: `running`
# while another of its task runs still is, else the status given (`settled`).
_SETTLE_AGENT = (
    update(agents_table)
    .where(_agents.id == bindparam("agent_id"))
    .values(status=case((_OTHER_RUNNING.exists(), AgentStatus.RUNNING), else_=bindparam("settled")))
    .returning(_agents.status)
)
_ASSISTANT_METAS = select(_messages.metadata).where(
    _messages.thread_id == bindparam("thread_id"),
    _messages.role == "assistant",
    _messages.id > bindparam("after"),
)
_THREAD_FOR_CHAT = (
    select(_threads.agent_id, _threads.thread_type, _agents.owner_id, *_BUDGET)
    .join_from(threads_table, agents_table, _threads.agent_id == _agents.id)
    .where(_threads.id == bindparam("thread_id"))
)
_OPEN_TURN = select(_runs.id).where(
    _runs.thread_id == bindparam("thread_id"),
    _runs.trigger == "chat",
    or_(_runs.status == RunStatus.QUEUED, _runs.status == RunStatus.RUNNING),
)


class Recorded(NamedTuple):
    run: RunRead
    created: bool  # False: an earlier run with the same idempotency key
    queued: bool  # waits its turn behind the agent's other runs (`concurrency: queue`)
    workflow_id: str  # the run's identity in the run engine
    owner_id: int | None  # the agent's owner


def record_run(
    agent_id: int,
    *,
    trigger: RunTrigger,
    idempotency_key: str | None,
    db: Connection,
    input: Any = None,
    delivery_hash: str | None = None,
    token_id: int | None = None,
    max_queued: int | None = None,
    actor: Actor | None = None,
) -> Recorded:
    """Step 1: check the agent can run a task, then record a queued run (the caller commits).

    A known idempotency key returns the earlier run. An agent whose daily budget is spent
    starts nothing (`BudgetExceeded`). An agent with `concurrency: queue` holds
    at most `max_queued` waiting runs; one more is refused (`TooMany`). An `actor` may start
    runs of the agents they may see only (None: Zerg itself, acting as the agent's owner).
    """
    agent = db.execute(_AGENT_FOR_RUN, {"agent_id": agent_id}).one_or_none()
    if agent is None or (actor is not None and not may_see(actor, agent.owner_id)):
        raise NotFound(f"agent {agent_id} does not exist")
    if not (agent.task_instructions or "").strip():
        raise InvalidInput(
            f"agent {agent_id} has no task_instructions; set them before starting a task run",
            code="no_task_instructions",
        )
    if idempotency_key is not None:
        existing = db.execute(_RUN_BY_KEY, {"key": idempotency_key}).one_or_none()
        if existing is not None:
            return Recorded(
                RunRead.model_validate(existing),
                False,
                existing.slot_agent_id is None,
                existing.workflow_id,
                agent.owner_id,
            )
    check_day(db, agent_id, Limits.of(agent))
    slot = None
    if agent.concurrency == "reject":
        if agent.busy_id is not None:
            raise Conflict(
                f"agent {agent_id} is busy with run {agent.busy_id} ({agent.busy_status}); wait "
                "for it to finish, cancel it, or set the agent's concurrency to 'queue'",
                code="agent_busy",
            )
        slot = agent_id
    elif max_queued is not None:
        waiting = db.execute(_QUEUED_COUNT, {"agent_id": agent_id}).scalar_one()
        if waiting >= max_queued:
            raise TooMany(
                f"agent {agent_id} already has {waiting} runs waiting, the most one agent may "
                "have (ZERG_MAX_QUEUED_RUNS); wait for some to finish or cancel them",
                code="queue_full",
            )
    values: dict[str, Any] = {
        "slot_agent_id": slot,
        "agent_id": agent_id,
        "trigger": trigger,
        "status": RunStatus.QUEUED,
        "idempotency_key": idempotency_key,
        "queued_at": clock.now(),
        "delivery_hash": delivery_hash,
        "token_id": token_id,
    }
    if input is not None:  # else SQL NULL, not a JSON null
        values["input"] = input
    row = db.execute(_INSERT_RUN, values).one()
    return Recorded(
        RunRead.model_validate(row), True, slot is None, row.workflow_id, agent.owner_id
    )


class ChatTurn(NamedTuple):
    run: RunRead
    message: MessageRead  # the user message the turn answers
    owner_id: int | None
    workflow_id: str


def record_chat_turn(
    thread_id: int,
    content: str,
    *,
    actor: Actor,
    token_id: int | None,
    db: Connection,
) -> ChatTurn:
    """Store the user's message in a chat thread and record the queued run (trigger `chat`)
    that answers it (the caller commits). One turn per thread at a time: `Conflict`
    `thread_busy` while another is queued or running (the unique index on open chat turns
    settles a race: the caller maps its `IntegrityError` the same way). Nothing is stored
    while the agent's daily budget is spent (`BudgetExceeded`)."""
    thread = db.execute(_THREAD_FOR_CHAT, {"thread_id": thread_id}).one_or_none()
    if thread is None or not may_see(actor, thread.owner_id):
        raise NotFound(f"thread {thread_id} does not exist")
    if thread.thread_type != "chat":
        raise InvalidInput(
            f"thread {thread_id} is a {thread.thread_type} thread, the record of a task run; "
            "chat in a chat thread (POST /api/threads)",
            code="not_a_chat_thread",
        )
    busy = db.execute(_OPEN_TURN, {"thread_id": thread_id}).first()
    if busy is not None:
        raise thread_busy(thread_id, busy.id)
    check_day(db, thread.agent_id, Limits.of(thread))
    message = ThreadService.add_message(
        db, thread_id, role="user", content=content, processed=False
    )
    values: dict[str, Any] = {
        "agent_id": thread.agent_id,
        "thread_id": thread_id,
        "message_id": message.id,
        "trigger": "chat",
        "status": RunStatus.QUEUED,
        "queued_at": clock.now(),
        "token_id": token_id,
    }
    row = db.execute(_INSERT_RUN, values).one()
    return ChatTurn(RunRead.model_validate(row), message, thread.owner_id, row.workflow_id)


def thread_busy(thread_id: int, run_id: int | None = None) -> Conflict:
    which = f" (run {run_id})" if run_id is not None else ""
    return Conflict(
        f"thread {thread_id} is still answering the previous message{which}; wait for that "
        "turn to finish, or cancel it",
        code="thread_busy",
    )


@dataclass(frozen=True)
class RunJob:
    """What executing a run needs of the run and its agent, read in one query."""

    run_id: int
    status: str
    trigger: RunTrigger
    thread_id: int | None
    input: Any
    queued_at: datetime
    started_at: datetime | None
    agent_id: int
    model: str
    config: dict[str, Any] | None
    tools: list[str] | None
    system_instructions: str
    task_instructions: str | None
    timeout_s: int
    notify_url: str | None
    workflow_id: str
    owner_id: int | None
    message_id: int | None  # a chat turn's user message
    max_run_tokens: int | None
    max_run_cost_usd: float | None
    max_day_tokens: int | None
    max_day_cost_usd: float | None

    @property
    def is_chat(self) -> bool:
        return self.trigger == "chat"

    @property
    def partition(self) -> str:
        return partition_of(self.trigger, self.agent_id, self.thread_id)


def partition_of(trigger: str, agent_id: int, thread_id: int | None) -> str:
    """Where a run waits in the run engine: an agent's task runs one at a time, a thread's
    chat turns one at a time."""
    return f"thread-{thread_id}" if trigger == "chat" else str(agent_id)


def load_job(db: Connection, run_id: int) -> RunJob | None:
    """The run with its agent; None when either is gone."""
    row = db.execute(_LOAD_JOB, {"run_id": run_id}).one_or_none()
    return None if row is None else RunJob(*row)


def run_status(db: Connection, run_id: int) -> str | None:
    status: str | None = db.execute(_RUN_STATUS, {"run_id": run_id}).scalar()
    return status


def check_run_visible(db: Connection, run_id: int, actor: Actor) -> int | None:
    """The run's owner; `NotFound` unless the run exists and the actor may see it."""
    owner = db.execute(_OWNER_OF_RUN, {"run_id": run_id}).one_or_none()
    if owner is None or not may_see(actor, owner.owner_id):
        raise NotFound(f"run {run_id} does not exist")
    owner_id: int | None = owner.owner_id
    return owner_id


def workflow_of(db: Connection, run_id: int) -> str:
    workflow_id: str = db.execute(_RUN_WORKFLOW, {"run_id": run_id}).scalar_one()
    return workflow_id


def message_of(db: Connection, run_id: int) -> int | None:
    """A chat turn's user message (None for a task run)."""
    message_id: int | None = db.execute(_RUN_MESSAGE, {"run_id": run_id}).scalar()
    return message_id


def cancelled_among(db: Connection, run_ids: list[int]) -> list[int]:
    """Which of `run_ids` are cancelled."""
    return list(db.execute(_CANCELLED_AMONG, {"run_ids": run_ids}).scalars())


class OpenRun(NamedTuple):
    id: int
    agent_id: int
    workflow_id: str
    concurrency: str
    trigger: str
    thread_id: int | None


def open_runs(db: Connection, queued_before: datetime) -> list[OpenRun]:
    """Runs queued or running that were recorded at or before `queued_before`, oldest first."""
    return [OpenRun(*row) for row in db.execute(_OPEN_RUNS, {"cutoff": queued_before})]


def update_running(db: Connection, run_id: int, fields: dict[str, Any]) -> RunRead | None:
    """A resumed run's new executor (not a transition: it is `running` already)."""
    row = db.execute(_UPDATE_RUNNING, {**fields, "run_id": run_id}).one_or_none()
    return None if row is None else RunRead.model_validate(row)


def update_finished(db: Connection, run_id: int, totals: dict[str, Any]) -> RunRead | None:
    """A finished run's usage (after a cancel from outside ended it first), if it changed;
    None when it had not."""
    params = {
        **totals,
        "run_id": run_id,
        "new_input": totals["input_tokens"],
        "new_output": totals["output_tokens"],
    }
    row = db.execute(_UPDATE_USAGE, params).one_or_none()
    return None if row is None else RunRead.model_validate(row)


def set_agent_status(db: Connection, agent_id: int, status: AgentStatus, **fields: Any) -> None:
    db.execute(_UPDATE_AGENT, {**fields, "status": status, "agent_id": agent_id})


def agent_after_run(
    agent_id: int,
    run_id: int,
    status: RunStatus,
    error: str | None,
    now: datetime,
    *,
    db: Connection,
) -> AgentStatus:
    """The agent's status once run `run_id` ended: `running` while another of its runs still
    is, else `error` after a failure, else `idle`."""
    failed = status in (RunStatus.FAILED, RunStatus.TIMED_OUT)
    params: dict[str, Any] = {
        "agent_id": agent_id,
        "run_id": run_id,
        "settled": AgentStatus.ERROR if failed else AgentStatus.IDLE,
        "last_run_at": now,
    }
    if status != RunStatus.CANCELLED:
        params["last_error"] = error if failed else None
    settled = db.execute(_SETTLE_AGENT, params).scalar_one_or_none()
    return AgentStatus(settled) if settled is not None else params["settled"]


def usage_of_thread(db: Connection, thread_id: int | None, after: int = 0) -> dict[str, Any]:
    """Token and cost totals from the thread's stored assistant messages with ids above `after`
    (a chat turn's, from its user message on), right after resumes too."""
    totals: dict[str, Any] = {
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "cost_usd": 0.0,
    }
    if thread_id is None:
        totals["cost_usd"] = None
        return totals
    params = {"thread_id": thread_id, "after": after}
    for meta in db.execute(_ASSISTANT_METAS, params).scalars():
        totals["input_tokens"] += int(meta.get("input_tokens", 0))
        totals["output_tokens"] += int(meta.get("output_tokens", 0))
        cost = meta.get("cost_usd")
        totals["cost_usd"] = (
            None if cost is None or totals["cost_usd"] is None else (totals["cost_usd"] + cost)
        )
    totals["total_tokens"] = totals["input_tokens"] + totals["output_tokens"]
    return totals
