"""GET /metrics: Prometheus's text format (see `zerg.metrics`), kept off the OpenAPI schema
(it is no JSON API) and described in the README instead.

The counts cover every user's runs, so in auth mode only an admin's token (or session) reads
them, or a scraper sending `ZERG_METRICS_TOKEN`, or anyone once `ZERG_METRICS_PUBLIC` is set.
In local mode they are served to loopback `Host`s only, like everything else.
"""

import hmac

from fastapi import APIRouter, Request, Response

from zerg.api.auth import actor_of
from zerg.errors import Forbidden
from zerg.metrics import CONTENT_TYPE_LATEST, Metrics
from zerg.settings import Settings

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """The process's metrics and the deployment's run metrics, for a Prometheus scraper."""
    _check_scraper(request)
    registry: Metrics = request.app.state.metrics
    return Response(registry.exposition(), media_type=CONTENT_TYPE_LATEST)


def _check_scraper(request: Request) -> None:
    settings: Settings = request.app.state.settings
    token = settings.metrics_token
    if token is not None:
        expected = f"Bearer {token.get_secret_value()}".encode()
        if hmac.compare_digest(request.headers.get("authorization", "").encode(), expected):
            return
    if settings.metrics_public and request.app.state.auth_mode.required():
        return
    if not actor_of(request).is_admin:
        raise Forbidden(
            "metrics count every user's runs: read them with an admin's token, or give the "
            "scraper ZERG_METRICS_TOKEN",
            code="metrics_forbidden",
        )
