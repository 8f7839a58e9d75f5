"""Dependencies shared by the routes, as `Annotated` aliases."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from zerg.api.auth import current_actor
from zerg.db import Database
from zerg.services.pagination import DEFAULT_LIMIT, MAX_LIMIT
from zerg.services.task_runs import TaskRuns
from zerg.services.users import Actor
from zerg.settings import Settings


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` one on a worker
# thread, a hop that cost more than the task-run request's own work.
async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_session(database: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    with database.session() as session:
        yield session


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Page size (at most {MAX_LIMIT}).")]
DEFAULT_PAGE_LIMIT = DEFAULT_LIMIT
After = Annotated[str | None, Query(description="The next_cursor of the previous page.")]


async def get_task_runs(request: Request) -> TaskRuns:
    task_runs: TaskRuns = request.app.state.task_runs
    return task_runs


TaskRunsDep = Annotated[TaskRuns, Depends(get_task_runs)]


ActorDep = Annotated[Actor, Depends(current_actor)]
