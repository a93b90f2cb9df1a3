"""`cryptopredict ARGS` run inside the test's interpreter, the way a process would run it.

Starting `python -m cryptopredict` costs seconds of imports (pandas, scikit-learn, MLflow) before
the command does anything; most command-line tests only check what a command prints and the
status it exits with, which `cryptopredict.cli.main` (what `python -m cryptopredict` calls)
decides the same way here. Each run gets

- the test's environment plus the variables it is given, and nothing it set survives the run;
- stdin empty, stdout and stderr of its own (Typer's CliRunner isolation: not terminals, so no
  colours and the width a pipe gets);
- fresh settings, Python's default warning filters (a warning is printed on stderr, as a
  process would print it) and its own logging set-up, undone afterwards together with MLflow's
  tracking and registry URIs;
- an exception escaping `main` printed as the interpreter prints it, with status 1;
  `SystemExit` becomes the status as the interpreter turns it into one.

The tests where the process itself is the subject (the `python -m cryptopredict` entry point, a
server and the signal that stops it, the exit status a scheduler reads) still start a real one.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TextIO

import mlflow
import rich
from mlflow.tracking._model_registry import utils as registry_utils
from mlflow.tracking._tracking_service import utils as tracking_utils
from rich.console import Console
from typer.testing import CliRunner

from config.settings import get_settings
from cryptopredict import cli

PROGRAM = "cryptopredict"
# A fresh interpreter's warning filters (`python -W` unset, not a development build).
DEFAULT_WARNING_FILTERS = [
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
]
# The loggers whose level `cryptopredict.logging.configure_logging` sets, besides the root.
CONFIGURED_LOGGERS = ("alembic", "mlflow", "matplotlib")


def run_cli(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `cryptopredict *args` with `env` added to the environment; what a process gives."""
    argv = [PROGRAM, *args]
    with (
        _restored_interpreter(),
        CliRunner().isolation(env=dict(env)) as (stdout, stderr, _),
        _warnings_on(sys.stderr),
        _plain(_module_consoles()),
    ):
        sys.argv = argv
        get_settings.cache_clear()
        returncode = _exit_status(cli.main)
        sys.stdout.flush()
        sys.stderr.flush()
        out = stdout.getvalue().decode()
        err = stderr.getvalue().decode()
    return subprocess.CompletedProcess(argv, returncode, out, err)


def _exit_status(main: Callable[[], None]) -> int:
    """Call `main` and return the status the interpreter would exit with."""
    try:
        main()
    except SystemExit as exit_:
        if exit_.code is None:
            return 0
        if isinstance(exit_.code, int):
            return exit_.code
        print(exit_.code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return 1
    return 0


@contextmanager
def _restored_interpreter() -> Iterator[None]:
    """Undo what a command changes in the interpreter: the environment, sys.argv, the cached
    settings, logging (root handlers, every logger's level) and MLflow's store URIs."""
    environment = dict(os.environ)
    argv = sys.argv[:]
    root = logging.getLogger()
    handlers = root.handlers[:]
    loggers = [root, *(logging.getLogger(name) for name in CONFIGURED_LOGGERS), *_loggers()]
    levels = [(logger, logger.level, logger.disabled) for logger in loggers]
    disabled_below = logging.root.manager.disable
    tracking_uri = tracking_utils._tracking_uri
    registry_uri = registry_utils._registry_uri
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        root.handlers[:] = handlers
        for logger, level, disabled in levels:
            logger.setLevel(level)
            logger.disabled = disabled
        logging.disable(disabled_below)
        if tracking_utils._tracking_uri != tracking_uri:
            mlflow.set_tracking_uri(tracking_uri)  # type: ignore[arg-type]  # None unsets it
        mlflow.set_registry_uri(registry_uri)  # type: ignore[arg-type]
        os.environ.clear()
        os.environ.update(environment)
        sys.argv = argv
        get_settings.cache_clear()


def _loggers() -> list[logging.Logger]:
    manager = logging.root.manager
    return [
        logger for logger in list(manager.loggerDict.values()) if isinstance(logger, logging.Logger)
    ]


@contextmanager
def _warnings_on(stream: TextIO) -> Iterator[None]:
    """Python's default warning filters, each warning shown on `stream` when it is raised."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        stream.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category, module in reversed(DEFAULT_WARNING_FILTERS):
            warnings.filterwarnings(action, category=category, module=module)  # type: ignore[arg-type]
        warnings.showwarning = show
        yield


def _module_consoles() -> list[Console]:
    """The rich consoles that cryptopredict's modules made at import time."""
    consoles = [
        value
        for name, module in list(sys.modules.items())
        if name == PROGRAM or name.startswith(f"{PROGRAM}.")
        for value in list(vars(module).values())
        if isinstance(value, Console)
    ]
    return [*consoles, rich.get_console()]


@contextmanager
def _plain(consoles: list[Console]) -> Iterator[None]:
    """Consoles made at import time chose colours for the stream of that moment (a terminal,
    under `pytest -s`); a process writing to pipes makes them without, and so do these here."""
    saved = [(console, console._color_system) for console in consoles]
    try:
        for console in consoles:
            console._color_system = None
        yield
    finally:
        for console, color_system in saved:
            console._color_system = color_system
