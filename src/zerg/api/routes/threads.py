"""/api/threads"""

from fastapi import APIRouter, Response

from zerg.api.deps import DEFAULT_PAGE_LIMIT, ActorDep, After, Limit, SessionDep, TaskRunsDep
from zerg.schemas.common import Id, Page
from zerg.schemas.runs import RunRead
from zerg.schemas.threads import (
    ChatMessageCreate,
    MessageRead,
    ThreadCreate,
    ThreadRead,
    ThreadType,
    ThreadUpdate,
)
from zerg.services.threads import ThreadService

router = APIRouter(prefix="/threads", tags=["threads"])


@router.post("", status_code=201)
def create_thread(data: ThreadCreate, actor: ActorDep, session: SessionDep) -> ThreadRead:
    """Start a chat thread with an agent; it becomes the agent's active thread."""
    thread = ThreadService.create_chat_thread(session, data.agent_id, actor=actor, title=data.title)
    session.commit()
    return ThreadRead.model_validate(thread)


@router.get("")
def list_threads(
    actor: ActorDep,
    session: SessionDep,
    agent_id: Id | None = None,
    thread_type: ThreadType | None = None,
    limit: Limit = DEFAULT_PAGE_LIMIT,
    after: After = None,
) -> Page[ThreadRead]:
    """List the threads the caller may see, newest first."""
    page = ThreadService.list_threads(
        session, actor=actor, agent_id=agent_id, thread_type=thread_type, limit=limit, after=after
    )
    items = [ThreadRead.model_validate(thread) for thread in page.items]
    return Page(items=items, next_cursor=page.next_cursor)


@router.get("/{thread_id}")
def get_thread(thread_id: Id, actor: ActorDep, session: SessionDep) -> ThreadRead:
    """Read one thread."""
    return ThreadRead.model_validate(ThreadService.get_thread(session, thread_id, actor=actor))


@router.patch("/{thread_id}")
def update_thread(
    thread_id: Id, data: ThreadUpdate, actor: ActorDep, session: SessionDep
) -> ThreadRead:
    """Rename a thread or make a chat thread the agent's active one."""
    thread = ThreadService.update_thread(session, thread_id, data, actor=actor)
    session.commit()
    return ThreadRead.model_validate(thread)


@router.delete("/{thread_id}", status_code=204)
def delete_thread(thread_id: Id, actor: ActorDep, session: SessionDep) -> Response:
    """Delete a thread and its messages."""
    ThreadService.delete_thread(session, thread_id, actor=actor)
    session.commit()
    return Response(status_code=204)


@router.get("/{thread_id}/messages")
def list_messages(
    thread_id: Id,
    actor: ActorDep,
    session: SessionDep,
    limit: Limit = DEFAULT_PAGE_LIMIT,
    after: After = None,
) -> Page[MessageRead]:
    """A thread's messages in the order they were written."""
    page = ThreadService.list_messages(session, thread_id, actor=actor, limit=limit, after=after)
    items = [MessageRead.model_validate(message) for message in page.items]
    return Page(items=items, next_cursor=page.next_cursor)


@router.post("/{thread_id}/messages", status_code=202)
async def send_message(
    thread_id: Id, data: ChatMessageCreate, actor: ActorDep, task_runs: TaskRunsDep
) -> RunRead:
    """Send the next message of a chat: it is stored, and a chat turn (a run with trigger
    `chat`) answers it, its tokens streamed on the WebSocket topic `thread:{id}` and on
    `GET /api/runs/{id}/events`. One turn per thread at a time (409 `thread_busy`)."""
    return await task_runs.chat(thread_id, data.content, actor=actor, token_id=actor.token_id)
