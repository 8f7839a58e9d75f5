"""The FastAPI application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

import zerg
from zerg.api.errors import install_error_handlers
from zerg.api.routes import agents, health, runs, tasks, threads
from zerg.db import Database
from zerg.events import EventBus
from zerg.services.task_runs import TaskRuns
from zerg.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """An app for `settings`; the database engine lives as long as the app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.task_runs.launch()
        try:
            yield
        finally:
            app.state.task_runs.shutdown()
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
    app.state.task_runs = TaskRuns(settings, app.state.database, app.state.bus)
    install_error_handlers(app)

    api = APIRouter(prefix="/api")
    for module in (agents, tasks, threads, runs):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    return app
