"""`zerg runs`: inspect and cancel task runs, through the running server."""

from typing import Annotated

import typer

from zerg.cli.common import emit_json, load_settings, parse_answer, server_json
from zerg.cli.watch import Watch, WatchOptions
from zerg.schemas.common import Page
from zerg.schemas.runs import RunRead, RunStatus
from zerg.services.pagination import MAX_LIMIT

app = typer.Typer(
    help="List, show, watch and cancel task runs, through the running server "
    "(ZERG_SERVER_URL, with ZERG_TOKEN or the token of `zerg login`).",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the server's JSON.")]


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
    """List the runs you may see, newest first, one page at a time: when there are more,
    stderr says how to get the next page (`--after CURSOR`)."""
    params: dict[str, str | int] = {"limit": limit}
    if agent is not None:
        params["agent_id"] = agent
    if status is not None:
        params["status"] = status.value
    if after is not None:
        params["after"] = after
    data = server_json(load_settings(), "GET", "/api/runs", params=params)
    page = parse_answer(Page[RunRead], data)
    if as_json:
        emit_json(data["items"])
    else:
        typer.echo(
            f"{'ID':>6}  {'AGENT':>5}  {'STATUS':10} {'TRIGGER':9} {'THREAD':>7}  "
            f"{'TOKENS':>7}  TOOK"
        )
        for run in page.items:
            typer.echo(_line(run))
    if page.next_cursor:
        typer.echo(f"more: zerg runs list --after {page.next_cursor}", err=True)


@app.command("show")
def show_run(run_id: int, as_json: JsonOpt = False) -> None:
    """Show one run."""
    data = server_json(load_settings(), "GET", f"/api/runs/{run_id}")
    parse_answer(RunRead, data)
    if as_json:
        emit_json(data)
        return
    for field, value in data.items():
        typer.echo(f"{field:14} {value if value is not None else '-'}")


@app.command("cancel")
def cancel_run(run_id: int, as_json: JsonOpt = False) -> None:
    """Cancel a queued or running run; its in-flight model or tool call is interrupted."""
    data = server_json(load_settings(), "POST", f"/api/runs/{run_id}/cancel")
    run = parse_answer(RunRead, data)
    if as_json:
        emit_json(data)
    else:
        typer.echo(f"run {run.id}: {run.status}")


@app.command("watch")
def watch_runs(
    agent: Annotated[int | None, typer.Option(help="Only this agent's runs.")] = None,
    status: Annotated[
        list[RunStatus] | None,
        typer.Option(help="Only runs in this status; repeatable."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIMIT, help="Rows of the table (in a terminal).")
    ] = 20,
    count: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many changes were shown.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON line per change: the hub's message.")
    ] = False,
) -> None:
    """Watch runs change, live: a table in a terminal, else one line per change (JSON lines
    with --json). Reconnects when the connection drops; Ctrl-C stops."""
    options = WatchOptions(
        agent=agent,
        statuses=frozenset(status or ()),
        limit=limit,
        as_json=as_json,
        count=count,
    )
    try:
        Watch(load_settings(), options).run()
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
