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
