"""`zerg serve` and `zerg worker` as real child processes, for tests that kill and restart them."""

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.postgres import free_port


class _Child:
    """A `zerg` subprocess whose output goes to a log file; `kill()` is kill -9."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.env}
        env.pop("OPENAI_API_KEY", None)
        zerg = Path(sys.executable).parent / "zerg"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([str(zerg), *args], env=env, stdout=log, stderr=log)
        return self.process

    def _wait_until(self, ready: Callable[[], bool], what: str, timeout_s: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{what} exited: {self.log.read_text()[-2000:]}")
            if ready():
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{what} did not start: {self.log.read_text()[-2000:]}")

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


class ZergProcess(_Child):
    """A `zerg serve` subprocess on a free port (`args`: e.g. `["--no-execute"]`)."""

    def __init__(self, env: dict[str, str], log: Path, args: list[str] | None = None) -> None:
        super().__init__(env, log)
        self.args = args or []
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> "ZergProcess":
        return self.spawn().wait_ready(timeout_s)

    def spawn(self) -> "ZergProcess":
        """Start the process without waiting (start several, then `wait_ready` each)."""
        self._spawn(["serve", "--port", str(self.port), *self.args])
        return self

    def wait_ready(self, timeout_s: float = 30) -> "ZergProcess":
        self._wait_until(self._healthy, "zerg serve", timeout_s)
        return self

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False


class WorkerProcess(_Child):
    """A `zerg worker --id ID` subprocess; it serves no HTTP, so it is ready once it logs so."""

    def __init__(self, env: dict[str, str], log: Path, executor_id: str) -> None:
        super().__init__(env, log)
        self.executor_id = executor_id
        self._ready_before = 0

    def start(self, timeout_s: float = 30) -> "WorkerProcess":
        return self.spawn().wait_ready(timeout_s)

    def spawn(self) -> "WorkerProcess":
        self._ready_before = self._ready_count()
        self._spawn(["worker", "--id", self.executor_id])
        return self

    def wait_ready(self, timeout_s: float = 30) -> "WorkerProcess":
        ready = lambda: self._ready_count() > self._ready_before  # noqa: E731
        self._wait_until(ready, "zerg worker", timeout_s)
        return self

    def _ready_count(self) -> int:
        return self.log.read_text().count(self._ready_line) if self.log.exists() else 0

    @property
    def _ready_line(self) -> str:
        return f"worker {self.executor_id} ready"
