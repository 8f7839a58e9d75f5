"""A `zerg worker`'s own GET /metrics: a small HTTP server on a thread of its own, since a
worker serves no other HTTP. It needs `ZERG_METRICS_TOKEN` as a Bearer token when one is set
(settings refuse a non-loopback address with neither a token nor `ZERG_METRICS_PUBLIC`)."""

import hmac
import threading
from collections.abc import Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from zerg.errors import Conflict
from zerg.metrics import Metrics
from zerg.settings import Settings


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged: one every few seconds would drown everything else."""


class MetricsExporter:
    """Serves `metrics` on `ZERG_METRICS_HOST:ZERG_METRICS_PORT` until `stop`."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        assert settings.metrics_port is not None
        token = settings.metrics_token
        self._expected = f"Bearer {token.get_secret_value()}".encode() if token else None
        self._app = make_wsgi_app(metrics.registry)
        try:
            self._server = make_server(
                settings.metrics_host,
                settings.metrics_port,
                self._guarded,
                ThreadingWSGIServer,
                handler_class=_Quiet,
            )
        except OSError as exc:
            raise Conflict(
                f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} "
                f"(ZERG_METRICS_HOST, ZERG_METRICS_PORT): {exc.strerror or exc}"
            ) from None
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="zerg-metrics", daemon=True
        )
        self._thread.start()

    def _guarded(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"only /metrics is served here\n"]
        given = environ.get("HTTP_AUTHORIZATION", "").encode()
        if self._expected is not None and not hmac.compare_digest(given, self._expected):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
            )
            return [b"send ZERG_METRICS_TOKEN as 'Authorization: Bearer <token>'\n"]
        body: Iterable[bytes] = self._app(environ, start_response)
        return body

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
