"""Fixtures shared by the whole suite: throwaway databases, migrated once and cloned per test.

PostgreSQL tests run against the server at TEST_POSTGRES_URL (default: the local one on
127.0.0.1:5432). Each test gets a database of its own, cloned from a migrated template, and
dropped afterwards; nothing depends on what an earlier run left behind.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from config.settings import get_settings
from db import migrate
from db.engine import make_engine
from pg_databases import admin_engine, database_url_of, drop_database, throwaway_database

# The real candles live beside the repository, not in it (their licences forbid copying).
SHARED_DATA_CANDIDATES = [
    Path(path)
    for path in (
        os.environ.get("CRYPTOPREDICT_SHARED_DATA", ""),
        str(Path(__file__).resolve().parents[2] / "shared" / "data"),
        "/work/shared/data",
    )
    if path
]
DIALECTS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Run in this one process, not on xdist's workers (`-n 2` in pyproject's addopts), when
    asked to show what tests print (`-s`) or to stop in a debugger (`--pdb`, `--trace`):
    neither reaches the terminal from a worker."""
    option = config.option
    interactive = option.capture == "no" or option.usepdb or option.trace
    if interactive and getattr(option, "numprocesses", None):
        option.numprocesses = 0


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared real candles; their absence fails the tests that need them, loudly."""
    for candidate in SHARED_DATA_CANDIDATES:
        if (candidate / "binance-2021-1h").is_dir():
            return candidate
    searched = ", ".join(str(candidate) for candidate in SHARED_DATA_CANDIDATES)
    pytest.fail(f"real candles not found (looked in {searched}); set CRYPTOPREDICT_SHARED_DATA")


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated PostgreSQL database to clone; created once per test session."""
    name = f"cryptopredict_template_{uuid.uuid4().hex[:8]}"
    admin = admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        migrate.upgrade(database_url_of(name))
        yield name
    finally:
        drop_database(admin, name)
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    with throwaway_database("cryptopredict_test", postgres_template) as url:
        yield url


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A PostgreSQL database with no schema at all, for migration tests."""
    with throwaway_database("cryptopredict_empty") as url:
        yield url


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "cryptopredict.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=DIALECTS)
def database_url(request: pytest.FixtureRequest) -> str:
    """A freshly migrated database of each dialect in turn."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return request.getfixturevalue(fixture)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def configured_database(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Point the settings (and so the command line) at the per-test database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()
