"""`cryptopredict db ...`: schema migrations of the database DATABASE_URL names."""

from __future__ import annotations

import typer
from rich.console import Console

from config.settings import get_settings
from db import migrate

app = typer.Typer(help="Create, upgrade and downgrade the database schema.", no_args_is_help=True)
console = Console()


@app.command()
def upgrade(
    revision: str = typer.Argument("head", help="Target revision; 'head' is the newest."),
) -> None:
    """Migrate the schema up to REVISION (builds tables, views, functions and seed rows)."""
    url = get_settings().resolved_database_url
    migrate.upgrade(url, revision)
    console.print(f"database at revision {migrate.current_revision(url)}")


@app.command()
def downgrade(
    revision: str = typer.Argument(..., help="Target revision; 'base' removes everything."),
) -> None:
    """Migrate the schema down to REVISION."""
    url = get_settings().resolved_database_url
    migrate.downgrade(url, revision)
    console.print(f"database at revision {migrate.current_revision(url) or 'base'}")


@app.command()
def current() -> None:
    """Print the revision the database is at ('base' when never migrated)."""
    console.print(migrate.current_revision(get_settings().resolved_database_url) or "base")
