"""/: the agents, with live status badges, ▶ Play and ■ Stop; a demo agent on an empty Zerg."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from zerg.api.deps import SessionDep, SettingsDep
from zerg.schemas.agents import AgentCreate
from zerg.services import agents as agents_service
from zerg.services import budgets
from zerg.services.runs import latest_runs
from zerg.services.users import Actor
from zerg.web.pages import render
from zerg.web.security import FormActor, PageActor

router = APIRouter(include_in_schema=False)

# The dashboard lists this many agents per page; the rest are a "more" link away.
PAGE_SIZE = 100

DEMO_AGENT = AgentCreate(
    name="Demo agent",
    model="scripted:demo",
    system_instructions="You are Zerg's demo agent: you use your tool, then say what it gave.",
    task_instructions="Work out 6 * 7 with the calculator.",
    tools=["calculator"],
)


@router.get("/", response_class=HTMLResponse)
def agents_page(
    request: Request, actor: PageActor, session: SessionDep, after: str | None = None
) -> HTMLResponse:
    """The agents table."""
    return render(request, "dashboard.html", _agents(actor, session, after) | {"nav": "agents"})


@router.get("/agents-table", response_class=HTMLResponse)
def agents_table(
    request: Request, actor: PageActor, session: SessionDep, after: str | None = None
) -> HTMLResponse:
    """The table's rows alone, for a page to refresh itself after agents come and go."""
    return render(request, "_agent_rows.html", _agents(actor, session, after))


@router.post("/demo")
def create_demo_agent(
    actor: FormActor, session: SessionDep, settings: SettingsDep
) -> RedirectResponse:
    """One click to an agent that works with no API key."""
    agent = agents_service.create_agent(DEMO_AGENT, actor=actor, session=session, settings=settings)
    session.commit()
    return RedirectResponse(f"/#agent-{agent.id}", status_code=303)


def _agents(actor: Actor, session: SessionDep, after: str | None) -> dict[str, object]:
    page = agents_service.list_agents(
        actor=actor, session=session, owner_id=None, limit=PAGE_SIZE, after=after
    )
    ids = [agent.id for agent in page.items]
    return {
        "agents": page.items,
        "next_cursor": page.next_cursor,
        "last_runs": latest_runs(ids, session=session),
        "open_runs": latest_runs(ids, session=session, open_only=True),
        "budget_spent": budgets.spent_agents(page.items, session=session),
    }
