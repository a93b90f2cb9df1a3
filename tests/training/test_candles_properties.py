"""Property-based tests of candle CSV reading (hypothesis).

Generated files, valid or corrupted in known ways, are read with `read_candle_file` and the
outcome is compared with an independent model written here in plain Python: either the file
loads and equals the model's hourly candles, or it is refused with a `CandleFileError` that
names exactly the lines the model calls bad. Arbitrary text and bytes must end in one of the
two as well, never in another exception.

Examples are derandomised, so a run is reproducible; see docs/reliability.md.
"""

from __future__ import annotations

import gzip
import math
import random
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from training.candles import CANDLE_COLUMNS, CandleFile, CandleFileError, read_candle_file

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
HOUR_SECONDS = 3600
# Epoch timestamps are unambiguous from March 1973 (below 1e11 a number is seconds).
FIRST_SECOND = int(datetime(1975, 1, 1, tzinfo=UTC).timestamp())
LAST_SECOND = int(datetime(2250, 1, 1, tzinfo=UTC).timestamp())
# Hourly-compatible intervals (minutes) and a few that must be refused.
GOOD_INTERVALS = (1, 5, 15, 30, 60)
BAD_INTERVALS = (7, 25, 120, 1440)
TIMESTAMP_STYLES = (
    "iso_z",
    "iso_naive",
    "iso_space",
    "iso_millis",
    "iso_offset",
    "epoch_s",
    "epoch_s_float",
    "epoch_ms",
    "epoch_ms_float",
)
NUMBER_STYLES = ("repr", "g17", "e16")
GARBAGE_TIMESTAMPS = (
    "",
    "yesterday",
    "2021-13-01T00:00:00Z",
    "2021-02-30T00:00:00Z",
    "12:00 noon",
    "1e30",
    "99999999999999999999",
    "--5",
    "2021-01-01T25:00:00",
)
GARBAGE_NUMBERS = ("", "abc", "inf", "-inf", "1e400", "NaN", "1..2", "--5", "0x1A", "ten", "N/A")
CORRUPTIONS = (
    "timestamp",
    "number",
    "not_positive",
    "high_below",
    "low_above",
    "negative_volume",
    "negative_market_cap",
    "too_large",
    "duplicate",
)
# What price_data's NUMERIC(20, 8), (30, 8) and (30, 2) columns hold: magnitudes below these.
STORABLE = {"price": 1e12, "volume": 1e22, "market_cap": 1e28}
# Valid prices stay clear of the limit even after high = price * 1.3.
LARGEST_VALID_PRICE = STORABLE["price"] / 1.5


# The independent model -------------------------------------------------------------------


@dataclass
class Row:
    """One generated candle; ``second`` is None when its timestamp is unusable."""

    second: int | None
    values: dict[str, float]  # parsed values of open, high, low, close, volume, market_cap
    fields: dict[str, str] = field(default_factory=dict)  # the text written to the file
    bad: bool = False
    line: int = 0


@dataclass
class Expected:
    """What reading the file must give: hourly candles, or the lines refused, or an error."""

    candles: pd.DataFrame | None = None
    bad_lines: set[int] = field(default_factory=set)
    file_error: str | None = None
    interval: int | None = None


def model_interval(seconds: list[int]) -> int | None:
    """The most common gap between consecutive distinct timestamps; the smallest on a tie."""
    distinct = sorted(set(seconds))
    gaps = Counter(later - earlier for earlier, later in pairwise(distinct))
    if not gaps:
        return None
    most = max(gaps.values())
    return min(gap for gap, count in gaps.items() if count == most)


def model_hourly(rows: list[Row]) -> pd.DataFrame:
    """Reference aggregation: first open, max high, min low, last close, summed volume and
    the last market cap known within each hour, the hours in time order."""
    hours: dict[int, list[Row]] = {}
    for row in sorted(rows, key=lambda row: row.second or 0):
        assert row.second is not None
        hours.setdefault(row.second // HOUR_SECONDS * HOUR_SECONDS, []).append(row)
    records = []
    for hour, members in sorted(hours.items()):
        caps = [
            row.values["market_cap"] for row in members if not math.isnan(row.values["market_cap"])
        ]
        records.append(
            {
                "timestamp": pd.Timestamp(hour, unit="s", tz="UTC"),
                "open": members[0].values["open"],
                "high": max(row.values["high"] for row in members),
                "low": min(row.values["low"] for row in members),
                "close": members[-1].values["close"],
                "volume": math.fsum(row.values["volume"] for row in members),
                "market_cap": caps[-1] if caps else math.nan,
            }
        )
    return pd.DataFrame(records, columns=list(CANDLE_COLUMNS))


def model_outcome(rows: list[Row]) -> Expected:
    """The reading the file must produce, decided from the rows alone."""
    seconds = [row.second for row in rows if row.second is not None]
    interval = model_interval(seconds)
    if interval is not None:
        if interval > HOUR_SECONDS:
            return Expected(file_error="coarser than 1h", interval=interval)
        if HOUR_SECONDS % interval:
            return Expected(file_error="does not divide 1h", interval=interval)
    bad = {row.line for row in rows if row.bad}
    first_seen: set[int] = set()
    for row in rows:
        if row.second is None:
            continue
        if row.second in first_seen:
            bad.add(row.line)
        first_seen.add(row.second)
        if interval is not None and row.second % interval:
            bad.add(row.line)
    if bad:
        return Expected(bad_lines=bad, interval=interval)
    if interval is None:
        return Expected(file_error="at least two distinct timestamps")
    return Expected(candles=model_hourly(rows), interval=interval)


# Writing rows as text --------------------------------------------------------------------


def format_timestamp(second: int, style: str, offset_minutes: int) -> str:
    moment = datetime.fromtimestamp(second, tz=UTC)
    if style == "iso_z":
        return f"{moment:%Y-%m-%dT%H:%M:%S}Z"
    if style == "iso_naive":
        return f"{moment:%Y-%m-%dT%H:%M:%S}"
    if style == "iso_space":
        return f"{moment:%Y-%m-%d %H:%M:%S}+00:00"
    if style == "iso_millis":
        return f"{moment:%Y-%m-%dT%H:%M:%S}.000Z"
    if style == "iso_offset":
        local = moment + timedelta(minutes=offset_minutes)
        sign = "+" if offset_minutes >= 0 else "-"
        hours, minutes = divmod(abs(offset_minutes), 60)
        return f"{local:%Y-%m-%dT%H:%M:%S}{sign}{hours:02d}:{minutes:02d}"
    if style == "epoch_s":
        return str(second)
    if style == "epoch_s_float":
        return f"{second}.0"
    if style == "epoch_ms":
        return str(second * 1000)
    assert style == "epoch_ms_float"
    return f"{second * 1000}.0"


def format_number(value: float, style: str) -> str:
    """Text that parses back to exactly ``value``."""
    if style == "repr":
        return repr(value)
    if style == "g17":
        return f"{value:.17g}"
    return f"{value:.16e}"


# Strategies ------------------------------------------------------------------------------


@st.composite
def positive_prices(draw: st.DrawFn) -> float:
    """Usual prices with few digits, or any storable float from 1e-300 (17 digits)."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.floats(min_value=1e-300, max_value=LARGEST_VALID_PRICE))
    exponent = draw(st.integers(min_value=-8, max_value=10))
    mantissa = draw(st.floats(min_value=1.0, max_value=9.999, allow_nan=False))
    return float(f"{mantissa * 10.0**exponent:.12g}")


@st.composite
def valid_candle(draw: st.DrawFn, with_market_cap: bool) -> dict[str, float]:
    open_, close = draw(positive_prices()), draw(positive_prices())
    above = draw(st.sampled_from([0.0, 0.001, 0.3]))
    below = draw(st.sampled_from([0.0, 0.001, 0.3]))
    volume = draw(st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=1e12)))
    market_cap = math.nan
    if with_market_cap and draw(st.booleans()):
        market_cap = draw(st.floats(min_value=0.0, max_value=1e15))
    return {
        "open": open_,
        "high": max(open_, close) * (1 + above),
        "low": min(open_, close) * (1 - below),
        "close": close,
        "volume": volume,
        "market_cap": market_cap,
    }


@dataclass
class GeneratedFile:
    rows: list[Row]
    header: list[str]
    text: str
    gzipped: bool
    expected: Expected


@st.composite
def candle_files(draw: st.DrawFn, corrupt: bool, intervals: tuple[int, ...]) -> GeneratedFile:
    """A candle file on a grid of one interval, with gaps, shuffled rows, mixed timestamp and
    number styles, blank lines, extra and reordered columns, optionally gzipped; with
    ``corrupt``, some rows are broken in ways the model knows to refuse."""
    interval = draw(st.sampled_from(intervals)) * 60
    with_market_cap = draw(st.booleans())
    gaps = draw(st.lists(st.sampled_from([1, 1, 1, 1, 1, 2, 3, 7]), min_size=1, max_size=40))
    start = draw(
        st.integers(FIRST_SECOND // interval, (LAST_SECOND - 50 * 7 * interval) // interval)
    )
    steps = np.cumsum([0, *gaps])
    rows = [
        Row(second=int((start + step) * interval), values=draw(valid_candle(with_market_cap)))
        for step in steps
    ]
    if draw(st.booleans()):
        rows = draw(st.permutations(rows))
    styles = draw(st.lists(st.sampled_from(TIMESTAMP_STYLES), min_size=1, max_size=3, unique=True))
    offsets = st.sampled_from([-720, -300, -30, 0, 60, 330, 840])
    for row in rows:
        assert row.second is not None
        row.fields["timestamp"] = format_timestamp(
            row.second, draw(st.sampled_from(styles)), draw(offsets)
        )
        for name, value in row.values.items():
            if name == "market_cap" and math.isnan(value):
                row.fields[name] = ""
            else:
                row.fields[name] = format_number(value, draw(st.sampled_from(NUMBER_STYLES)))
    if corrupt:
        for index in draw(st.sets(st.integers(0, len(rows) - 1), min_size=1, max_size=4)):
            corrupt_row(draw, rows, index, with_market_cap)
    columns = [*CANDLE_COLUMNS[: 6 + with_market_cap]]
    if draw(st.booleans()):
        columns.append("exchange")
    columns = draw(st.permutations(columns))
    header = [draw(st.sampled_from([name, name.upper(), f" {name.title()} "])) for name in columns]
    lines = [",".join(header)]
    for row in rows:
        while draw(st.integers(0, 9)) == 0:
            lines.append("")
        row.line = len(lines) + 1
        lines.append(",".join(row.fields.get(name, "binance") for name in columns))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return GeneratedFile(
        rows=rows,
        header=header,
        text=newline.join(lines) + newline,
        gzipped=draw(st.booleans()),
        expected=model_outcome(rows),
    )


def corrupt_row(draw: st.DrawFn, rows: list[Row], index: int, with_market_cap: bool) -> None:
    """Break one row in a way that must be refused (or, for a duplicate, be a repeat)."""
    row = rows[index]
    kinds = [kind for kind in CORRUPTIONS if with_market_cap or kind != "negative_market_cap"]
    kind = draw(st.sampled_from(kinds))
    prices = ("open", "high", "low", "close")
    if kind == "timestamp":
        row.fields["timestamp"] = draw(st.sampled_from(GARBAGE_TIMESTAMPS))
        row.second = None
    elif kind == "number":
        name = draw(st.sampled_from((*prices, "volume")))
        row.fields[name] = draw(st.sampled_from(GARBAGE_NUMBERS))
    elif kind == "not_positive":
        name = draw(st.sampled_from(prices))
        row.fields[name] = draw(st.sampled_from(["0", "-0.0", f"-{row.fields[name]}"]))
    elif kind == "high_below":
        shortfall = draw(st.sampled_from([1e-6, 0.01, 0.5]))
        top = max(row.values["open"], row.values["close"])
        row.fields["high"] = repr(top * (1 - shortfall))
    elif kind == "low_above":
        excess = draw(st.sampled_from([1e-6, 0.01, 0.5]))
        bottom = min(row.values["open"], row.values["close"])
        row.fields["low"] = repr(bottom * (1 + excess))
    elif kind == "negative_volume":
        row.fields["volume"] = draw(st.sampled_from(["-1", "-1e-09", "-5e11"]))
    elif kind == "negative_market_cap":
        row.fields["market_cap"] = "-1.5"
    elif kind == "too_large":
        names = (*prices, "volume", "market_cap") if with_market_cap else (*prices, "volume")
        name = draw(st.sampled_from(names))
        limit = STORABLE["price" if name in prices else name]
        row.fields[name] = repr(limit * draw(st.sampled_from([1.0, 3.5, 1e10])))
    else:
        earlier = [other for other in rows[:index] if other.second is not None]
        if not earlier:
            return
        source = draw(st.sampled_from(earlier))
        assert source.second is not None
        row.second = source.second
        row.fields["timestamp"] = format_timestamp(
            row.second, draw(st.sampled_from(TIMESTAMP_STYLES)), 60
        )
        return  # the model marks the repeat itself
    row.bad = True


def write_file(directory: Path, generated: GeneratedFile) -> Path:
    if generated.gzipped:
        path = directory / "ABC-USDT_1h.csv.gz"
        path.write_bytes(gzip.compress(generated.text.encode()))
    else:
        path = directory / "ABC-USDT_1h.csv"
        path.write_bytes(generated.text.encode())
    return path


def read_outcome(path: Path) -> CandleFile | CandleFileError:
    """The file read, or its clean refusal; any other exception fails the test."""
    try:
        return read_candle_file(path)
    except CandleFileError as error:
        return error


# Properties ------------------------------------------------------------------------------


def assert_matches_model(outcome: CandleFile | CandleFileError, generated: GeneratedFile) -> None:
    note(f"file text:\n{generated.text}")
    expected = generated.expected
    if expected.candles is not None:
        event("expected: load")
    else:
        event(f"expected refusal: {expected.file_error or 'bad rows'}")
    if expected.candles is None:
        assert isinstance(outcome, CandleFileError), f"loaded a file the model refuses: {expected}"
        if expected.file_error is not None:
            assert expected.file_error in outcome.message
            assert outcome.problems == []
        else:
            assert {problem.line for problem in outcome.problems} == expected.bad_lines
            assert len(outcome.problems) == len(expected.bad_lines)
            for problem in outcome.problems[:3]:
                assert f"line {problem.line}: {problem.reason}" in str(outcome)
        return
    assert isinstance(outcome, CandleFile), f"refused a valid file:\n{outcome}"
    assert outcome.symbol == "ABC"
    assert outcome.source_rows == len(generated.rows)
    assert outcome.source_interval == pd.Timedelta(seconds=expected.interval or 0)
    candles = outcome.candles
    assert list(candles.columns) == list(CANDLE_COLUMNS)
    assert str(candles["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert list(candles["timestamp"]) == list(expected.candles["timestamp"])
    for name in ("open", "high", "low", "close", "market_cap"):
        np.testing.assert_array_equal(
            candles[name].to_numpy(), expected.candles[name].to_numpy(), err_msg=name
        )
    np.testing.assert_allclose(
        candles["volume"].to_numpy(), expected.candles["volume"].to_numpy(), rtol=1e-12, atol=0
    )


@PROPERTY_SETTINGS
@given(generated=candle_files(corrupt=False, intervals=GOOD_INTERVALS * 4 + BAD_INTERVALS))
def test_valid_files_load_as_the_model_says(generated: GeneratedFile) -> None:
    with tempfile.TemporaryDirectory() as directory:
        outcome = read_outcome(write_file(Path(directory), generated))
    assert_matches_model(outcome, generated)


@PROPERTY_SETTINGS
@given(generated=candle_files(corrupt=True, intervals=GOOD_INTERVALS))
def test_corrupted_files_are_refused_naming_the_bad_lines(generated: GeneratedFile) -> None:
    with tempfile.TemporaryDirectory() as directory:
        outcome = read_outcome(write_file(Path(directory), generated))
    assert_matches_model(outcome, generated)


@PROPERTY_SETTINGS
@given(
    minutes=st.sampled_from([1, 5]),
    seed=st.integers(0, 2**32 - 1),
    hours=st.integers(1, 30),
    density=st.sampled_from([1.0, 0.9, 0.5]),
)
def test_finer_candles_aggregate_like_the_reference(
    minutes: int, seed: int, hours: int, density: float
) -> None:
    """Many 1m/5m candles (up to 1800 rows) a file, hours partly filled, rows shuffled."""
    generator = random.Random(seed)
    per_hour = 60 // minutes
    start = generator.randrange(FIRST_SECOND // HOUR_SECONDS, LAST_SECOND // HOUR_SECONDS - 40)
    rows = []
    for slot in range(hours * per_hour):
        if slot and generator.random() > density:
            continue
        open_, close = (round(generator.lognormvariate(3, 2), 6) for _ in range(2))
        values = {
            "open": open_,
            "high": max(open_, close) * (1 + generator.random() / 10),
            "low": min(open_, close) * (1 - generator.random() / 10),
            "close": close,
            "volume": generator.random() * 1e6,
            "market_cap": generator.random() * 1e9 if generator.random() < 0.5 else math.nan,
        }
        rows.append(Row(second=start * HOUR_SECONDS + slot * minutes * 60, values=values))
    generator.shuffle(rows)
    lines = ["timestamp,open,high,low,close,volume,market_cap"]
    for row in rows:
        assert row.second is not None
        row.line = len(lines) + 1
        text = ["" if math.isnan(value) else repr(value) for value in row.values.values()]
        lines.append(",".join([str(row.second * 1000), *text]))
    generated = GeneratedFile(
        rows=rows,
        header=lines[0].split(","),
        text="\n".join(lines) + "\n",
        gzipped=False,
        expected=model_outcome(rows),
    )
    with tempfile.TemporaryDirectory() as directory:
        outcome = read_outcome(write_file(Path(directory), generated))
    assert_matches_model(outcome, generated)


HEADERS = st.sampled_from(
    [
        "timestamp,open,high,low,close,volume",
        "timestamp,open,high,low,close,volume,market_cap",
        "timestamp,open,high,low,close",
        "open,high,low,close,volume",
        "Timestamp,Open,High,Low,Close,Volume,timestamp",
        "",
    ]
)
CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["1", "0", "-1", "1e308", "1e-320", "nan", '"', "'", "2021-01-01", "\x00"]),
    st.integers(-(10**20), 10**20).map(str),
    st.floats().map(repr),
)


@st.composite
def arbitrary_files(draw: st.DrawFn) -> tuple[bytes, bool]:
    """Raw bytes, random unicode, or a real header over rows of random cells; maybe gzipped
    (or named .gz without being gzip)."""
    kind = draw(st.sampled_from(["bytes", "text", "cells"]))
    if kind == "bytes":
        content = draw(st.binary(max_size=300))
    elif kind == "text":
        content = draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")
    else:
        rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=8), max_size=12))
        separator = draw(st.sampled_from(["\n", "\r\n", "\r"]))
        text = separator.join([draw(HEADERS), *(",".join(row) for row in rows)])
        content = text.encode("utf-8", "surrogatepass")
    gzipped = draw(st.booleans())
    if gzipped and draw(st.booleans()):
        content = gzip.compress(content)
    return content, gzipped


@PROPERTY_SETTINGS
@given(file=arbitrary_files())
def test_any_bytes_load_or_are_refused_cleanly(file: tuple[bytes, bool]) -> None:
    content, gzipped = file
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / ("XYZ-USD_1m.csv.gz" if gzipped else "XYZ-USD_1m.csv")
        path.write_bytes(content)
        outcome = read_outcome(path)
    event(f"outcome: {type(outcome).__name__}")
    if isinstance(outcome, CandleFileError):
        event(f"refused: {'bad rows' if outcome.problems else outcome.message[:24]}")
        assert str(outcome).startswith(f"{path}: ")
        for problem in outcome.problems:
            assert problem.line >= 2
            assert problem.reason
    else:
        assert not outcome.candles.empty
        assert outcome.candles["timestamp"].is_monotonic_increasing
        assert outcome.candles["timestamp"].is_unique
        prices = outcome.candles[["open", "high", "low", "close"]].to_numpy()
        assert np.isfinite(prices).all() and (prices > 0).all()


def test_a_blank_line_beside_an_oversized_integer_is_not_a_bad_row() -> None:
    """Found by the corrupted-files property: pandas read the blank line's timestamp as ''
    (not NaN) because the column also held an integer beyond 64 bits."""
    text = "timestamp,open,high,low,close,volume\n\n99999999999999999999,1,1,1,1,0\n"
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "ABC-USDT_1h.csv"
        path.write_text(text + "1975-01-01T00:00:00Z,1,1,1,1,0\n")
        outcome = read_outcome(path)

    assert isinstance(outcome, CandleFileError)
    assert [problem.line for problem in outcome.problems] == [3]
