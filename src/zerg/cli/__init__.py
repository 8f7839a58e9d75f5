"""The `zerg` command line: one module per command group."""

import typer

from zerg.cli import agents, db, login, runs, serve, tokens, transfer, users, worker

app = typer.Typer(
    name="zerg",
    help="Zerg: run LLM agents on your own machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.command("login")(login.login)
app.command("logout")(login.logout)
app.command("export")(transfer.export_agents)
app.command("import")(transfer.import_agents)
app.add_typer(db.app, name="db")
app.add_typer(agents.app, name="agents")
app.add_typer(runs.app, name="runs")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")


def main() -> None:
    app()
