"""/threads/{id}: a thread's messages as the model saw them (tool calls and outputs included),
its agent and its runs, followed live."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from zerg.api.deps import SessionDep
from zerg.schemas.common import MAX_ID, Id
from zerg.schemas.runs import RunStatus
from zerg.schemas.threads import MessageRead
from zerg.services import agents as agents_service
from zerg.services.pagination import MAX_LIMIT, encode_cursor
from zerg.services.runs import runs_of_thread
from zerg.services.threads import ThreadService
from zerg.services.users import Actor
from zerg.web.pages import render
from zerg.web.security import PageActor

router = APIRouter(include_in_schema=False)

# A thread view lists at most this many of the thread's runs (a long chat has one per turn).
RUNS_SHOWN = 20
OPEN = (RunStatus.QUEUED, RunStatus.RUNNING)


@router.get("/threads/{thread_id}", response_class=HTMLResponse)
def thread_page(
    request: Request, thread_id: Id, actor: PageActor, session: SessionDep
) -> HTMLResponse:
    """A thread's messages, its agent and its runs."""
    thread = ThreadService.get_thread(session, thread_id, actor=actor)
    runs = runs_of_thread(thread.id, limit=RUNS_SHOWN, session=session)
    context = {
        "thread": thread,
        "agent": agents_service.get_agent(thread.agent_id, actor=actor, session=session),
        "messages": messages_after(session, thread.id, actor=actor),
        "runs": runs,
        "open_run": next((run for run in reversed(runs) if run.status in OPEN), None),
        "nav": "chat" if thread.thread_type == "chat" else "runs",
    }
    return render(request, "thread.html", context)


@router.get("/threads/{thread_id}/messages", response_class=HTMLResponse)
def thread_messages(
    request: Request,
    thread_id: Id,
    actor: PageActor,
    session: SessionDep,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> HTMLResponse:
    """The messages after `after_id`, as `_messages.html` renders them: pages add what they
    hear of live with the same markup a reload gives."""
    thread = ThreadService.get_thread(session, thread_id, actor=actor)
    messages = messages_after(session, thread.id, actor=actor, after_id=after_id)
    return render(request, "_messages.html", {"thread": thread, "messages": messages})


def messages_after(
    session: Session, thread_id: int, *, actor: Actor, after_id: int = 0
) -> list[MessageRead]:
    """All of a thread's messages after `after_id`, in order, a page at a time."""
    shown: list[MessageRead] = []
    after = encode_cursor(after_id) if after_id > 0 else None
    while True:
        page = ThreadService.list_messages(
            session, thread_id, actor=actor, limit=MAX_LIMIT, after=after
        )
        shown.extend(MessageRead.model_validate(message) for message in page.items)
        if page.next_cursor is None:
            return shown
        after = page.next_cursor
