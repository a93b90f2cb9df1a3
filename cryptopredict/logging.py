"""One logging set-up for the command line and the server."""

from __future__ import annotations

import logging
import os
import warnings

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
    # MLflow narrates its store set-up and warns about choices we made on purpose (a pickled
    # python_model, a signature without an input example); real failures still surface. It
    # takes its level from MLFLOW_LOGGING_LEVEL when first imported, so that is set too.
    quiet = logging.getLogger().level > logging.DEBUG
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR" if quiet else "DEBUG")
    logging.getLogger("mlflow").setLevel(logging.ERROR if quiet else logging.DEBUG)
    # matplotlib explains at INFO how it reads the walk-forward plots' fold labels.
    logging.getLogger("matplotlib").setLevel(max(logging.WARNING, logging.getLogger().level))
    warnings.filterwarnings("ignore", message=".*An input example was not provided")
