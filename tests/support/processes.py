"""`zerg serve` as a real child process, for tests that kill and restart it."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.postgres import free_port


class ZergProcess:
    """A `zerg serve` subprocess on a free port; `kill()` is kill -9."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> "ZergProcess":
        env = {**os.environ, **self.env}
        env.pop("OPENAI_API_KEY", None)
        zerg = Path(sys.executable).parent / "zerg"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(zerg), "serve", "--port", str(self.port)], env=env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"zerg serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"zerg serve did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
