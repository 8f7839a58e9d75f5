"""ThreadService: threads and their messages in the database.

A thread (and its messages) belongs to its agent's owner: the methods a client reaches take the
actor and treat another user's thread like a missing one. The run path's methods do not: the run
engine acts as the agent's owner.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from zerg import clock
from zerg.errors import InvalidInput, NotFound
from zerg.events import EventType
from zerg.events.log import record_in_session
from zerg.models import Agent, Message, Thread, messages_table, threads_table
from zerg.schemas.threads import MessageRead, Role, ThreadRead, ThreadType, ThreadUpdate
from zerg.services.ownership import scoped, visible_agent
from zerg.services.pagination import PageResult, paginate
from zerg.services.users import Actor

# The run path's statements, built once: building one per call cost more than running it.
_INSERT_THREAD = insert(threads_table).returning(*threads_table.c)
_INSERT_MESSAGE = insert(messages_table).returning(messages_table.c.id)
_INSERT_MESSAGE_WITH_ROLE = insert(messages_table).returning(
    messages_table.c.role, messages_table.c.id
)
_READ_THREAD = select(threads_table).where(threads_table.c.id == bindparam("thread_id"))
_MARK_PROCESSED = (
    update(messages_table)
    .where(
        # Not "thread_id": an UPDATE of `messages` reserves its column names for SET.
        messages_table.c.thread_id == bindparam("of_thread"),
        messages_table.c.processed.is_(False),
    )
    .values(processed=True)
)
_TOUCH_THREAD = update(threads_table).where(threads_table.c.id == bindparam("thread_id"))


class ThreadService:
    """Threads and messages. Every method writes in the caller's transaction; the caller commits.

    Writes take a Core `Connection` (a `Session` passes `session.connection()`): they are on
    the run path, where every message is its own commit.
    """

    @staticmethod
    def create_thread_with_system_message(
        db: Connection,
        agent_id: int,
        system_instructions: str,
        *,
        title: str,
        thread_type: ThreadType,
        active: bool = False,
    ) -> ThreadRead:
        """A new thread for an agent that starts with the agent's system instructions."""
        thread, _messages = ThreadService.start_thread(
            db, agent_id, system_instructions, title=title, thread_type=thread_type, active=active
        )
        return thread

    @staticmethod
    def start_thread(
        db: Connection,
        agent_id: int,
        system_instructions: str,
        *,
        title: str,
        thread_type: ThreadType,
        active: bool = False,
        task: str | None = None,
    ) -> tuple[ThreadRead, list[MessageRead]]:
        """`create_thread_with_system_message`, returning its messages too: the system
        message and — given a `task` — the task's user message, pending (`processed` false),
        both stored in one statement."""
        now = clock.now()
        row = db.execute(
            _INSERT_THREAD,
            {
                "agent_id": agent_id,
                "title": title,
                "thread_type": thread_type,
                "active": active,
                "created_at": now,
                "updated_at": now,
            },
        ).one()
        thread = ThreadRead.model_validate(row)
        rows = [_message_values(thread.id, "system", system_instructions, now=now)]
        if task is not None:
            rows.append(_message_values(thread.id, "user", task, processed=False, now=now))
        # The rows differ in role: that tells which id is whose, in whatever order they return.
        ids = {row.role: row.id for row in db.execute(_INSERT_MESSAGE_WITH_ROLE, rows)}
        return thread, [_message_read(values, ids[values["role"]], None) for values in rows]

    @staticmethod
    def create_chat_thread(
        session: Session, agent_id: int, *, actor: Actor, title: str | None
    ) -> ThreadRead:
        """A chat thread that becomes the agent's active one."""
        agent = visible_agent(agent_id, actor, session=session)
        _deactivate_chat_threads(session, agent.id, agent.owner_id)
        title = title or f"Chat {clock.now():%Y-%m-%d %H:%M} UTC"
        thread, [system] = ThreadService.start_thread(
            session.connection(),
            agent.id,
            agent.system_instructions,
            title=title,
            thread_type="chat",
            active=True,
        )
        for type, data in (
            (EventType.THREAD_CREATED, thread.model_dump(mode="json")),
            (EventType.THREAD_MESSAGE_CREATED, system.model_dump(mode="json")),
        ):
            record_in_session(
                session, type, data, owner_id=agent.owner_id, agent_id=agent.id, thread_id=thread.id
            )
        return thread

    @staticmethod
    def add_message(
        db: Connection,
        thread_id: int,
        *,
        role: Role,
        content: str,
        tool_calls: list[dict[str, Any]] | None = None,
        tool_call_id: str | None = None,
        name: str | None = None,
        processed: bool = True,
        meta: dict[str, Any] | None = None,
    ) -> MessageRead:
        """Append a message. The thread's `updated_at` is left to `touch` (once per turn)."""
        values = _message_values(
            thread_id,
            role,
            content,
            tool_call_id=tool_call_id,
            name=name,
            processed=processed,
            meta=meta,
            now=clock.now(),
        )
        if tool_calls is not None:  # else SQL NULL, not a JSON null
            values["tool_calls"] = tool_calls
        row = db.execute(_INSERT_MESSAGE, values).one()
        return _message_read(values, row.id, tool_calls)

    @staticmethod
    def finish_turn(db: Connection, thread_id: int) -> None:
        """Mark the thread's pending messages processed and its `updated_at` now."""
        db.execute(_MARK_PROCESSED, {"of_thread": thread_id})
        db.execute(_TOUCH_THREAD, {"thread_id": thread_id, "updated_at": clock.now()})

    @staticmethod
    def read_thread(db: Connection, thread_id: int) -> ThreadRead:
        row = db.execute(_READ_THREAD, {"thread_id": thread_id}).one_or_none()
        if row is None:
            raise NotFound(f"thread {thread_id} does not exist")
        return ThreadRead.model_validate(row)

    @staticmethod
    def get_thread(session: Session, thread_id: int, *, actor: Actor) -> Thread:
        """The thread; `NotFound` when it is missing or another user's (the same answer)."""
        stmt = scoped(select(Thread).where(Thread.id == thread_id), actor, Thread.agent_id)
        thread = session.scalar(stmt)
        if thread is None:
            raise NotFound(f"thread {thread_id} does not exist")
        return thread

    @staticmethod
    def list_threads(
        session: Session,
        *,
        actor: Actor,
        agent_id: int | None,
        thread_type: ThreadType | None,
        limit: int,
        after: str | None,
    ) -> PageResult[Thread]:
        """The threads the actor may see, newest first (none for another user's `agent_id`,
        as for a missing one)."""
        stmt = scoped(select(Thread), actor, Thread.agent_id)
        if agent_id is not None:
            stmt = stmt.where(Thread.agent_id == agent_id)
        if thread_type is not None:
            stmt = stmt.where(Thread.thread_type == thread_type)
        return paginate(session, stmt, Thread.id, limit=limit, after=after, descending=True)

    @staticmethod
    def update_thread(
        session: Session, thread_id: int, data: ThreadUpdate, *, actor: Actor
    ) -> Thread:
        thread = ThreadService.get_thread(session, thread_id, actor=actor)
        if data.title is not None:
            thread.title = data.title
        if data.active is True and not thread.active:
            if thread.thread_type != "chat":
                raise InvalidInput(
                    f"thread {thread_id} is a {thread.thread_type} thread; "
                    "only a chat thread can be an agent's active thread",
                    code="not_a_chat_thread",
                )
            _deactivate_chat_threads(session, thread.agent_id, _owner_of(session, thread.agent_id))
            thread.active = True
        elif data.active is False:
            thread.active = False
        session.flush()
        _record_thread(session, EventType.THREAD_UPDATED, thread)
        return thread

    @staticmethod
    def delete_thread(session: Session, thread_id: int, *, actor: Actor) -> None:
        """Delete a thread and its messages; runs keep their record with no thread."""
        thread = ThreadService.get_thread(session, thread_id, actor=actor)
        owner_id, agent_id = _owner_of(session, thread.agent_id), thread.agent_id
        session.delete(thread)
        session.flush()
        data = {"id": thread_id, "agent_id": agent_id}
        record_in_session(
            session,
            EventType.THREAD_DELETED,
            data,
            owner_id=owner_id,
            agent_id=agent_id,
            thread_id=thread_id,
        )

    @staticmethod
    def list_messages(
        session: Session, thread_id: int, *, actor: Actor, limit: int, after: str | None
    ) -> PageResult[Message]:
        """A thread's messages in insertion order."""
        ThreadService.get_thread(session, thread_id, actor=actor)
        stmt = select(Message).where(Message.thread_id == thread_id)
        return paginate(session, stmt, Message.id, limit=limit, after=after)


def _message_values(
    thread_id: int,
    role: Role,
    content: str,
    *,
    tool_call_id: str | None = None,
    name: str | None = None,
    processed: bool = True,
    meta: dict[str, Any] | None = None,
    now: datetime,
) -> dict[str, Any]:
    """A message's row (without `tool_calls`: SQL NULL unless set)."""
    return {
        "thread_id": thread_id,
        "role": role,
        # Model and tool output may carry NUL, which PostgreSQL cannot store in text.
        "content": content.replace("\x00", "\ufffd"),
        "tool_call_id": tool_call_id,
        "name": name,
        "processed": processed,
        "metadata": meta or {},
        "created_at": now,
    }


def _message_read(
    values: dict[str, Any], message_id: int, tool_calls: list[dict[str, Any]] | None
) -> MessageRead:
    return MessageRead.model_validate(
        {**values, "id": message_id, "tool_calls": tool_calls, "meta": values["metadata"]}
    )


def _deactivate_chat_threads(session: Session, agent_id: int, owner_id: int | None) -> None:
    """The agent's active chat thread is active no more (announced as `thread_updated`)."""
    stmt = (
        update(Thread)
        .where(Thread.agent_id == agent_id, Thread.active.is_(True))
        .values(active=False)
        .returning(Thread.id)
        .execution_options(synchronize_session="fetch")
    )
    for thread_id in session.execute(stmt).scalars().all():
        data = {"id": thread_id, "agent_id": agent_id, "active": False}
        record_in_session(
            session,
            EventType.THREAD_UPDATED,
            data,
            owner_id=owner_id,
            agent_id=agent_id,
            thread_id=thread_id,
        )


def _owner_of(session: Session, agent_id: int) -> int | None:
    owner_id: int | None = session.scalar(select(Agent.owner_id).where(Agent.id == agent_id))
    return owner_id


def _record_thread(session: Session, type: EventType, thread: Thread) -> None:
    data = ThreadRead.model_validate(thread).model_dump(mode="json")
    record_in_session(
        session,
        type,
        data,
        owner_id=_owner_of(session, thread.agent_id),
        agent_id=thread.agent_id,
        thread_id=thread.id,
    )
