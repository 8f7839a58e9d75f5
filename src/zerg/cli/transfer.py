"""`zerg export` and `zerg import`: agents and their webhook triggers' settings as YAML, to keep
a setup in git and move it between Zergs. Both go through the running server's API, so they work
against a remote one; secrets never go into the file."""

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import yaml
from pydantic import BaseModel, ValidationError

from zerg.cli.common import (
    EXIT_INVALID,
    all_pages,
    describe_validation_error,
    emit_json,
    fail,
    load_settings,
    server_json,
)
from zerg.schemas.agents import AgentCreate
from zerg.schemas.transfer import FORMAT_VERSION, AgentEntry, TransferFile, agent_fields
from zerg.schemas.triggers import TriggerCreate
from zerg.settings import Settings

HEADER = """\
# Zerg agents and their webhook triggers' settings, from `zerg export`.
# `zerg import FILE` creates the agents the importing user does not have (matched by name) and
# updates the others. Secrets are not in this file: new triggers get new ones.
"""
Action = Literal["created", "updated", "unchanged"]
_WORDS: dict[Action, tuple[str, str]] = {
    "created": ("created", "would create"),
    "updated": ("updated", "would update"),
    "unchanged": ("unchanged", "unchanged"),
}


class _Dumper(yaml.SafeDumper):
    """Multi-line text (instructions) as `|` blocks, which read and diff well in git."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def _own_agents(settings: Settings) -> list[dict[str, Any]]:
    """The agents the user owns (an admin sees everyone's, but imports into their own)."""
    me = server_json(settings, "GET", "/api/me")
    user_id = me.get("user_id") if isinstance(me, dict) else None
    return all_pages(settings, "/api/agents", {"owner_id": user_id} if user_id else {})


def _same_names(agents: list[dict[str, Any]]) -> dict[str, list[int]]:
    counts = Counter(str(a["name"]) for a in agents)
    return {
        name: [a["id"] for a in agents if a["name"] == name]
        for name, count in counts.items()
        if count > 1
    }


def _entry(settings: Settings, agent: dict[str, Any]) -> dict[str, Any]:
    entry = {name: agent[name] for name in agent_fields() if name in agent}
    triggers = all_pages(settings, f"/api/agents/{agent['id']}/triggers")
    entry["triggers"] = [
        {name: t[name] for name in TriggerCreate.model_fields if name in t} for t in triggers
    ]
    return entry


@dataclass
class _Plan:
    entry: AgentEntry
    current: dict[str, Any] | None
    changed: list[str] = field(default_factory=list)
    new_triggers: list[TriggerCreate] = field(default_factory=list)
    unlisted_triggers: list[int] = field(default_factory=list)

    @property
    def action(self) -> Action:
        if self.current is None:
            return "created"
        return "updated" if self.changed or self.new_triggers else "unchanged"


class TriggerOutcome(BaseModel):
    scheme: str
    id: int | None = None
    url: str | None = None
    secret: str | None = None


class AgentOutcome(BaseModel):
    name: str
    id: int | None
    action: Action
    changed: list[str]
    new_triggers: list[TriggerOutcome]
    unlisted_triggers: list[int]


class ImportReport(BaseModel):
    dry_run: bool
    agents: list[AgentOutcome]


OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the file here instead of stdout."),
]


def export_agents(
    agent: Annotated[
        list[int] | None,
        typer.Option(help="Export this agent only; repeatable. Default: every agent you own."),
    ] = None,
    output: OutputOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Write JSON (which `zerg import` reads too).")
    ] = False,
) -> None:
    """Write agents and their webhook triggers' settings as YAML, for `zerg import`.

    Every field you set on an agent is written; no secret is (neither webhook secrets nor the
    notification secret)."""
    settings = load_settings()
    if agent:
        agents = [server_json(settings, "GET", f"/api/agents/{agent_id}") for agent_id in agent]
    else:
        agents = _own_agents(settings)
    for name, ids in _same_names(agents).items():
        fail(
            f"agents {', '.join(map(str, ids))} are all named {name!r}: `zerg import` matches "
            "agents by name, so rename all but one first",
            EXIT_INVALID,
        )
    document = {"version": FORMAT_VERSION, "agents": [_entry(settings, a) for a in agents]}
    if as_json:
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    else:
        body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
        text = HEADER + body
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or type(exc).__name__}")
    where = f" to {output}" if output is not None else ""
    typer.echo(f"exported {len(agents)} agent(s){where}", err=True)


def _read(path: Path) -> tuple[str, str]:
    if str(path) == "-":
        return "stdin", sys.stdin.read()
    try:
        return str(path), path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        fail(f"cannot read {path}: {reason}")


def load_entries(path: Path) -> list[AgentEntry]:
    """The file's agents, each checked by the API's own schemas; one error line naming every
    agent and field that is wrong."""
    name, text = _read(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        fail(f"{name} is not valid YAML: {' '.join(str(exc).split())}", EXIT_INVALID)
    if not isinstance(data, dict):
        fail(
            f"{name} is not a file of `zerg export`: it needs `version: {FORMAT_VERSION}` and "
            "`agents:`",
            EXIT_INVALID,
        )
    try:
        envelope = TransferFile.model_validate(data)
    except ValidationError as exc:
        fail(f"{name}: {describe_validation_error(exc)}", EXIT_INVALID)
    entries, errors = [], []
    for index, raw in enumerate(envelope.agents):
        label = f"agents[{index}]"
        if isinstance(raw.get("name"), str):
            label += f" ({raw['name'].strip()!r})"
        try:
            entries.append(AgentEntry.model_validate(raw))
        except ValidationError as exc:
            errors.append(f"{label}: {describe_validation_error(exc)}")
    counts = Counter(entry.name for entry in entries)
    errors += [f"{n} agents are named {name!r}" for name, n in counts.items() if n > 1]
    if errors:
        fail(f"{name}: " + "; ".join(errors), EXIT_INVALID)
    return entries


def _comparable(agent: dict[str, Any]) -> dict[str, Any]:
    """An agent as the server has it, in the shape a validated entry dumps to."""
    fields = {name: agent[name] for name in agent_fields() if name in agent}
    try:
        return AgentCreate.model_validate(fields).model_dump(mode="json")
    except ValidationError:  # stored before a rule existed: compared as it is
        return fields


def _plan(settings: Settings, entry: AgentEntry, current: dict[str, Any] | None) -> _Plan:
    plan = _Plan(entry, current)
    if current is None:
        plan.new_triggers = list(entry.triggers)
        return plan
    wanted = entry.model_dump(mode="json", exclude={"triggers"})
    have = _comparable(current)
    # A field the server does not return (a write-only one) cannot be compared: left alone.
    plan.changed = [name for name, value in wanted.items() if name in have and have[name] != value]
    remaining = all_pages(settings, f"/api/agents/{current['id']}/triggers")
    for trigger in entry.triggers:
        settings_of = trigger.model_dump(mode="json")
        match = next((t for t in remaining if settings_of.items() <= t.items()), None)
        if match is None:
            plan.new_triggers.append(trigger)
        else:
            remaining.remove(match)
    plan.unlisted_triggers = [t["id"] for t in remaining]
    return plan


def _apply(settings: Settings, plan: _Plan, dry_run: bool) -> AgentOutcome:
    name = plan.entry.name
    about = f"agent {name!r}"
    wanted = plan.entry.model_dump(mode="json", exclude={"triggers"})
    agent_id = plan.current["id"] if plan.current is not None else None
    triggers = [TriggerOutcome(scheme=t.scheme) for t in plan.new_triggers]
    if not dry_run:
        if agent_id is None:
            agent_id = server_json(settings, "POST", "/api/agents", json=wanted, about=about)["id"]
        elif plan.changed:
            changes = {field: wanted[field] for field in plan.changed}
            server_json(settings, "PATCH", f"/api/agents/{agent_id}", json=changes, about=about)
        triggers = [
            TriggerOutcome.model_validate(
                server_json(
                    settings,
                    "POST",
                    f"/api/agents/{agent_id}/triggers",
                    json=trigger.model_dump(mode="json"),
                    about=about,
                )
            )
            for trigger in plan.new_triggers
        ]
    return AgentOutcome(
        name=name,
        id=agent_id,
        action=plan.action,
        changed=plan.changed,
        new_triggers=triggers,
        unlisted_triggers=plan.unlisted_triggers,
    )


def _say(outcome: AgentOutcome, dry_run: bool) -> None:
    line = f"{_WORDS[outcome.action][dry_run]} agent {outcome.name!r}"
    if outcome.id is not None:
        line += f" (id {outcome.id})"
    details = []
    if outcome.changed:
        details.append(", ".join(outcome.changed))
    if outcome.new_triggers and outcome.action == "updated":
        details.append(
            "new webhook trigger(s): " + ", ".join(t.scheme for t in outcome.new_triggers)
        )
    typer.echo(f"{line}: {'; '.join(details)}" if details else line)
    for trigger in outcome.new_triggers:
        if trigger.secret is not None:
            typer.echo(
                f"  webhook trigger {trigger.id} ({trigger.scheme}): {trigger.url} "
                f"secret {trigger.secret}"
            )


def _notes(report: ImportReport, entries: dict[str, AgentEntry]) -> None:
    if any(t.secret for a in report.agents for t in a.new_triggers):
        typer.echo(
            "the new webhook triggers' secrets are shown only now: give each sender its url and "
            "secret (POST /api/triggers/{id}/rotate issues a new one)",
            err=True,
        )
    for agent in report.agents:
        if agent.action == "created" and entries[agent.name].notify_url and not report.dry_run:
            typer.echo(
                f"agent {agent.name!r} signs its run notifications with a new secret: "
                f"GET /api/agents/{agent.id}/notify-secret",
                err=True,
            )
        if agent.unlisted_triggers:
            ids = ", ".join(map(str, agent.unlisted_triggers))
            typer.echo(
                f"agent {agent.name!r} has webhook trigger(s) {ids} that the file does not list: "
                "kept (DELETE /api/triggers/{id} removes one)",
                err=True,
            )
    counts = Counter(agent.action for agent in report.agents)
    summary = ", ".join(f"{counts[a]} {_WORDS[a][report.dry_run]}" for a in _WORDS if counts[a])
    suffix = " (dry run: nothing was changed)" if report.dry_run else ""
    typer.echo(f"{len(report.agents)} agent(s): {summary or 'none'}{suffix}", err=True)


def import_agents(
    path: Annotated[
        Path, typer.Argument(help="A file of `zerg export` (YAML or JSON); - reads stdin.")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change, and change nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Create or update your agents and their webhook triggers from a file of `zerg export`.

    Agents are matched by name among the agents you own: a missing one is created, one that
    differs is updated, and importing the same file again changes nothing ("unchanged").
    Triggers the file lists and the agent lacks are created, and their new secrets printed
    once; triggers the file does not list are kept."""
    settings = load_settings()
    entries = load_entries(path)
    mine: dict[str, list[dict[str, Any]]] = {}
    for agent in _own_agents(settings):
        mine.setdefault(str(agent["name"]), []).append(agent)
    for entry in entries:
        same = mine.get(entry.name, [])
        if len(same) > 1:
            ids = ", ".join(str(a["id"]) for a in same)
            fail(
                f"agent {entry.name!r}: you have {len(same)} agents of this name (ids {ids}), "
                "and import matches agents by name: rename or delete all but one",
                EXIT_INVALID,
            )
    plans = [_plan(settings, e, next(iter(mine.get(e.name, [])), None)) for e in entries]
    outcomes = []
    for plan in plans:
        outcomes.append(_apply(settings, plan, dry_run))
        if not as_json:
            _say(outcomes[-1], dry_run)
    report = ImportReport(dry_run=dry_run, agents=outcomes)
    if as_json:
        emit_json(report)
    _notes(report, {entry.name: entry for entry in entries})
