"""ThreadService: threads and their messages in the database."""

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zerg import clock
from zerg.errors import InvalidInput, NotFound
from zerg.models import Agent, Message, Thread
from zerg.schemas.threads import Role, ThreadType, ThreadUpdate
from zerg.services.agents import get_agent
from zerg.services.pagination import PageResult, paginate


class ThreadService:
    """Threads and messages. Every method flushes; the caller commits."""

    @staticmethod
    def create_thread_with_system_message(
        session: Session,
        agent: Agent,
        *,
        title: str,
        thread_type: ThreadType,
        active: bool = False,
    ) -> Thread:
        """A new thread for `agent` that starts with the agent's system instructions."""
        thread = Thread(agent_id=agent.id, title=title, thread_type=thread_type, active=active)
        session.add(thread)
        session.flush()
        ThreadService.add_message(session, thread, role="system", content=agent.system_instructions)
        return thread

    @staticmethod
    def create_chat_thread(session: Session, agent_id: int, *, title: str | None) -> Thread:
        """A chat thread that becomes the agent's active one."""
        agent = get_agent(agent_id, session=session)
        _deactivate_chat_threads(session, agent.id)
        title = title or f"Chat {clock.now():%Y-%m-%d %H:%M} UTC"
        return ThreadService.create_thread_with_system_message(
            session, agent, title=title, thread_type="chat", active=True
        )

    @staticmethod
    def add_message(
        session: Session,
        thread: Thread,
        *,
        role: Role,
        content: str,
        tool_calls: list[dict[str, Any]] | None = None,
        tool_call_id: str | None = None,
        name: str | None = None,
        processed: bool = True,
        meta: dict[str, Any] | None = None,
    ) -> Message:
        message = Message(
            thread_id=thread.id,
            role=role,
            # Model and tool output may carry NUL, which PostgreSQL cannot store in text.
            content=content.replace("\x00", "\ufffd"),
            tool_calls=tool_calls,
            tool_call_id=tool_call_id,
            name=name,
            processed=processed,
            meta=meta or {},
        )
        session.add(message)
        thread.updated_at = clock.now()
        session.flush()
        return message

    @staticmethod
    def get_thread(session: Session, thread_id: int) -> Thread:
        thread = session.get(Thread, thread_id)
        if thread is None:
            raise NotFound(f"thread {thread_id} does not exist")
        return thread

    @staticmethod
    def list_threads(
        session: Session,
        *,
        agent_id: int | None,
        thread_type: ThreadType | None,
        limit: int,
        after: str | None,
    ) -> PageResult[Thread]:
        """Threads, newest first."""
        stmt = select(Thread)
        if agent_id is not None:
            stmt = stmt.where(Thread.agent_id == agent_id)
        if thread_type is not None:
            stmt = stmt.where(Thread.thread_type == thread_type)
        return paginate(session, stmt, Thread.id, limit=limit, after=after, descending=True)

    @staticmethod
    def update_thread(session: Session, thread_id: int, data: ThreadUpdate) -> Thread:
        thread = ThreadService.get_thread(session, thread_id)
        if data.title is not None:
            thread.title = data.title
        if data.active is True and not thread.active:
            if thread.thread_type != "chat":
                raise InvalidInput(
                    f"thread {thread_id} is a {thread.thread_type} thread; "
                    "only a chat thread can be an agent's active thread",
                    code="not_a_chat_thread",
                )
            _deactivate_chat_threads(session, thread.agent_id)
            thread.active = True
        elif data.active is False:
            thread.active = False
        session.flush()
        return thread

    @staticmethod
    def delete_thread(session: Session, thread_id: int) -> None:
        """Delete a thread and its messages; runs keep their record with no thread."""
        session.delete(ThreadService.get_thread(session, thread_id))
        session.flush()

    @staticmethod
    def list_messages(
        session: Session, thread_id: int, *, limit: int, after: str | None
    ) -> PageResult[Message]:
        """A thread's messages in insertion order."""
        ThreadService.get_thread(session, thread_id)
        stmt = select(Message).where(Message.thread_id == thread_id)
        return paginate(session, stmt, Message.id, limit=limit, after=after)


def _deactivate_chat_threads(session: Session, agent_id: int) -> None:
    session.execute(
        update(Thread)
        .where(Thread.agent_id == agent_id, Thread.active.is_(True))
        .values(active=False)
    )
