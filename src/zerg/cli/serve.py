"""`zerg serve`: the API server (embedded mode runs everything in this one process)."""

import copy
import logging
from typing import Annotated, Any

import typer
import uvicorn
from uvicorn.config import LOGGING_CONFIG

from zerg.api.app import create_app
from zerg.cli.common import load_settings, migrate_or_fail, require_postgres
from zerg.logging import configure_logging

logger = logging.getLogger(__name__)


def _uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging with its access lines moved from stdout to stderr, beside every log."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return config


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on [ZERG_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [ZERG_PORT].")] = None,
    execute: Annotated[
        bool | None,
        typer.Option(
            "--execute/--no-execute",
            help="Execute runs in this process (embedded), or only record and enqueue them "
            "for `zerg worker` processes (distributed, PostgreSQL) [ZERG_EXECUTE_RUNS].",
        ),
    ] = None,
) -> None:
    """Apply migrations, then serve the API, docs (/docs) and health check (/health)."""
    settings = load_settings(host=host, port=port, execute_runs=execute)
    configure_logging(settings.log_level)
    if not settings.execute_runs:
        require_postgres(settings, "zerg serve --no-execute")
    url = migrate_or_fail(settings)
    logger.info("database ready at %s", url)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=_uvicorn_log_config(),
    )
