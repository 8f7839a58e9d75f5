"""Logging configured once, at an entry point: one line per record on stderr."""

import logging
import sys


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger("zerg")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


class DeniedHandshakeFilter(logging.Filter):
    """Drops uvicorn's "returned without completing handshake" error, which it logs for every
    WebSocket handshake refused with an HTTP answer (a 401, 403 or 421 the hub sends on
    purpose): anyone could fill the log with it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing handshake" not in record.getMessage()
