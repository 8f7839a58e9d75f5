"""/agents/new and /agents/{id}: the agent editor, its schedule preview and its webhook
triggers. Forms are read into the API's own schemas and saved by the API's services, so a page
refuses exactly what the API refuses, each error next to its field."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from zerg import clock
from zerg.agents.catalog import BUILTIN_TOOL_NAMES, local_models_installed
from zerg.api.deps import DatabaseDep, SessionDep, SettingsDep
from zerg.errors import InvalidInput
from zerg.models import Agent, Trigger
from zerg.scheduler.cron import next_fire_times
from zerg.schemas.agents import BUDGET_FIELDS, AgentCreate, AgentUpdate, Schedule, Timezone
from zerg.schemas.common import Id
from zerg.schemas.mcp import McpServerRead, McpToolRead
from zerg.schemas.triggers import TriggerCreate
from zerg.services import agents as agents_service
from zerg.services import budgets, mcp_tools, webhooks
from zerg.services.users import Actor
from zerg.settings import Settings
from zerg.web.forms import FORM, FieldErrors, PostedForm, domain_errors, parse, text
from zerg.web.pages import render
from zerg.web.security import FormActor, PageActor

router = APIRouter(include_in_schema=False)

PREVIEW_COUNT = 5
TRIGGERS_SHOWN = 100
TIMEZONES = ("UTC", *sorted(zone for zone in available_timezones() if zone != "UTC"))
# A service's refusal names the field it is about by its stable code.
FIELD_OF_CODE = {
    "base_url_not_allowed": "config",
    "max_steps_too_high": "config",
    "mcp_stdio_not_allowed": "config",
    "schedule_never_fires": "schedule",
    "schedule_too_frequent": "schedule",
}
TEXT_FIELDS = (
    "name",
    "model",
    "system_instructions",
    "timezone",
    "missed_fires",
    "concurrency",
    "timeout_s",
)
# Blank means "none" for these.
OPTIONAL_FIELDS = ("task_instructions", "schedule", "notify_url", *BUDGET_FIELDS)
EDITED_FIELDS = (*TEXT_FIELDS, *OPTIONAL_FIELDS, "tools", "run_on_schedule", "config")
SUGGESTED_MODELS = {
    "scripted": ("scripted:demo", "scripted:echo"),
    "openai": ("openai:gpt-4o-mini", "openai:gpt-4o", "openai:gpt-4.1-mini"),
    "anthropic": ("anthropic:claude-sonnet-4-5", "anthropic:claude-haiku-4-5"),
    "local": ("local:smollm2",),
}
Schema = TypeVar("Schema", AgentCreate, AgentUpdate)


class SchedulePreview(BaseModel):
    """The schedule and time zone, checked exactly as an agent's are."""

    schedule: Schedule = None
    timezone: Timezone = "UTC"


class ScheduleFires(BaseModel):
    """The next fire times, in UTC and as shown in the agent's time zone."""

    schedule: str | None
    timezone: str
    fire_times: list[datetime]
    shown: list[str]


@dataclass(frozen=True)
class NewSecret:
    """A trigger's secret, in the one answer that shows it (after creating or rotating)."""

    trigger_id: int
    scheme: str
    secret: str
    previous_valid_until: datetime | None = None


@router.get("/agents/schedule-preview")
def schedule_preview(
    actor: PageActor, settings: SettingsDep, schedule: str = "", timezone: str = "UTC"
) -> ScheduleFires:
    """The next fire times of a schedule as typed; 422 with the reason when it is invalid."""
    return fire_preview(schedule, timezone, settings)


@router.get("/agents/{agent_id}/mcp-tools")
async def agent_mcp_tools(
    agent_id: Id, actor: PageActor, database: DatabaseDep, settings: SettingsDep
) -> list[McpServerRead]:
    """The agent's MCP servers with their tools, or why a server failed (for the editor)."""
    servers = await mcp_tools.agent_mcp_tools(
        agent_id, actor=actor, database=database, settings=settings
    )
    return [
        McpServerRead(
            name=server.name,
            transport=server.transport,
            tools=[McpToolRead(name=name, description=text) for name, text in server.tools],
            error=server.error,
        )
        for server in servers
    ]


@router.get("/agents/new", response_class=HTMLResponse)
def new_agent_page(request: Request, actor: PageActor, settings: SettingsDep) -> HTMLResponse:
    values = _values(AgentCreate.model_construct(name="", model="scripted:demo"))
    return _form_page(request, settings, values, {})


@router.post("/agents/new", response_class=HTMLResponse, response_model=None)
def create_agent(
    request: Request, actor: FormActor, session: SessionDep, settings: SettingsDep, form: PostedForm
) -> HTMLResponse | RedirectResponse:
    """Create the agent, or show the form again with each error next to its field."""
    data, typed, errors = _read(AgentCreate, form)
    if data is not None:
        try:
            agent = agents_service.create_agent(
                data, actor=actor, session=session, settings=settings
            )
        except InvalidInput as exc:
            errors = domain_errors(exc, FIELD_OF_CODE)
        else:
            session.commit()
            return RedirectResponse(f"/agents/{agent.id}?saved=created", status_code=303)
    return _form_page(request, settings, typed, errors, status=422)


@router.get("/agents/{agent_id}", response_class=HTMLResponse)
def edit_agent_page(
    agent_id: Id, request: Request, actor: PageActor, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """The agent's current values, its triggers, and links to its runs and charts."""
    agent = agents_service.get_agent(agent_id, actor=actor, session=session)
    return _edit_page(request, agent, actor, session, settings)


@router.post("/agents/{agent_id}", response_class=HTMLResponse, response_model=None)
def update_agent(
    agent_id: Id,
    request: Request,
    actor: FormActor,
    session: SessionDep,
    settings: SettingsDep,
    form: PostedForm,
) -> HTMLResponse | RedirectResponse:
    """Save every field of the form, or show it again with each error next to its field."""
    data, typed, errors = _read(AgentUpdate, form)
    if data is not None:
        try:
            agents_service.update_agent(
                agent_id, data, actor=actor, session=session, settings=settings
            )
        except InvalidInput as exc:
            errors = domain_errors(exc, FIELD_OF_CODE)
        else:
            session.commit()
            return RedirectResponse(f"/agents/{agent_id}?saved=updated", status_code=303)
    agent = agents_service.get_agent(agent_id, actor=actor, session=session)
    return _edit_page(request, agent, actor, session, settings, typed, errors, status=422)


@router.post("/agents/{agent_id}/delete")
def delete_agent(agent_id: Id, actor: FormActor, session: SessionDep) -> RedirectResponse:
    """Delete the agent (its threads, runs and triggers go with it)."""
    agents_service.delete_agent(agent_id, actor=actor, session=session)
    session.commit()
    return RedirectResponse("/", status_code=303)


@router.post("/agents/{agent_id}/triggers", response_class=HTMLResponse)
def create_trigger(
    agent_id: Id,
    request: Request,
    actor: FormActor,
    session: SessionDep,
    settings: SettingsDep,
    form: PostedForm,
) -> HTMLResponse:
    """A new webhook trigger; this answer is the only page that shows its secret."""
    choice, errors = parse(TriggerCreate, {"scheme": text(form, "scheme") or "standard"})
    if choice is None:
        raise InvalidInput(errors.get("scheme", "unknown scheme"), code="invalid_scheme")
    trigger = webhooks.create_trigger(agent_id, choice.scheme, actor=actor, session=session)
    session.commit()
    return _secret_page(request, trigger, actor, session, settings)


@router.post("/agents/{agent_id}/triggers/{trigger_id}/rotate", response_class=HTMLResponse)
def rotate_trigger_secret(
    agent_id: Id,
    trigger_id: Id,
    request: Request,
    actor: FormActor,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """A new secret for the trigger, shown once; the old one works for a grace period."""
    trigger = webhooks.rotate_secret(trigger_id, actor=actor, session=session)
    session.commit()
    return _secret_page(request, trigger, actor, session, settings)


@router.post("/agents/{agent_id}/triggers/{trigger_id}/delete")
def delete_trigger(
    agent_id: Id, trigger_id: Id, actor: FormActor, session: SessionDep
) -> RedirectResponse:
    """Delete the trigger: its URL stops accepting deliveries."""
    webhooks.delete_trigger(trigger_id, actor=actor, session=session)
    session.commit()
    return RedirectResponse(f"/agents/{agent_id}?saved=trigger-deleted#triggers", status_code=303)


def fire_preview(schedule: str, timezone: str, settings: Settings) -> ScheduleFires:
    """The next PREVIEW_COUNT fires of `schedule` in `timezone` (none without a schedule);
    `InvalidInput` when either is invalid, or saving it would be refused (it never fires, or
    fires more often than the server allows)."""
    checked, errors = parse(SchedulePreview, {"schedule": schedule or None, "timezone": timezone})
    if checked is None:
        field, message = next(iter(errors.items()))
        raise InvalidInput(message, code=f"invalid_{field}")
    times: list[datetime] = []
    if checked.schedule:
        agents_service.check_schedule(checked.schedule, checked.timezone, settings)
        times = next_fire_times(checked.schedule, checked.timezone, clock.now(), PREVIEW_COUNT)
    zone = ZoneInfo(checked.timezone)
    shown = [time.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z") for time in times]
    return ScheduleFires(
        schedule=checked.schedule, timezone=checked.timezone, fire_times=times, shown=shown
    )


def _read(
    schema: type[Schema], form: FormData
) -> tuple[Schema | None, dict[str, Any], FieldErrors]:
    """The form as `schema` (None when it is invalid), its values as typed, and its errors."""
    typed: dict[str, Any] = {name: text(form, name) for name in (*TEXT_FIELDS, *OPTIONAL_FIELDS)}
    typed["tools"] = [tool for tool in form.getlist("tools") if isinstance(tool, str)]
    typed["run_on_schedule"] = "run_on_schedule" in form
    typed["config"] = text(form, "config")
    data = typed | {name: text(form, name, blank_is_none=True) for name in OPTIONAL_FIELDS}
    config, errors = _config(typed["config"])
    data["config"] = config
    if config is None:
        del data["config"]
    parsed, schema_errors = parse(schema, data)
    errors = schema_errors | errors
    return (None if errors else parsed), typed, errors


def _config(typed: str) -> tuple[dict[str, Any] | None, FieldErrors]:
    try:
        config = json.loads(typed) if typed.strip() else {}
    except ValueError as exc:
        return None, {"config": f"Not valid JSON: {exc}"}
    if not isinstance(config, dict):
        return None, {"config": 'Must be a JSON object, e.g. {"base_url": "http://..."}'}
    return config, {}


def _values(source: Agent | AgentCreate) -> dict[str, Any]:
    """What the form shows for an agent (or a new one's defaults)."""
    values = {name: getattr(source, name) for name in EDITED_FIELDS}
    values["config"] = json.dumps(values["config"] or {}, indent=2, ensure_ascii=False)
    return values


def _models(settings: Settings) -> tuple[list[str], list[str]]:
    """The providers this server has credentials for, and models to suggest from them."""
    providers = ["scripted"]
    if settings.openai_api_key or settings.openai_base_url:
        providers.append("openai")
    if settings.anthropic_api_key:
        providers.append("anthropic")
    if local_models_installed():
        providers.append("local")
    return providers, [model for name in providers for model in SUGGESTED_MODELS[name]]


def _preview_of(values: dict[str, Any], settings: Settings) -> ScheduleFires | str:
    try:
        return fire_preview(values["schedule"] or "", values["timezone"] or "", settings)
    except InvalidInput as exc:
        return exc.detail


def _form_page(
    request: Request,
    settings: Settings,
    values: dict[str, Any],
    errors: FieldErrors,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    providers, models = _models(settings)
    page = {
        "nav": "agents",
        "values": values,
        "errors": errors,
        "form_error": errors.get(FORM),
        "providers": providers,
        "models": models,
        "tools": BUILTIN_TOOL_NAMES,
        "timezones": TIMEZONES,
        "preview": _preview_of(values, settings),
        "agent": None,
        **context,
    }
    return render(request, "agent_form.html", page, status=status)


def _edit_page(
    request: Request,
    agent: Agent,
    actor: Actor,
    session: Session,
    settings: Settings,
    values: dict[str, Any] | None = None,
    errors: FieldErrors | None = None,
    *,
    secret: NewSecret | None = None,
    status: int = 200,
) -> HTMLResponse:
    triggers = webhooks.list_triggers(
        agent.id, actor=actor, session=session, limit=TRIGGERS_SHOWN, after=None
    )
    context = {
        "agent": agent,
        "triggers": [_trigger_row(trigger, request) for trigger in triggers.items],
        "more_triggers": triggers.next_cursor is not None,
        "secret": secret,
        "saved": request.query_params.get("saved"),
        "usage": budgets.usage_today(agent.id, actor=actor, session=session),
    }
    shown = values or _values(agent)
    return _form_page(request, settings, shown, errors or {}, status, **context)


def _trigger_row(trigger: Trigger, request: Request) -> dict[str, Any]:
    return {
        "id": trigger.id,
        "scheme": trigger.scheme,
        "url": str(request.url_for("fire_trigger", public_id=trigger.public_id)),
        "created_at": trigger.created_at,
        "last_fired_at": trigger.last_fired_at,
    }


def _secret_page(
    request: Request, trigger: Trigger, actor: Actor, session: Session, settings: Settings
) -> HTMLResponse:
    """The agent's page with the trigger's new secret, which no later page load shows."""
    agent = agents_service.get_agent(trigger.agent_id, actor=actor, session=session)
    secret = NewSecret(
        trigger.id, trigger.scheme, trigger.secret, trigger.previous_secret_expires_at
    )
    return _edit_page(request, agent, actor, session, settings, secret=secret)
