"""Liveness and database reachability."""

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from zerg.api.deps import DatabaseDep

logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/health")
async def health(database: DatabaseDep) -> JSONResponse:
    """Report whether the server and its database answer; 503 when the database does not.

    Answered on the event loop, not on a worker thread: so it also says the loop serves, and
    stays quick while the loop is busy (a thread would wait for the interpreter's lock behind
    the loop's work, several times per request)."""
    try:
        database.ping()
    except SQLAlchemyError as exc:
        logger.warning("health check: database unreachable: %s", exc.__class__.__name__)
        return JSONResponse(
            {
                "status": "error",
                "database": "unreachable",
                "detail": "the database does not answer; check ZERG_DATABASE_URL and the server",
                "code": "database_unavailable",
            },
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "ok"})
