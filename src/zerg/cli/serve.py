"""`zerg serve`: the API server (embedded mode runs everything in this one process)."""

import copy
import logging
from typing import Annotated, Any

import typer
import uvicorn
from uvicorn.config import LOGGING_CONFIG

from zerg.api.app import create_app, server_options
from zerg.cli.common import fail, load_settings, migrate_or_fail, require_postgres, session_scope
from zerg.logging import DeniedHandshakeFilter, configure_logging, make_handler
from zerg.net import is_loopback_host
from zerg.services.users import users_exist
from zerg.settings import Settings

logger = logging.getLogger(__name__)


def _uvicorn_log_config(log_format: str = "auto") -> dict[str, Any]:
    """uvicorn's logging through Zerg's handler: on stderr (its access lines too, beside every
    log), in Zerg's format, secrets redacted."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"] = {}
    handler = {"()": make_handler, "log_format": log_format}
    config["handlers"] = {"default": handler, "access": dict(handler)}
    config.setdefault("filters", {})["denied_handshake"] = {"()": DeniedHandshakeFilter}
    config["loggers"]["uvicorn.error"]["filters"] = ["denied_handshake"]
    return config


def _check_open_bind(settings: Settings) -> None:
    """A Zerg without users trusts every request: only this machine may reach it, unless the
    operator says otherwise out loud."""
    if settings.auth == "required" or is_loopback_host(settings.host):
        return
    with session_scope(settings) as session:
        if users_exist(session=session):
            return
    if not settings.insecure_no_auth:
        fail(
            f"refusing to listen on {settings.host}: this Zerg has no users, so it would "
            "trust every request from the network. Create an admin with "
            "`zerg users create NAME --admin` and have clients send the token it prints as "
            "`Authorization: Bearer <token>` (ZERG_TOKEN for `zerg` commands), or listen on "
            "127.0.0.1; --insecure-no-auth serves without authentication anyway"
        )
    logger.warning(
        "--insecure-no-auth: listening on %s with no authentication; everyone who can reach "
        "port %s owns this Zerg, its agents, their secrets and tools",
        settings.host,
        settings.port,
    )


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
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Listen on a non-loopback --host while no user exists, with no authentication: "
            "everyone who can reach the port owns everything. Create a user instead "
            "[ZERG_INSECURE_NO_AUTH].",
        ),
    ] = False,
) -> None:
    """Apply migrations, then serve the dashboard (/), the API (/api), its docs (/docs) and
    the health check (/health)."""
    settings = load_settings(
        host=host, port=port, execute_runs=execute, insecure_no_auth=insecure_no_auth or None
    )
    configure_logging(settings.log_level, settings.log_format)
    if not settings.execute_runs:
        require_postgres(settings, "zerg serve --no-execute")
    url = migrate_or_fail(settings)
    _check_open_bind(settings)
    logger.info("database ready at %s", url)
    logger.info("dashboard at http://%s:%s/", _display_host(settings.host), settings.port)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=_uvicorn_log_config(settings.log_format),
        **server_options(settings),
    )


def _display_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
