"""The FastAPI application factory."""

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles

import zerg
from zerg import heap
from zerg.agents.models import close_model_clients
from zerg.api import ws
from zerg.api.auth import AuthMode, current_actor
from zerg.api.errors import install_error_handlers
from zerg.api.limits import BodyLimit
from zerg.api.routes import (
    agents,
    health,
    me,
    metrics,
    run_events,
    runs,
    tasks,
    threads,
    triggers,
)
from zerg.api.turns import RequestTurns
from zerg.db import Database
from zerg.events.postgres import PostgresRelay
from zerg.events.wiring import connect_bus
from zerg.metrics import Metrics
from zerg.scheduler.service import SchedulerService
from zerg.services.task_runs import TaskRuns
from zerg.settings import Settings
from zerg.web import pages
from zerg.web.routes import agents as agent_pages
from zerg.web.routes import chat, dashboard, login, stats
from zerg.web.routes import runs as run_pages
from zerg.web.routes import threads as thread_pages


def create_app(settings: Settings) -> FastAPI:
    """An app for `settings`; the database engine lives as long as the app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        relay: PostgresRelay | None = app.state.relay
        if relay is not None:
            await asyncio.to_thread(relay.start)
        scheduler: asyncio.Task[None] | None = None
        loop_lag = asyncio.create_task(app.state.metrics.watch_loop_lag())
        collector = asyncio.create_task(heap.pace())
        try:
            await app.state.task_runs.launch()
            heap.settle()
            if app.state.task_runs.engine.mode == "embedded":  # this process executes runs
                interval_s = settings.scheduler_interval_s
                service = SchedulerService(
                    app.state.database, app.state.task_runs, interval_s=interval_s
                )
                app.state.metrics.watch_scheduler(service)
                scheduler = asyncio.create_task(service.run())
            yield
        finally:
            for task in (scheduler, loop_lag, collector):
                if task is not None:
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task
            app.state.task_runs.shutdown()
            await close_model_clients()
            if relay is not None:
                relay.stop()
            app.state.database.dispose()

    app = FastAPI(
        title="Zerg",
        version=zerg.__version__,
        summary="Run LLM agents: task runs, schedules, webhooks and chat.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = Database(settings)
    # On PostgreSQL the bus spans every process on the database (API replicas and workers).
    app.state.bus, app.state.relay = connect_bus(settings, app.state.database)
    app.state.task_runs = TaskRuns(settings, app.state.database, app.state.bus)
    app.state.metrics = Metrics()
    # Any replica sees every process's run events: its run metrics are the deployment's.
    app.state.metrics.watch_runs(app.state.bus, app.state.database)
    install_error_handlers(app, error_page=pages.error_page)

    app.state.auth_mode = AuthMode(settings, app.state.database)
    # Every API route acts as someone; webhook deliveries are signed instead.
    api = APIRouter(prefix="/api", dependencies=[Depends(current_actor)])
    for module in (agents, tasks, triggers, threads, runs, run_events, me):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(ws.router)
    app.include_router(triggers.deliveries)
    app.include_router(health.router)
    app.include_router(metrics.router)
    # The dashboard: pages at /, its assets at /static.
    for module in (login, dashboard, agent_pages, run_pages, thread_pages, chat, stats):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    # Webhook deliveries keep their own limit, enforced as their route reads them.
    hook = app.url_path_for("fire_trigger", public_id="{public_id}")
    deliveries = _path_pattern(hook, "{public_id}")
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, exempt=[deliveries])
    app.add_middleware(RequestTurns)
    _add_links(app)
    return app


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for this app: WebSocket pings find dead peers, a client's messages
    are small, and events go uncompressed (compressing small JSON frames cost a third of the
    CPU of sending one to each client, and twice the memory per connection)."""
    return {
        "ws": "websockets-sansio",
        "ws_ping_interval": settings.heartbeat_s,
        "ws_ping_timeout": settings.heartbeat_s,
        "ws_max_size": ws.MAX_MESSAGE_BYTES,
        "ws_per_message_deflate": False,
    }


# The operations that create an object, the parameters its ids fill, and the field of the
# answer each comes from.
_CREATED_IDS = {
    ("post", "/api/agents"): {"agent_id": "id"},
    ("post", "/api/threads"): {"thread_id": "id"},
    ("post", "/api/agents/{agent_id}/task"): {"run_id": "id"},
    ("post", "/api/agents/{agent_id}/triggers"): {"trigger_id": "id", "public_id": "public_id"},
}


def _add_links(app: FastAPI) -> None:
    """OpenAPI links from each creating operation to every operation on what it created, so a
    client (or a schema-driven test) can follow a new object's id without guessing it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # FastAPI builds the schema once and keeps it
            schema = generate()
            for (method, path), fields in _CREATED_IDS.items():
                links = {
                    target: link
                    for name, field in fields.items()
                    for target, link in _links_to(schema, name, field)
                }
                for status, response in schema["paths"][path][method]["responses"].items():
                    if status.startswith("2"):
                        response["links"] = links
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]


def _links_to(
    schema: dict[str, Any], name: str, field: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """A link to each operation with a parameter (or a request body field) called `name`, filled
    from the answer's `field`."""
    value = f"$response.body#/{field}"
    for operations in schema["paths"].values():
        for operation in operations.values():
            target = operation["operationId"]
            if any(p["name"] == name for p in operation.get("parameters", ())):
                yield target, {"operationId": target, "parameters": {name: value}}
            elif name in _body_fields(schema, operation):
                yield target, {"operationId": target, "requestBody": {name: value}}


def _body_fields(schema: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    ref = body.get("schema", {}).get("$ref", "")
    component = schema["components"]["schemas"].get(ref.rpartition("/")[2], {})
    return set(component.get("properties", {}))


def _path_pattern(path: str, placeholder: str) -> re.Pattern[str]:
    """The paths `path` stands for, with any one path segment in place of `placeholder`."""
    return re.compile("[^/]+".join(re.escape(part) for part in path.split(placeholder)))
