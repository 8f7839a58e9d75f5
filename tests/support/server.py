"""A real HTTP server (uvicorn on a loopback port) running an app in a background thread."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from zerg.api.app import server_options


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # A Zerg app runs with the options `zerg serve` gives it; another app (a fake server) plain.
    settings = getattr(getattr(app, "state", None), "settings", None)
    options = server_options(settings) if settings is not None else {"ws": "websockets-sansio"}
    config = uvicorn.Config(app, log_level="warning", lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("test server did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
