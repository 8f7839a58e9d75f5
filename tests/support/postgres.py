"""A throwaway PostgreSQL server for the test session, started from the Debian binaries.

PostgreSQL refuses to run as root, so as root the cluster is owned by and run as `postgres`.
"""

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text


def find_bindir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    on_path = shutil.which("pg_ctl")
    if candidates:
        return Path(candidates[0]).parent
    if on_path:
        return Path(on_path).resolve().parent
    raise RuntimeError(
        "PostgreSQL server binaries not found; install them with `apt-get install postgresql` "
        "(scripts/test does this) or set ZERG_TEST_BACKENDS=sqlite"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    datadir: Path
    port: int
    bindir: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://zerg@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://zerg@127.0.0.1:{self.port}/{database}"

    @contextmanager
    def database(self, name: str, *, template: str | None = None) -> Iterator[str]:
        """A new database (a copy of `template`, or empty), dropped afterwards; yields its URL."""
        copy = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}{copy}"))
        try:
            yield self.url_for(name)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            admin.dispose()

    def stop(self) -> None:
        _run_as_owner(
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"],
            check=False,
        )


def _run_as_owner(cmd: list[str], *, check: bool = True) -> None:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=check, capture_output=True, text=True)


def start_postgres(root: Path, *, settings: dict[str, str] | None = None) -> PostgresServer:
    """initdb + start a cluster under `root`, tuned for tests (no fsync), on a free port;
    `settings` adds server settings (`-c key=value`), e.g. `shared_preload_libraries`."""
    bindir = find_bindir()
    root.mkdir(parents=True, exist_ok=True)
    datadir = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        root.chmod(0o700)
    _run_as_owner(
        [
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "zerg",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]
    )
    port = free_port()
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    )
    options += "".join(f" -c {key}={value}" for key, value in (settings or {}).items())
    _run_as_owner(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-o",
            options,
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ]
    )
    return PostgresServer(datadir=datadir, port=port, bindir=bindir)
