"""The FastAPI application factory."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import APIRouter, FastAPI

import zerg
from zerg.api.errors import install_error_handlers
from zerg.api.routes import agents, health, runs, tasks, threads, triggers
from zerg.db import Database
from zerg.events import EventBus
from zerg.events.postgres import PostgresRelay
from zerg.scheduler.service import SchedulerService
from zerg.services.task_runs import TaskRuns
from zerg.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """An app for `settings`; the database engine lives as long as the app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        relay: PostgresRelay | None = app.state.relay
        if relay is not None:
            await asyncio.to_thread(relay.start)
        scheduler: asyncio.Task[None] | None = None
        try:
            await app.state.task_runs.launch()
            if app.state.task_runs.engine.mode == "embedded":  # this process executes runs
                scheduler = asyncio.create_task(
                    SchedulerService(
                        app.state.database,
                        app.state.task_runs,
                        interval_s=settings.scheduler_interval_s,
                    ).run()
                )
            yield
        finally:
            if scheduler is not None:
                scheduler.cancel()
                with suppress(asyncio.CancelledError):
                    await scheduler
            app.state.task_runs.shutdown()
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
    app.state.bus = EventBus()
    # On PostgreSQL the bus spans every process on the database (API replicas and workers).
    app.state.relay = (
        None if settings.is_sqlite else PostgresRelay(app.state.bus, settings.resolved_database_url)
    )
    app.state.task_runs = TaskRuns(settings, app.state.database, app.state.bus)
    install_error_handlers(app)

    api = APIRouter(prefix="/api")
    for module in (agents, tasks, triggers, threads, runs):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    return app
