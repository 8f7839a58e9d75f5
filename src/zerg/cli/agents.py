"""`zerg agents`: define and inspect agents, through the running server."""

from typing import Annotated, Any

import typer
from pydantic import ValidationError

from zerg.cli.common import (
    EXIT_INVALID,
    EXIT_RUN_FAILED,
    call_server,
    describe_validation_error,
    emit_json,
    fail,
    load_settings,
    parse_answer,
    server_json,
)
from zerg.cli.progress import wait_with_progress
from zerg.schemas.agents import AgentCreate, AgentRead
from zerg.schemas.common import Page
from zerg.schemas.runs import RunRead
from zerg.services.pagination import MAX_LIMIT

app = typer.Typer(
    help="Create, list, show, run and delete agents, through the running server "
    "(ZERG_SERVER_URL, with ZERG_TOKEN or the token of `zerg login`).",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the server's JSON.")]


def _print_fields(fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        typer.echo(f"{name:20} {value if value is not None else '-'}")


@app.command("list")
def list_agents(
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIMIT, help="How many to show.")] = 50,
    after: Annotated[str | None, typer.Option(help="Cursor from a previous page.")] = None,
) -> None:
    """List the agents you may see, oldest first, one page at a time: when there are more,
    stderr says how to get the next page (`--after CURSOR`)."""
    params: dict[str, str | int] = {"limit": limit} | ({"after": after} if after else {})
    data = server_json(load_settings(), "GET", "/api/agents", params=params)
    page = parse_answer(Page[AgentRead], data)
    if as_json:
        emit_json(data["items"])
    else:
        typer.echo(f"{'ID':>5}  {'STATUS':8} {'MODEL':28} {'SCHEDULE':16} NAME")
        for agent in page.items:
            typer.echo(
                f"{agent.id:>5}  {agent.status:8} {agent.model:28} {agent.schedule or '-':16} "
                f"{agent.name}"
            )
    # On stderr in both modes, so stdout stays the bare list and the next page stays reachable.
    if page.next_cursor:
        typer.echo(f"more: zerg agents list --after {page.next_cursor}", err=True)


@app.command("create")
def create_agent(
    name: Annotated[str, typer.Option(help="Display name.")],
    model: Annotated[str, typer.Option(help="provider:name, e.g. openai:gpt-4o-mini.")],
    system: Annotated[str, typer.Option(help="System instructions.")] = "",
    task: Annotated[str | None, typer.Option(help="Task instructions for task runs.")] = None,
    tool: Annotated[list[str] | None, typer.Option(help="A built-in tool; repeatable.")] = None,
    schedule: Annotated[str | None, typer.Option(help="Standard 5-field cron expression.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone of the schedule.")] = "UTC",
    concurrency: Annotated[str, typer.Option(help="reject or queue.")] = "reject",
    timeout: Annotated[int, typer.Option(help="Run time limit in seconds.")] = 600,
    max_run_tokens: Annotated[
        int | None, typer.Option(help="Budget: tokens one run may use.")
    ] = None,
    max_run_cost: Annotated[
        float | None, typer.Option(help="Budget: USD one run may cost.")
    ] = None,
    max_day_tokens: Annotated[
        int | None, typer.Option(help="Budget: tokens the agent's runs may use per UTC day.")
    ] = None,
    max_day_cost: Annotated[
        float | None, typer.Option(help="Budget: USD the agent's runs may cost per UTC day.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an agent, owned by you (the token's user); prints its id."""
    fields = {
        "name": name,
        "model": model,
        "system_instructions": system,
        "task_instructions": task,
        "tools": tool or [],
        "schedule": schedule,
        "timezone": timezone,
        "concurrency": concurrency,
        "timeout_s": timeout,
        "max_run_tokens": max_run_tokens,
        "max_run_cost_usd": max_run_cost,
        "max_day_tokens": max_day_tokens,
        "max_day_cost_usd": max_day_cost,
    }
    # Checked here too, so a typo is reported with the option's field name before any request.
    try:
        AgentCreate.model_validate(fields)
    except ValidationError as exc:
        fail(describe_validation_error(exc), EXIT_INVALID)
    data = server_json(load_settings(), "POST", "/api/agents", json=fields)
    agent = parse_answer(AgentRead, data)
    if as_json:
        emit_json(data)
    else:
        typer.echo(agent.id)


@app.command("show")
def show_agent(agent_id: int, as_json: JsonOpt = False) -> None:
    """Show one agent."""
    data = server_json(load_settings(), "GET", f"/api/agents/{agent_id}")
    parse_answer(AgentRead, data)
    if as_json:
        emit_json(data)
    else:
        _print_fields(data)


@app.command("run")
def run_agent(
    agent_id: int,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the run has finished.")] = False,
    timeout: Annotated[float, typer.Option(help="With --wait, seconds to wait at most.")] = 300,
    progress: Annotated[
        bool,
        typer.Option(
            help="With --wait, show the run's steps on stderr as they happen (a spinner in a "
            "terminal, plain lines otherwise)."
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Start a task run on the running server; prints the run (and its outcome with --wait)."""
    settings = load_settings()
    if wait and progress:
        started = server_json(settings, "POST", f"/api/agents/{agent_id}/task")
        run = wait_with_progress(settings, parse_answer(RunRead, started), timeout)
        data = run.model_dump(mode="json")
    else:
        params: dict[str, str | float] = {"wait": "true", "timeout_s": timeout} if wait else {}
        data = server_json(
            settings, "POST", f"/api/agents/{agent_id}/task", params=params, timeout=timeout + 30
        )
        run = parse_answer(RunRead, data)
    if as_json:
        emit_json(data)
    else:
        line = f"run {run.id}: {run.status}"
        if run.thread_id is not None:
            line += f" (thread {run.thread_id})"
        if run.total_tokens:
            line += f", {run.total_tokens} tokens"
        if run.duration_ms is not None:
            line += f", {run.duration_ms} ms"
        typer.echo(line)
        if run.error:
            typer.echo(f"error: {run.error}", err=True)
    if run.status in ("failed", "cancelled", "timed_out"):
        raise typer.Exit(EXIT_RUN_FAILED)


@app.command("delete")
def delete_agent(agent_id: int) -> None:
    """Delete an agent with its threads, messages, runs and triggers."""
    call_server(load_settings(), "DELETE", f"/api/agents/{agent_id}")
    typer.echo(f"deleted agent {agent_id}", err=True)
