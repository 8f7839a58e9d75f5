"""/chat: pick an agent and start a chat, or go back to a recent one; /chat/{id}: the
conversation and its composer (chat.js sends through the API and follows the turn's tokens)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from zerg.api.deps import SessionDep
from zerg.schemas.common import Id
from zerg.services import agents as agents_service
from zerg.services.pagination import MAX_LIMIT
from zerg.services.runs import runs_of_thread
from zerg.services.threads import ThreadService
from zerg.web.pages import render
from zerg.web.routes.threads import OPEN, RUNS_SHOWN, messages_after
from zerg.web.security import FormActor, PageActor

router = APIRouter(include_in_schema=False)

# The chat page lists this many of the actor's chat threads, newest first.
RECENT_CHATS = 50


@router.get("/chat", response_class=HTMLResponse)
def chat_page(
    request: Request, actor: PageActor, session: SessionDep, agent_id: Id | None = None
) -> HTMLResponse:
    """Pick an agent to chat with, or a recent chat."""
    agents = agents_service.list_agents(actor=actor, session=session, limit=MAX_LIMIT, after=None)
    chats = ThreadService.list_threads(
        session, actor=actor, agent_id=None, thread_type="chat", limit=RECENT_CHATS, after=None
    )
    context = {
        "agents": agents.items,
        "agent_names": agents_service.agent_names(
            (chat.agent_id for chat in chats.items), actor=actor, session=session
        ),
        "chosen": agent_id,
        "chats": chats.items,
        "nav": "chat",
    }
    return render(request, "chat.html", context)


@router.post("/chat")
def start_chat(
    actor: FormActor, session: SessionDep, agent_id: Annotated[Id, Form()]
) -> RedirectResponse:
    """A new chat thread with the agent, then its page."""
    thread = ThreadService.create_chat_thread(session, agent_id, actor=actor, title=None)
    session.commit()
    return RedirectResponse(f"/chat/{thread.id}", status_code=303)


@router.get("/chat/{thread_id}", response_class=HTMLResponse)
def chat_thread_page(
    request: Request, thread_id: Id, actor: PageActor, session: SessionDep
) -> Response:
    """The conversation and its composer; another kind of thread has only its thread view."""
    thread = ThreadService.get_thread(session, thread_id, actor=actor)
    if thread.thread_type != "chat":
        return RedirectResponse(f"/threads/{thread.id}", status_code=303)
    runs = runs_of_thread(thread.id, limit=RUNS_SHOWN, session=session)
    context = {
        "thread": thread,
        "agent": agents_service.get_agent(thread.agent_id, actor=actor, session=session),
        "messages": messages_after(session, thread.id, actor=actor),
        "open_run": next((run for run in reversed(runs) if run.status in OPEN), None),
        "nav": "chat",
    }
    return render(request, "chat_thread.html", context)
