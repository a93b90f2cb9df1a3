"""Property-based tests of `ingest` into a migrated database (hypothesis).

For generated directories of candle files: a good file loads exactly its rows, loading it
again changes nothing, and a directory holding one bad file writes nothing at all, whatever
the database held before and in whichever order the files are read.

SQLite examples each get a copy of the migrated template; the PostgreSQL examples share one
throwaway database per module, emptied before each example. Examples are derandomised; see
docs/reliability.md.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, text

from db.engine import make_engine
from db.schema import Cryptocurrency, CryptoSectorMapping, PriceData
from pg_databases import throwaway_database
from training.ingest import IngestRejected, ingest

HEADER = "timestamp,open,high,low,close,volume,market_cap"
FIRST_HOUR = 438_000  # 2019-12-19, in hours since the epoch
SQLITE_EXAMPLES = 40
POSTGRES_EXAMPLES = 8
GARBAGE = ("abc", "-1", "0", "", "1e400", "2021-13-01")
EXAMPLE_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class CandleText:
    hour: int  # hours since the epoch
    fields: tuple[str, str, str, str, str, str]  # open, high, low, close, volume, market_cap

    def line(self) -> str:
        return ",".join([str(self.hour * 3600), *self.fields])


# Strategies ------------------------------------------------------------------------------

# Prices with at most 8 decimals and 15 significant digits fit NUMERIC(20, 8) exactly and
# survive SQLite's REAL storage, so a correct load stores the very digits of the file.
PRICE_UNITS = st.integers(min_value=1, max_value=10**15)  # in units of 1e-8: up to 1e7
VOLUMES = st.integers(min_value=0, max_value=10**14).map(lambda units: units / 100)


def decimal_text(units: int, scale: int) -> str:
    return str(Decimal(units).scaleb(-scale))


@st.composite
def candles(draw: st.DrawFn, hour: int) -> CandleText:
    open_units, close_units = draw(PRICE_UNITS), draw(PRICE_UNITS)
    high_units = max(open_units, close_units) + draw(st.integers(0, 10**6))
    low_units = max(1, min(open_units, close_units) - draw(st.integers(0, 10**6)))
    market_cap = draw(st.one_of(st.just(""), st.integers(0, 10**15).map(lambda c: f"{c}.25")))
    fields = (
        decimal_text(open_units, 8),
        decimal_text(high_units, 8),
        decimal_text(low_units, 8),
        decimal_text(close_units, 8),
        repr(draw(VOLUMES)),
        market_cap,
    )
    return CandleText(hour=hour, fields=fields)


@st.composite
def series(draw: st.DrawFn, first_hour: int | None = None) -> list[CandleText]:
    """Two to 30 hourly candles with gaps (fewer gaps than consecutive hours, so the file
    reads as hourly), from ``first_hour`` or a random hour."""
    steps = draw(st.integers(1, 20))
    jumps = draw(st.lists(st.sampled_from([2, 5, 30]), max_size=(steps - 1) // 2))
    gaps = draw(st.permutations([1] * steps + jumps))
    hour = draw(st.integers(FIRST_HOUR, FIRST_HOUR + 500)) if first_hour is None else first_hour
    hours = [hour]
    for gap in gaps:
        hours.append(hours[-1] + gap)
    return [draw(candles(hour)) for hour in hours]


@st.composite
def bad_files(draw: st.DrawFn) -> tuple[str, set[int]]:
    """A file's text and the lines it must be refused for (empty for a file-level error)."""
    kind = draw(st.sampled_from(["rows", "rows", "rows", "empty", "no_volume", "bytes"]))
    if kind == "empty":
        return "", set()
    if kind == "bytes":
        return "\x00\xff\xfe garbage\n", set()
    rows = draw(series())
    lines = [HEADER, *(row.line() for row in rows)]
    if kind == "no_volume":
        cut = [line.split(",") for line in lines]
        return "\n".join(",".join(cells[:5] + cells[6:]) for cells in cut) + "\n", set()
    bad = draw(st.sets(st.integers(1, len(rows)), min_size=1, max_size=3))
    for index in bad:
        cells = lines[index].split(",")
        column = draw(st.integers(1, 5))
        # "0" is a valid volume, so it spoils only prices.
        garbage = GARBAGE if column < 5 else tuple(cell for cell in GARBAGE if cell != "0")
        cells[column] = draw(st.sampled_from(garbage))
        lines[index] = ",".join(cells)
    return "\n".join(lines) + "\n", {index + 1 for index in bad}


# Databases -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_module_url(postgres_template: str) -> Iterator[str]:
    with throwaway_database("cryptopredict_props", postgres_template) as url:
        yield url


@contextmanager
def sqlite_engine(template: Path) -> Iterator[Engine]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "cryptopredict.db"
        shutil.copyfile(template, path)
        engine = make_engine(f"sqlite:///{path}")
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def emptied_postgres_engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for table in (PriceData, CryptoSectorMapping, Cryptocurrency):
                connection.execute(delete(table))
        yield engine
    finally:
        engine.dispose()


def snapshot(engine: Engine) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every stored candle and coin, ignoring when the coins were last touched."""
    with engine.connect() as connection:
        candles = connection.execute(
            text("SELECT * FROM price_data ORDER BY crypto_id, timestamp")
        ).all()
        coins = connection.execute(text("SELECT * FROM cryptocurrencies ORDER BY id")).all()
    return [tuple(row) for row in candles], [tuple(row) for row in coins]


def stored_candles(engine: Engine, symbol: str) -> list[tuple[int, tuple[float | None, ...]]]:
    """(hour since the epoch, values as floats or None) of a coin's stored candles."""
    query = text(
        "SELECT p.timestamp, p.open_price, p.high_price, p.low_price, p.close_price,"
        " p.volume, p.market_cap FROM price_data p JOIN cryptocurrencies c"
        " ON c.id = p.crypto_id WHERE c.symbol = :symbol ORDER BY p.timestamp"
    )
    with engine.connect() as connection:
        rows = connection.execute(query, {"symbol": symbol}).all()
    return [(_hour(row[0]), tuple(_number(value) for value in row[1:])) for row in rows]


def expected_candles(rows: list[CandleText]) -> list[tuple[int, tuple[float | None, ...]]]:
    return [
        (row.hour, tuple(float(value) if value else None for value in row.fields)) for row in rows
    ]


def _hour(stamp: datetime | str) -> int:
    moment = pd.Timestamp(stamp)
    if moment.tzinfo is None:
        moment = moment.tz_localize("UTC")
    seconds = int(moment.timestamp())
    assert seconds % 3600 == 0
    return seconds // 3600


def _number(value: Decimal | float | str | None) -> float | None:
    return None if value is None else float(value)


def write_csv(directory: Path, name: str, rows: list[CandleText]) -> Path:
    path = directory / name
    path.write_text("\n".join([HEADER, *(row.line() for row in rows)]) + "\n")
    return path


# Properties ------------------------------------------------------------------------------


def check_good_file_loads_exactly_and_reloads_as_nothing(
    engine: Engine, rows: list[CandleText], earlier: list[CandleText]
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        other = write_csv(Path(directory), "OTHER-USD_1h.csv", earlier)
        ingest(engine, other)
        path = write_csv(Path(directory), "GOOD-USDT_1h.csv", rows)

        first = ingest(engine, path)
        before = snapshot(engine)
        again = ingest(engine, path)

    assert (first.totals.inserted, first.totals.updated) == (len(rows), 0)
    assert stored_candles(engine, "GOOD") == expected_candles(rows)
    assert stored_candles(engine, "OTHER") == expected_candles(earlier)
    assert (again.totals.inserted, again.totals.updated) == (0, 0)
    assert again.totals.unchanged == len(rows)
    assert snapshot(engine) == before


def check_one_bad_file_writes_nothing(
    engine: Engine,
    earlier: list[CandleText],
    good: list[CandleText],
    bad: tuple[str, set[int]],
    bad_first: bool,
) -> None:
    bad_text, bad_lines = bad
    with tempfile.TemporaryDirectory() as directory:
        ingest(engine, write_csv(Path(directory), "GOOD-USDT_1h.csv", earlier))
        before = snapshot(engine)
        batch = Path(directory) / "batch"
        batch.mkdir()
        # The good file updates the stored coin and adds a new one; names set the order.
        write_csv(batch, "GOOD-USDT_1h.csv", good)
        write_csv(batch, "NEW-USDT_1h.csv", good)
        bad_path = batch / ("AAA-USDT_1h.csv" if bad_first else "ZZZ-USDT_1h.csv")
        bad_path.write_text(bad_text, encoding="latin-1")

        with pytest.raises(IngestRejected) as caught:
            ingest(engine, batch)

    assert [error.path for error in caught.value.errors] == [bad_path]
    assert {problem.line for problem in caught.value.errors[0].problems} == bad_lines
    assert snapshot(engine) == before


@settings(EXAMPLE_SETTINGS, max_examples=SQLITE_EXAMPLES)
@given(rows=series(), earlier=series())
def test_sqlite_good_file_loads_exactly_and_reloads_as_nothing(
    sqlite_template: Path, rows: list[CandleText], earlier: list[CandleText]
) -> None:
    with sqlite_engine(sqlite_template) as engine:
        check_good_file_loads_exactly_and_reloads_as_nothing(engine, rows, earlier)


@settings(EXAMPLE_SETTINGS, max_examples=SQLITE_EXAMPLES)
@given(earlier=series(), good=series(), bad=bad_files(), bad_first=st.booleans())
def test_sqlite_one_bad_file_writes_nothing(
    sqlite_template: Path,
    earlier: list[CandleText],
    good: list[CandleText],
    bad: tuple[str, set[int]],
    bad_first: bool,
) -> None:
    with sqlite_engine(sqlite_template) as engine:
        check_one_bad_file_writes_nothing(engine, earlier, good, bad, bad_first)


@pytest.mark.postgres
@settings(EXAMPLE_SETTINGS, max_examples=POSTGRES_EXAMPLES)
@given(rows=series(), earlier=series())
def test_postgres_good_file_loads_exactly_and_reloads_as_nothing(
    postgres_module_url: str, rows: list[CandleText], earlier: list[CandleText]
) -> None:
    with emptied_postgres_engine(postgres_module_url) as engine:
        check_good_file_loads_exactly_and_reloads_as_nothing(engine, rows, earlier)


@pytest.mark.postgres
@settings(EXAMPLE_SETTINGS, max_examples=POSTGRES_EXAMPLES)
@given(earlier=series(), good=series(), bad=bad_files(), bad_first=st.booleans())
def test_postgres_one_bad_file_writes_nothing(
    postgres_module_url: str,
    earlier: list[CandleText],
    good: list[CandleText],
    bad: tuple[str, set[int]],
    bad_first: bool,
) -> None:
    with emptied_postgres_engine(postgres_module_url) as engine:
        check_one_bad_file_writes_nothing(engine, earlier, good, bad, bad_first)
