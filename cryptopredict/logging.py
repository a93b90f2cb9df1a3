"""One logging set-up for the command line and the server."""

from __future__ import annotations

import logging

from rich.logging import RichHandler


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr through rich, so progress bars and log lines do not interleave badly."""
    logging.basicConfig(
        level=level.upper(),
        format="%(name)s: %(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
        force=True,
    )
    # Alembic narrates every schema check at INFO; commands report their own outcome.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
