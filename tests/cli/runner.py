"""Running `zerg` in-process with Typer's CliRunner, and reading what it printed.

The installed Click keeps stdout and stderr apart (`result.stdout`, `result.stderr`), so the tests
check that data and messages go to the right stream.
"""

import json
from typing import Any

from typer.testing import CliRunner, Result

from zerg.cli import app


class Cli:
    """Runs `zerg ARGS...` with a fixed environment; keyword arguments add variables."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str, **env: str) -> Result:
        return self.runner.invoke(app, list(args), env={**self.env, **env})


def json_output(result: Result) -> Any:
    """The parsed stdout of a command that succeeded: stdout carries only data."""
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def error_line(result: Result, exit_code: int) -> str:
    """The one `error:` line a failed command printed on stderr; stdout stays empty."""
    assert result.exit_code == exit_code, (result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]
