"""`zerg db`: schema management."""

import typer

from zerg.cli.common import load_settings, migrate_or_fail

app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)


@app.command()
def upgrade() -> None:
    """Apply every pending migration to the configured database."""
    url = migrate_or_fail(load_settings())
    typer.echo(f"database at {url} is up to date", err=True)
