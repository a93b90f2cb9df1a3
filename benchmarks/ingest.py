"""Ingest benchmark: our CSV ingest path against raw COPY into PostgreSQL.

Every figure is wall-clock rows per second for the same candles (best of ``--repeat`` runs):

* ours: ``training.ingest.ingest`` end to end on a directory of CSV files (one per coin, plus
  coins.csv): discover, read, validate, then one transaction with, per coin, a COPY into a
  staging table and one INSERT into ``price_data`` (a plain append where the coin has no
  candle in the file's span, else INSERT ... ON CONFLICT); into a freshly migrated
  database whose tables are empty.
* ours, re-ingest: the same call again over the same files; every row is already stored.
* (a) raw ``COPY ... FROM STDIN (FORMAT csv)`` of the same rows, as one CSV text built in memory
  (crypto_id, timestamp, open, high, low, close, volume, market_cap), into a bare table with the
  same column types and no index or constraint; timed from the start of COPY to commit.
* (b) the same COPY into ``price_data`` as the spec's SQL text defines it (SERIAL primary key,
  UNIQUE (crypto_id, timestamp), its three indexes, the foreign key to a ``cryptocurrencies``
  table holding the coins), created in a schema of its own.

A separate, instrumented run of ``read_all`` and ``write_candles`` splits our path into read +
validate and the database write, and the write into the row encoding, the staging COPY, the
INSERT into price_data, the other statements and the rest (commit, Python).

Generating the market, writing the files and building the COPY text are set-up, not timed.
Before each timed measurement the tables are fresh (empty), then VACUUM ANALYZE and CHECKPOINT
run, so no autovacuum or checkpoint work left over from the previous measurement competes.
The server is the one ``BENCH_POSTGRES_URL`` names (default: the local one, user postgres); a
throwaway database with a unique name is created there, migrated, and dropped at the end.

Run (progress on stderr, the results table on stdout):

    make bench-ingest
    .venv/bin/python benchmarks/ingest.py --rows 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any
from unittest.mock import patch

import pandas as pd
import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from db.engine import make_engine
from db.migrate import upgrade
from store.candles import VALUE_COLUMNS
from training import pg_copy, price_store
from training.candles import discover_candle_files, read_coins_file
from training.ingest import IngestReport, ingest, read_all, write_candles
from training.synthetic import MAX_COINS, TIMESTAMP_FORMAT, generate_market, write_csv

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_ROWS = 1_000_000
SEED = 2024
HOURS_PER_DAY = 24
# The coin count is searched down to this fraction of the most coins the generator makes.
MIN_COIN_FRACTION = 0.9
COPY_BLOCK_BYTES = 1 << 20
BARE_SCHEMA = "bench_bare"
SPEC_SCHEMA = "bench_spec"
COPY_COLUMNS = ("crypto_id", "timestamp", *price_store.PRICE_DATA_COLUMNS)
FRAME_COLUMNS = ("crypto_id", "timestamp", *VALUE_COLUMNS)
OUR_TABLES = "price_data, crypto_sector_mapping, cryptocurrencies"

# (a): the spec's price_data columns and types, without id, defaults, index or constraint.
BARE_DDL = """
CREATE TABLE price_data (
    crypto_id INTEGER,
    timestamp TIMESTAMP WITH TIME ZONE,
    open_price NUMERIC(20, 8),
    high_price NUMERIC(20, 8),
    low_price NUMERIC(20, 8),
    close_price NUMERIC(20, 8),
    volume NUMERIC(30, 8),
    market_cap NUMERIC(30, 2)
);
"""

# (b): the spec's SQL text (shared/spec/database-erd-design.md, tables 2 and 3 with the
# price_data indexes), verbatim but for trailing blanks.
SPEC_DDL = """
CREATE TABLE IF NOT EXISTS cryptocurrencies (
    id SERIAL PRIMARY KEY,
    symbol VARCHAR(10) NOT NULL UNIQUE,
    name VARCHAR(100) NOT NULL,
    coingecko_id VARCHAR(50) UNIQUE,
    market_cap_rank INTEGER,
    current_price NUMERIC(20, 8),
    market_cap NUMERIC(30, 2),
    total_volume NUMERIC(30, 2),
    circulating_supply NUMERIC(30, 2),
    total_supply NUMERIC(30, 2),
    max_supply NUMERIC(30, 2),
    price_change_percentage_24h NUMERIC(10, 4),
    price_change_percentage_7d NUMERIC(10, 4),
    price_change_percentage_30d NUMERIC(10, 4),
    description TEXT,
    website_url VARCHAR(255),
    blockchain_site VARCHAR(255),
    whitepaper_url VARCHAR(255),
    twitter_username VARCHAR(100),
    telegram_channel VARCHAR(100),
    subreddit_url VARCHAR(255),
    github_repos JSONB, -- Array of GitHub repository URLs
    sectors JSONB, -- Array of sectors (DeFi, Gaming, etc.)
    contract_address VARCHAR(100), -- Smart contract address
    decimals INTEGER, -- Token decimals
    is_active BOOLEAN NOT NULL DEFAULT true,
    is_supported BOOLEAN NOT NULL DEFAULT true,
    tier INTEGER DEFAULT 2, -- 1 for priority analysis, 2 for standard
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    last_data_update TIMESTAMP WITH TIME ZONE
);

CREATE TABLE IF NOT EXISTS price_data (
    id SERIAL PRIMARY KEY,
    crypto_id INTEGER NOT NULL REFERENCES cryptocurrencies(id) ON DELETE CASCADE,
    timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
    open_price NUMERIC(20, 8) NOT NULL,
    high_price NUMERIC(20, 8) NOT NULL,
    low_price NUMERIC(20, 8) NOT NULL,
    close_price NUMERIC(20, 8) NOT NULL,
    volume NUMERIC(30, 8),
    market_cap NUMERIC(30, 2),
    technical_indicators JSONB DEFAULT '{}', -- technical indicators
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    -- Constraints for data integrity
    CONSTRAINT unique_crypto_timestamp UNIQUE(crypto_id, timestamp)
);

-- Indexes for price_data table
CREATE INDEX idx_price_data_crypto_id ON price_data(crypto_id);
CREATE INDEX idx_price_data_timestamp ON price_data(timestamp DESC);
CREATE INDEX idx_price_data_crypto_timestamp ON price_data(crypto_id, timestamp DESC);
"""


class Progress:
    """One line per phase on stderr, stamped with the seconds since the start."""

    def __init__(self) -> None:
        self.start = perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{perf_counter() - self.start:7.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Dataset:
    """The candles as CSV files on disk and as one CSV text for COPY."""

    directory: Path
    coins_file: Path
    coins: pd.DataFrame  # symbol, name, sector; crypto_id is the 1-based position
    n_coins: int
    days: int
    rows: int
    files_bytes: int
    copy_text: bytes


@dataclass(frozen=True)
class Breakdown:
    """Seconds spent in each part of our path, from the instrumented run."""

    read_validate: float
    write: float
    encoding: float
    staging_copy: float  # the COPY statements, encoding excluded
    upsert: float
    other_sql: float

    @property
    def total(self) -> float:
        return self.read_validate + self.write

    @property
    def rest(self) -> float:
        return self.write - self.encoding - self.staging_copy - self.upsert - self.other_sql


@dataclass(frozen=True)
class RunFacts:
    """What the report says about the run besides the figures."""

    server: str
    where: str
    repeat: int
    wall: float
    load_start: float  # one-minute load average
    load_end: float


@dataclass
class Results:
    """Best seconds per measurement over the repeats."""

    ours: float = float("inf")
    reingest: float = float("inf")
    bare_copy: float = float("inf")
    spec_copy: float = float("inf")
    breakdown: Breakdown | None = None

    def keep_best_breakdown(self, candidate: Breakdown) -> None:
        if self.breakdown is None or candidate.total < self.breakdown.total:
            self.breakdown = candidate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, default=DEFAULT_ROWS, help="candles to load (default 1,000,000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per measurement; the best is kept"
    )
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the synthetic market")
    args = parser.parse_args(argv)
    if args.rows < 2 * HOURS_PER_DAY:
        parser.error(f"--rows must be at least {2 * HOURS_PER_DAY}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def market_shape(rows: int) -> tuple[int, int]:
    """Coins and days whose hourly candle count is closest to ``rows``, preferring more coins."""
    most = min(MAX_COINS, max(2, rows // HOURS_PER_DAY))
    fewest = max(2, int(most * MIN_COIN_FRACTION))
    candidates = []
    for coins in range(most, fewest - 1, -1):
        days = max(1, round(rows / (coins * HOURS_PER_DAY)))
        candidates.append((abs(coins * days * HOURS_PER_DAY - rows), -coins, days))
    _, negative_coins, days = min(candidates)
    return -negative_coins, days


def build_dataset(rows: int, seed: int, directory: Path, progress: Progress) -> Dataset:
    n_coins, days = market_shape(rows)
    progress(f"generating {n_coins} coins x {days} days of hourly candles")
    market = generate_market(n_coins, days, seed)
    progress(f"writing {len(market.candles):,} candles as CSV files to {directory}")
    written = write_csv(market, directory)
    progress("building the CSV text for the COPY baselines")
    crypto_ids = {symbol: i + 1 for i, symbol in enumerate(market.coins["symbol"])}
    return Dataset(
        directory=directory,
        coins_file=directory / "coins.csv",
        coins=market.coins,
        n_coins=n_coins,
        days=days,
        rows=len(market.candles),
        files_bytes=sum(path.stat().st_size for path in written),
        copy_text=copy_text(market.candles, crypto_ids),
    )


def copy_text(candles: pd.DataFrame, crypto_ids: dict[str, int]) -> bytes:
    """The candles as COPY csv rows, formatted the way the CSV files are."""
    frame = candles.assign(crypto_id=candles["symbol"].map(crypto_ids))
    csv = frame.to_csv(
        columns=list(FRAME_COLUMNS),
        header=False,
        index=False,
        date_format=TIMESTAMP_FORMAT,
        float_format="%.10g",
    )
    return csv.encode()


def database_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def conninfo(url: str) -> str:
    """The libpq form of a SQLAlchemy URL, for psycopg.connect."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def throwaway_database(admin_url: str, prefix: str = "bench_ingest") -> Iterator[str]:
    """A new, empty database on the server; dropped on the way out, whatever happened."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    # make_engine pings a pooled connection first: the drop works after a server restart.
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield database_url(admin_url, name)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def settle(maintenance: psycopg.Connection[Any]) -> None:
    """Before a measurement: fresh statistics, and no autovacuum work or dirty buffers left
    over from the previous one to compete with it."""
    maintenance.execute("VACUUM ANALYZE")
    maintenance.execute("CHECKPOINT")


def reset_our_tables(maintenance: psycopg.Connection[Any]) -> None:
    """Empty the tables our ingest writes (new files on disk, ids from 1)."""
    maintenance.execute(f"TRUNCATE {OUR_TABLES} RESTART IDENTITY CASCADE")


def time_ours(
    engine: Engine, maintenance: psycopg.Connection[Any], dataset: Dataset
) -> tuple[float, float]:
    """Seconds for ingest() into empty tables, then for the same ingest() again."""
    reset_our_tables(maintenance)
    settle(maintenance)
    first, report = _timed_ingest(engine, dataset)
    _expect(report, inserted=dataset.rows, unchanged=0)
    settle(maintenance)
    again, report = _timed_ingest(engine, dataset)
    _expect(report, inserted=0, unchanged=dataset.rows)
    return first, again


def _timed_ingest(engine: Engine, dataset: Dataset) -> tuple[float, IngestReport]:
    start = perf_counter()
    report = ingest(engine, dataset.directory, coins_file=dataset.coins_file)
    return perf_counter() - start, report


def _expect(report: IngestReport, inserted: int, unchanged: int) -> None:
    totals = report.totals
    if (totals.inserted, totals.updated, totals.unchanged) != (inserted, 0, unchanged):
        raise RuntimeError(
            f"ingest counted {totals}, expected {inserted} inserted and {unchanged} unchanged"
        )


def time_copy(
    url: str,
    maintenance: psycopg.Connection[Any],
    dataset: Dataset,
    schema: str,
    ddl: str,
    with_coins: bool,
) -> float:
    """Seconds from the start of COPY to commit, into tables just created from ``ddl``."""
    columns = ", ".join(COPY_COLUMNS)
    with psycopg.connect(conninfo(url)) as connection:
        create_schema(connection, schema, ddl)
        if with_coins:
            insert_coins(connection, dataset.coins)
        connection.commit()
        settle(maintenance)
        start = perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {schema}.price_data ({columns}) FROM STDIN (FORMAT csv)") as copy,
        ):
            view = memoryview(dataset.copy_text)
            for offset in range(0, len(view), COPY_BLOCK_BYTES):
                copy.write(view[offset : offset + COPY_BLOCK_BYTES])
        connection.commit()
        elapsed = perf_counter() - start
        _expect_count(connection, schema, dataset.rows)
        connection.execute(f"DROP SCHEMA {schema} CASCADE")
        connection.commit()
    return elapsed


def create_schema(connection: psycopg.Connection[Any], schema: str, ddl: str) -> None:
    connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    connection.execute(f"CREATE SCHEMA {schema}")
    connection.execute(f"SET search_path TO {schema}")
    connection.execute(ddl)


def insert_coins(connection: psycopg.Connection[Any], coins: pd.DataFrame) -> None:
    """The coins into cryptocurrencies, so their ids are the ones in the COPY text."""
    with connection.cursor() as cursor:
        for position, (symbol, name) in enumerate(zip(coins["symbol"], coins["name"], strict=True)):
            cursor.execute(
                "INSERT INTO cryptocurrencies (symbol, name) VALUES (%s, %s) RETURNING id",
                (symbol, name),
            )
            row = cursor.fetchone()
            if row is None or row[0] != position + 1:
                raise RuntimeError(f"{symbol} got id {row}, expected {position + 1}")


def _expect_count(connection: psycopg.Connection[Any], schema: str, rows: int) -> None:
    row = connection.execute(f"SELECT count(*) FROM {schema}.price_data").fetchone()
    if row is None or row[0] != rows:
        raise RuntimeError(f"{schema}.price_data holds {row}, expected {rows}")


def timed_cursor_class(clock: dict[str, float]) -> type[psycopg.Cursor[Any]]:
    """A psycopg cursor that adds the seconds of each statement to ``clock`` by kind."""

    class TimedCursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            start = perf_counter()
            try:
                return super().execute(query, *args, **kwargs)
            finally:
                clock[statement_kind(query)] += perf_counter() - start

        def executemany(self, query: Any, *args: Any, **kwargs: Any) -> None:
            start = perf_counter()
            try:
                super().executemany(query, *args, **kwargs)
            finally:
                clock[statement_kind(query)] += perf_counter() - start

        @contextmanager
        def copy(self, statement: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            start = perf_counter()
            try:
                with super().copy(statement, *args, **kwargs) as copy:
                    yield copy
            finally:
                clock["copy"] += perf_counter() - start

    return TimedCursor


def statement_kind(query: Any) -> str:
    """``upsert`` for the INSERT into price_data (append or upsert), else ``other``."""
    return "upsert" if "INSERT INTO price_data" in " ".join(str(query).split()) else "other"


def timed(function: Callable[..., Any], clock: dict[str, float], kind: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            clock[kind] += perf_counter() - start

    return wrapper


def time_encoding(clock: dict[str, float]) -> AbstractContextManager[object]:
    """Time the binary COPY encoding of the staging rows."""
    return patch.object(pg_copy, "encode_rows", timed(pg_copy.encode_rows, clock, "encoding"))


def measure_breakdown(
    url: str, maintenance: psycopg.Connection[Any], dataset: Dataset
) -> Breakdown:
    """read_all, then write_candles into empty tables, with every statement timed."""
    clock: dict[str, float] = defaultdict(float)
    engine = make_engine(url, connect_args={"cursor_factory": timed_cursor_class(clock)})
    try:
        reset_our_tables(maintenance)
        settle(maintenance)
        with engine.connect():
            pass  # open the pooled connection before the clock starts
        clock.clear()
        start = perf_counter()
        coins = read_coins_file(dataset.coins_file)
        files = read_all(discover_candle_files(dataset.directory), None)
        read_done = perf_counter()
        with time_encoding(clock):
            write_candles(engine, {f.symbol: f.candles for f in files}, coins)
        write_done = perf_counter()
    finally:
        engine.dispose()
    return Breakdown(
        read_validate=read_done - start,
        write=write_done - read_done,
        encoding=clock["encoding"],
        staging_copy=clock["copy"] - clock["encoding"],
        upsert=clock["upsert"],
        other_sql=clock["other"],
    )


def run_round(
    url: str,
    engine: Engine,
    maintenance: psycopg.Connection[Any],
    dataset: Dataset,
    results: Results,
    progress: Progress,
) -> None:
    """Every measurement once, keeping the best figures in ``results``."""
    progress("ours: ingest() into empty tables, then again over the same files")
    first, again = time_ours(engine, maintenance, dataset)
    progress(f"  ingest {first:.1f} s, re-ingest {again:.1f} s")
    results.ours = min(results.ours, first)
    results.reingest = min(results.reingest, again)
    progress("(a) COPY into a bare table")
    bare = time_copy(url, maintenance, dataset, BARE_SCHEMA, BARE_DDL, with_coins=False)
    progress(f"  {bare:.1f} s")
    results.bare_copy = min(results.bare_copy, bare)
    progress("(b) COPY into the spec's price_data")
    spec = time_copy(url, maintenance, dataset, SPEC_SCHEMA, SPEC_DDL, with_coins=True)
    progress(f"  {spec:.1f} s")
    results.spec_copy = min(results.spec_copy, spec)
    progress("breakdown: read_all, then write_candles, instrumented")
    breakdown = measure_breakdown(url, maintenance, dataset)
    progress(f"  read {breakdown.read_validate:.1f} s, write {breakdown.write:.1f} s")
    results.keep_best_breakdown(breakdown)


def server_facts(maintenance: psycopg.Connection[Any]) -> str:
    def setting(name: str) -> str:
        row = maintenance.execute(f"SHOW {name}").fetchone()
        return "?" if row is None else str(row[0])

    version = setting("server_version").split()[0]
    return (
        f"PostgreSQL {version} (shared_buffers {setting('shared_buffers')}, "
        f"synchronous_commit {setting('synchronous_commit')}, fsync {setting('fsync')})"
    )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def rate(rows: int, seconds: float) -> float:
    return rows / seconds


def report(results: Results, dataset: Dataset, facts: RunFacts) -> str:
    rows = dataset.rows
    ours = rate(rows, results.ours)
    lines = [
        f"Ingest benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine   {os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}",
        f"database  {facts.server} at {facts.where}",
        f"data      {rows:,} hourly candles = {dataset.n_coins} coins x {dataset.days} days x 24, "
        f"{dataset.n_coins} CSV files ({dataset.files_bytes / 1e6:.1f} MB) + coins.csv",
        f"runs      best of {facts.repeat}; whole benchmark {facts.wall:.0f} s; "
        f"load average {facts.load_start:.1f} at the start, {facts.load_end:.1f} at the end",
        "",
        f"{'measurement':<52}{'seconds':>9}{'rows/s':>11}",
    ]
    measured = [
        ("ours: ingest() of the CSV files into empty tables", results.ours),
        ("ours: re-ingest of the same files (all unchanged)", results.reingest),
        ("(a) COPY into a bare table (no index, no constraint)", results.bare_copy),
        ("(b) COPY into the spec's price_data", results.spec_copy),
    ]
    lines += [f"{name:<52}{secs:>9.2f}{rate(rows, secs):>11,.0f}" for name, secs in measured]
    lines += [
        "",
        f"ours / (b)  {ours / rate(rows, results.spec_copy):.2f}x",
        f"ours / (a)  {ours / rate(rows, results.bare_copy):.2f}x",
    ]
    if results.breakdown is not None:
        lines += ["", *breakdown_lines(results.breakdown, dataset)]
    return "\n".join(lines)


def breakdown_lines(breakdown: Breakdown, dataset: Dataset) -> list[str]:
    parts = [
        (f"read_all: read + validate {dataset.n_coins} files", breakdown.read_validate),
        ("write_candles: the database write, one transaction", breakdown.write),
        ("  encoding the staging rows (pg_copy.encode_rows)", breakdown.encoding),
        ("  COPY into the staging table (encoding excluded)", breakdown.staging_copy),
        ("  INSERT into price_data (append or upsert)", breakdown.upsert),
        ("  other statements (staging table, coins, quotes)", breakdown.other_sql),
        ("  rest (commit, Python)", breakdown.rest),
        ("total", breakdown.total),
    ]
    lines = [f"{'our path, instrumented run':<52}{'seconds':>9}{'share':>11}"]
    lines += [
        f"{name:<52}{seconds:>9.2f}{seconds / breakdown.total:>11.0%}" for name, seconds in parts
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    admin_url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_URL)
    where = make_url(admin_url)
    load_start = os.getloadavg()[0]
    progress = Progress()
    results = Results()
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as scratch:
        dataset = build_dataset(args.rows, args.seed, Path(scratch), progress)
        progress(f"creating and migrating a throwaway database on {where.host}")
        with throwaway_database(admin_url) as url:
            upgrade(url)
            engine = make_engine(url)
            try:
                with psycopg.connect(conninfo(url), autocommit=True) as maintenance:
                    server = server_facts(maintenance)
                    for round_number in range(1, args.repeat + 1):
                        progress(f"round {round_number} of {args.repeat}")
                        run_round(url, engine, maintenance, dataset, results, progress)
            finally:
                engine.dispose()
            progress("dropping the throwaway database")
    facts = RunFacts(
        server=server,
        where=f"{where.host}:{where.port}",
        repeat=args.repeat,
        wall=perf_counter() - progress.start,
        load_start=load_start,
        load_end=os.getloadavg()[0],
    )
    print(report(results, dataset, facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
