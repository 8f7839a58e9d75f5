"""`zerg runs`: inspect and cancel task runs."""

from typing import Annotated

import typer

from zerg.cli.common import call_server, emit_json, load_settings, session_scope
from zerg.schemas.runs import RunRead, RunStatus
from zerg.services import runs as service
from zerg.services.pagination import MAX_LIMIT
from zerg.services.users import LOCAL_OWNER

app = typer.Typer(help="List, show and cancel task runs.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _line(run: RunRead) -> str:
    took = f"{run.duration_ms} ms" if run.duration_ms is not None else "-"
    thread = run.thread_id if run.thread_id is not None else "-"
    return (
        f"{run.id:>6}  {run.agent_id:>5}  {run.status:10} {run.trigger:9} {thread!s:>7}  "
        f"{run.total_tokens:>7}  {took}"
    )


@app.command("list")
def list_runs(
    agent: Annotated[int | None, typer.Option(help="Only this agent's runs.")] = None,
    status: Annotated[RunStatus | None, typer.Option(help="Only runs in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIMIT, help="How many to show.")] = 50,
    after: Annotated[str | None, typer.Option(help="Cursor from a previous page.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first."""
    with session_scope(load_settings()) as session:
        page = service.list_runs(
            actor=LOCAL_OWNER,
            session=session,
            agent_id=agent,
            status=status,
            limit=limit,
            after=after,
        )
        runs = [RunRead.model_validate(run) for run in page.items]
    if as_json:
        emit_json(runs)
    else:
        typer.echo(
            f"{'ID':>6}  {'AGENT':>5}  {'STATUS':10} {'TRIGGER':9} {'THREAD':>7}  "
            f"{'TOKENS':>7}  TOOK"
        )
        for run in runs:
            typer.echo(_line(run))
    if page.next_cursor:
        typer.echo(f"more: zerg runs list --after {page.next_cursor}", err=True)


@app.command("show")
def show_run(run_id: int, as_json: JsonOpt = False) -> None:
    """Show one run."""
    with session_scope(load_settings()) as session:
        run = RunRead.model_validate(service.get_run(run_id, actor=LOCAL_OWNER, session=session))
    if as_json:
        emit_json(run)
        return
    for field, value in run.model_dump(mode="json").items():
        typer.echo(f"{field:14} {value if value is not None else '-'}")


@app.command("cancel")
def cancel_run(run_id: int, as_json: JsonOpt = False) -> None:
    """Cancel a queued or running run (through the running server)."""
    response = call_server(load_settings(), "POST", f"/api/runs/{run_id}/cancel")
    run = RunRead.model_validate(response.json())
    if as_json:
        emit_json(run)
    else:
        typer.echo(f"run {run.id}: {run.status}")
