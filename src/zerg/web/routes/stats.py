"""/stats: charts of the last two weeks' runs (all agents, or one), drawn on the server."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from zerg.api.deps import SessionDep
from zerg.errors import NotFound
from zerg.schemas.common import MAX_ID
from zerg.schemas.runs import RunStatus
from zerg.services import agents as agents_service
from zerg.services.pagination import MAX_LIMIT
from zerg.services.stats import RunStats, run_stats
from zerg.web.charts import Series, bar_chart
from zerg.web.pages import render
from zerg.web.security import PageActor

router = APIRouter(include_in_schema=False)


@router.get("/stats", response_class=HTMLResponse)
def stats_page(
    request: Request, actor: PageActor, session: SessionDep, agent_id: str = ""
) -> HTMLResponse:
    """Runs by status, durations, tokens and cost per UTC day; `agent_id`: one agent's."""
    stats = run_stats(actor=actor, session=session, agent_id=_agent_id(agent_id))
    agents = agents_service.list_agents(actor=actor, session=session, limit=MAX_LIMIT, after=None)
    context = {"nav": "stats", "stats": stats, "agents": agents.items, "charts": charts(stats)}
    return render(request, "stats.html", context)


def charts(stats: RunStats) -> list[Markup]:
    """The page's four charts."""
    days = [day.day.isoformat() for day in stats.days]
    ticks = [str(day.day.day) for day in stats.days]
    status = [
        Series(s.value.replace("_", " "), s.value, [d.runs[s] for d in stats.days])
        for s in RunStatus
    ]
    duration = [
        Series("average", "average", [d.avg_duration_ms for d in stats.days]),
        Series("longest", "longest", [d.max_duration_ms for d in stats.days]),
    ]
    tokens = [
        Series("input", "input", [d.input_tokens for d in stats.days]),
        Series("output", "output", [d.output_tokens for d in stats.days]),
    ]
    cost = [Series("cost", "cost", [d.cost_usd for d in stats.days])]
    none = "No runs in these two weeks."
    return [
        bar_chart("runs", "Runs per day, by status", days, status, stacked=True,
                  fmt=_count, integer=True, tick_labels=ticks, empty=none),
        bar_chart("duration", "Run duration per day", days, duration, fmt=_seconds,
                  tick_labels=ticks, empty="No finished runs in these two weeks."),
        bar_chart("tokens", "Tokens per day", days, tokens, stacked=True, fmt=_count,
                  integer=True, tick_labels=ticks, empty="No tokens used in these two weeks."),
        bar_chart("cost", "Cost per day (USD)", days, cost, fmt=_usd, tick_labels=ticks,
                  empty="No cost in these two weeks."),
    ]  # fmt: skip


def _agent_id(value: str) -> int | None:
    # Anything but one of the agent's ids is no agent at all: 404, like another user's.
    if not value:
        return None
    if value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID:
        return int(value)
    raise NotFound(f"agent {value!r} does not exist")


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _seconds(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def _usd(value: float) -> str:
    # Scripted and small models cost fractions of a cent: enough digits to tell them apart.
    digits = 2 if value >= 1 else 6
    return "$0" if value == 0 else f"${value:.{digits}f}".rstrip("0").rstrip(".")
