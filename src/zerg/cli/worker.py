"""`zerg worker`: executes runs for the API replicas (distributed mode); serves no HTTP."""

import asyncio
import logging
from typing import Annotated

import typer

from zerg.cli.common import fail, load_settings, migrate_or_fail, require_postgres
from zerg.engine import EMBEDDED_EXECUTOR_ID
from zerg.errors import Conflict
from zerg.logging import configure_logging
from zerg.services.workers import WorkerGone, run_worker

logger = logging.getLogger(__name__)


def worker(
    executor_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="Stable id of this worker; a restart with the same id resumes its runs "
            "[ZERG_EXECUTOR_ID, default worker-<hostname>].",
        ),
    ] = None,
) -> None:
    """Execute queued runs (PostgreSQL only) until stopped; takes over dead workers' runs."""
    settings = load_settings(executor_id=executor_id)
    configure_logging(settings.log_level, settings.log_format)
    require_postgres(settings, "zerg worker")
    if settings.resolved_executor_id in ("", EMBEDDED_EXECUTOR_ID):
        fail(f"invalid --id: {settings.resolved_executor_id!r} is reserved; choose another id")
    url = migrate_or_fail(settings)
    logger.info("worker %s using the database at %s", settings.resolved_executor_id, url)
    try:
        asyncio.run(run_worker(settings))
    except Conflict as exc:
        fail(exc.detail)
    except WorkerGone as exc:
        fail(str(exc))
