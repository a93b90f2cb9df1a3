"""The `cryptopredict` command line against a per-test database.

Most tests run the command in this interpreter (`cli_runner`: what a process prints and the
status it exits with, without seconds of start-up per command); the entry point
`python -m cryptopredict` and the exit statuses that matter outside a process (the refusal to
touch an unmigrated database, the cron job) run as real processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cli_runner import run_cli
from sqlalchemy import func, select, text

from db import migrate
from db.engine import make_engine
from db.schema import PriceData


def run(*args: str, database_url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`cryptopredict *args` in this interpreter (see cli_runner)."""
    return run_cli(args, {"DATABASE_URL": database_url, "DATA_DIR": str(data_dir)})


def run_process(*args: str, database_url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`python -m cryptopredict *args` as a real process."""
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "cryptopredict", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def count(database_url: str, sql: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar_one()
    finally:
        engine.dispose()


SYNTH = ("synth", "--coins", "3")
START = datetime(2024, 3, 3, 18, tzinfo=UTC)  # of two days ending 2024-03-05 17:00


def at(database_url: str, data_dir: Path) -> dict[str, Any]:
    return {"database_url": database_url, "data_dir": data_dir}


def candle_span(database_url: str) -> tuple[datetime, datetime]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            query = select(func.min(PriceData.timestamp), func.max(PriceData.timestamp))
            first, last = connection.execute(query).one()
            return first, last
    finally:
        engine.dispose()


def closes(database_url: str) -> list[tuple[object, ...]]:
    """Every candle's (timestamp, coin, close), in time order."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            columns = (PriceData.timestamp, PriceData.crypto_id, PriceData.close_price)
            return [tuple(row) for row in connection.execute(select(*columns).order_by(*columns))]
    finally:
        engine.dispose()


def test_help_lists_every_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    result = run_process("--help", database_url=url, data_dir=tmp_path)

    assert result.returncode == 0
    for command in ("db", "ingest", "synth", "summary"):
        assert command in result.stdout


def test_db_upgrade_current_downgrade_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"

    assert run("db", "current", database_url=url, data_dir=tmp_path).stdout.strip() == "base"
    upgraded = run("db", "upgrade", database_url=url, data_dir=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    current = run("db", "current", database_url=url, data_dir=tmp_path).stdout.strip()
    assert current == migrate.head_revision()
    downgraded = run("db", "downgrade", "base", database_url=url, data_dir=tmp_path)
    assert downgraded.returncode == 0, downgraded.stderr
    assert run("db", "current", database_url=url, data_dir=tmp_path).stdout.strip() == "base"


def test_synth_is_repeatable_and_summary_reports_it(database_url: str, tmp_path: Path) -> None:
    market = ("synth", "--coins", "3", "--days", "2", "--end", "2024-03-05T17:00:00")
    first = run(*market, database_url=database_url, data_dir=tmp_path)
    second = run(*market, database_url=database_url, data_dir=tmp_path)
    summary = run("summary", database_url=database_url, data_dir=tmp_path)

    assert first.returncode == 0, first.stderr
    assert "ending 2024-03-05 17:00 UTC, 144 candles inserted" in first.stdout
    assert "0 candles inserted (144 already present)" in second.stdout
    assert "3 coins, 144 hourly candles" in summary.stdout
    assert count(database_url, "SELECT count(*) FROM price_data") == 144
    assert candle_span(database_url) == (START, datetime(2024, 3, 5, 17, tzinfo=UTC))


def test_synth_to_a_later_end_continues_the_same_market(sqlite_url: str, tmp_path: Path) -> None:
    before = run(*SYNTH, "--days", "2", "--end", "2024-03-05T17:00", **at(sqlite_url, tmp_path))
    stored = closes(sqlite_url)
    later = run(*SYNTH, "--days", "3", "--end", "2024-03-06T17:00", **at(sqlite_url, tmp_path))

    assert before.returncode == 0, before.stderr
    assert "72 candles inserted (144 already present)" in later.stdout
    assert candle_span(sqlite_url) == (START, datetime(2024, 3, 6, 17, tzinfo=UTC))
    # The hours already there are the same candles, not rewritten ones.
    assert closes(sqlite_url)[: len(stored)] == stored


def test_synth_end_defaults_to_the_current_hour(sqlite_url: str, tmp_path: Path) -> None:
    before = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    result = run(*SYNTH, "--days", "1", **at(sqlite_url, tmp_path))
    after = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

    assert result.returncode == 0, result.stderr
    assert candle_span(sqlite_url)[1] in {before, after}


def test_synth_refuses_an_end_off_the_hour(sqlite_url: str, tmp_path: Path) -> None:
    result = run(*SYNTH, "--end", "2024-03-05T17:30:00", **at(sqlite_url, tmp_path))

    assert result.returncode == 1
    assert result.stderr.startswith("error: end must fall on a whole hour")


def test_synth_writes_csv_files_that_ingest_reads_back(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "market"
    written = run(
        "synth",
        "--coins",
        "2",
        "--days",
        "1",
        "--out",
        str(out),
        database_url=database_url,
        data_dir=tmp_path,
    )
    loaded = run(
        "ingest",
        str(out),
        "--coins",
        str(out / "coins.csv"),
        database_url=database_url,
        data_dir=tmp_path,
    )

    assert written.returncode == 0, written.stderr
    assert loaded.returncode == 0, loaded.stderr
    assert "2 files: 48 candles inserted" in loaded.stdout
    assert count(database_url, "SELECT count(*) FROM crypto_sector_mapping") == 2


def test_bad_file_is_one_clear_error_and_writes_nothing(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "BTC-USD_1h.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,100,101,99,100.5,1\n"
        "not a time,100,101,99,100.5,1\n"
    )

    result = run("ingest", str(path), database_url=database_url, data_dir=tmp_path)

    assert result.returncode == 1
    assert result.stderr.startswith("error: 1 of 1 files rejected, nothing written")
    assert "line 3" in result.stderr
    assert "Traceback" not in result.stderr
    assert count(database_url, "SELECT count(*) FROM price_data") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ingest", "/no/such/place"), "no such file or directory"),
        (("synth", "--coins", "1"), "Invalid value"),
        (("train", "--fee", "0.5"), "Invalid value for '--fee'"),
    ],
)
def test_bad_arguments_fail_with_a_message(
    database_url: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = run(*args, database_url=database_url, data_dir=tmp_path)

    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_commands_refuse_an_unmigrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = run_process("summary", database_url=url, data_dir=tmp_path)

    assert result.returncode == 1
    assert "run `cryptopredict db upgrade` first" in result.stderr


def test_models_list_on_an_empty_registry_says_what_to_do(
    database_url: str, tmp_path: Path
) -> None:
    result = run("models", "list", database_url=database_url, data_dir=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "run `cryptopredict train`" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("train", "--layer", "weather"), "unknown layer 'weather'"),
        (("train",), "price_data holds no candles"),
        (("models", "promote", "asset_price", "7"), "no version 7 of model 'asset_price'"),
        (("models", "rollback", "asset_price"), "has no active version"),
    ],
)
def test_training_commands_fail_with_one_clear_line(
    database_url: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = run(*args, database_url=database_url, data_dir=tmp_path)

    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_is_cron_ready(database_url: str, tmp_path: Path) -> None:
    as_of = ("--as-of", "2024-01-01T00:00:00")
    first = run_process("evaluate", *as_of, database_url=database_url, data_dir=tmp_path)
    dry = run_process("evaluate", "--dry-run", database_url=database_url, data_dir=tmp_path)

    assert first.returncode == 0, first.stderr
    assert "evaluated 0 predictions" in first.stdout
    assert dry.returncode == 0 and "would evaluate 0 predictions" in dry.stdout
    assert count(database_url, "SELECT count(*) FROM system_health") == 1
