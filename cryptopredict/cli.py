"""The `cryptopredict` command line: one Typer app, a sub-app or command per job."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from config.settings import get_settings
from cryptopredict.commands import data, database, demo, models, serve, users
from cryptopredict.logging import configure_logging

app = typer.Typer(
    name="cryptopredict",
    help="Train, serve and evaluate the four-layer crypto prediction models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("demo")(demo.demo)
app.add_typer(database.app, name="db")
app.command("ingest")(data.ingest)
app.command("synth")(data.synth)
app.command("summary")(data.summary)
app.command("train")(models.train)
app.command("analyze")(models.analyze)
app.command("evaluate")(models.evaluate)
app.add_typer(models.app, name="models")
app.command("serve")(serve.serve)
app.add_typer(users.app, name="users")

error_console = Console(stderr=True)


@app.callback()
def _configure(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    configure_logging("DEBUG" if verbose else get_settings().log_level)


def main() -> None:
    """Run the app; expected failures become one clear line on stderr and exit status 1."""
    try:
        app()
    except (ValueError, FileNotFoundError, PermissionError) as error:
        _fail(str(error))
    except SQLAlchemyError as error:
        _fail(f"database error: {error.__class__.__name__}: {_first_line(error)}")


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)


def _fail(message: str) -> None:
    error_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(1)
