"""The candle frame: one definition of an OHLCV candle, and the one gate before price_data.

A candle frame has a row per candle and these columns, in this order:

* ``symbol`` (text): only in a frame of several coins, which comes first (``MARKET_COLUMNS``);
* ``timestamp`` (datetime64[ns, UTC]): when the candle opens, on the grid of its interval;
* ``open``, ``high``, ``low``, ``close`` and ``volume`` (float64): required;
* ``market_cap`` (float64): optional, NaN where unknown.

`validate_candles` holds every rule a candle must keep to be stored, and every source of
candles goes through it: the CSV reader, the synthetic market, and whatever comes next (an
exchange API, a parquet dump). It names bad rows by position, so that each source can word
them its own way (a file by its line numbers). Where price_data has a NUMERIC column, the
limit of what it can hold is read from `db.schema`, not restated here.

Validation is vectorised over the whole frame; Python loops run over bad rows only, to word
the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from sqlalchemy import Numeric

from db.schema import PriceData

# The interval of price_data's candles; horizons are counted in it.
HOUR = pd.Timedelta(hours=1)

SYMBOL = "symbol"
TIMESTAMP = "timestamp"
PRICE_COLUMNS = ("open", "high", "low", "close")
REQUIRED_COLUMNS = (TIMESTAMP, *PRICE_COLUMNS, "volume")
OPTIONAL_COLUMNS = ("market_cap",)
# One coin's candles.
CANDLE_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
# The numbers of a candle, each stored in a price_data column of its own.
VALUE_COLUMNS = CANDLE_COLUMNS[1:]
# Many coins' candles in one long frame.
MARKET_COLUMNS = (SYMBOL, *CANDLE_COLUMNS)
TIMESTAMP_DTYPE = pd.DatetimeTZDtype("ns", "UTC")
VALUE_DTYPE = np.dtype(np.float64)

# Relative slack for the high/low envelope checks: sources store prices such as
# 5.330000000000001e-05 next to 5.33e-05, which are the same price.
RELATIVE_TOLERANCE = 1e-9
# How many bad rows a rejection's message lists before summarising the rest.
MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True)
class StoredColumn:
    """The price_data NUMERIC(precision, scale) column that a candle value is stored in."""

    name: str
    precision: int
    scale: int

    @property
    def limit(self) -> int:
        """Magnitudes at or above this do not fit: NUMERIC(p, s) holds less than 10**(p - s)."""
        return 10 ** (self.precision - self.scale)


def _stored(column: str) -> StoredColumn:
    kind = PriceData.__table__.c[column].type
    assert isinstance(kind, Numeric) and kind.precision is not None and kind.scale is not None
    return StoredColumn(column, kind.precision, kind.scale)


_PRICE_DATA_NAMES = ("open_price", "high_price", "low_price", "close_price", "volume", "market_cap")
# Candle value -> the price_data column it is stored in.
STORED_AS = {
    value: _stored(column) for value, column in zip(VALUE_COLUMNS, _PRICE_DATA_NAMES, strict=True)
}


@dataclass(frozen=True)
class CandleProblem:
    """One rule that one candle breaks.

    ``position`` counts rows from 0, as ``frame.iloc`` does; ``column`` is the value at fault.
    A repeated key also gives ``first``, the position of the row that has it first.
    """

    position: int
    column: str
    reason: str
    first: int | None = None

    def describe(self, name_row: Callable[[int], str] = "row {}".format) -> str:
        """The reason, naming any other row it refers to with ``name_row``."""
        if self.first is None:
            return self.reason
        return f"{self.reason} (first on {name_row(self.first)})"


class CandlesRejected(ValueError):
    """Candles refused whole.

    ``problems`` lists every rule broken by every bad row; it is empty when the frame as a
    whole is unusable (a column missing or of the wrong type), which ``message`` describes.
    """

    def __init__(self, message: str, problems: Sequence[CandleProblem] = ()) -> None:
        self.message = message
        self.problems = list(problems)
        rows = problems_by_row(self.problems)
        super().__init__(render_problems(message, [(f"row {row}", text) for row, text in rows]))

    def __reduce__(self) -> tuple[type[CandlesRejected], tuple[str, list[CandleProblem]]]:
        # Rebuild from the fields, so the error survives pickling (process pools).
        return type(self), (self.message, self.problems)

    @property
    def positions(self) -> list[int]:
        """The positions of the bad rows, in order."""
        return sorted({problem.position for problem in self.problems})


def validate_candles(frame: pd.DataFrame, interval: pd.Timedelta | None = HOUR) -> pd.DataFrame:
    """``frame`` as a candle frame, if every candle in it can be stored; nothing is repaired.

    The frame needs the required columns; any others are dropped, a missing ``market_cap``
    becomes NaN, the values become float64 and the timestamps (which must carry a time zone)
    UTC nanoseconds. A frame already in that form is returned as it is.

    Every timestamp must be on the grid of ``interval``, anchored at the Unix epoch (for the
    default of an hour, on the whole hour); None skips that rule where the interval is not
    known. Raises :class:`CandlesRejected` with every problem of every bad row.
    """
    candles = _conform(frame)
    problems = [
        CandleProblem(
            position,
            rule.column,
            rule.describe(position),
            None if rule.first is None else rule.first(position),
        )
        for rule in _rules(candles, interval)
        for position in map(int, np.flatnonzero(rule.failed))
    ]
    if problems:
        bad_rows = len({problem.position for problem in problems})
        raise CandlesRejected(f"{bad_rows} bad candle(s)", problems)
    return candles


def problems_by_row(
    problems: Iterable[CandleProblem], name_row: Callable[[int], str] = "row {}".format
) -> list[tuple[int, str]]:
    """(position, reasons) of each bad row in order, its reasons joined in the order given."""
    reasons: dict[int, list[str]] = {}
    for problem in problems:
        reasons.setdefault(problem.position, []).append(problem.describe(name_row))
    return [(position, "; ".join(texts)) for position, texts in sorted(reasons.items())]


def render_problems(message: str, rows: Sequence[tuple[str, str]]) -> str:
    """The message, then one line per (row name, reasons), the first MAX_LISTED_PROBLEMS."""
    lines = [message]
    lines += [f"  {name}: {reasons}" for name, reasons in rows[:MAX_LISTED_PROBLEMS]]
    if len(rows) > MAX_LISTED_PROBLEMS:
        lines.append(f"  and {len(rows) - MAX_LISTED_PROBLEMS} more")
    return "\n".join(lines)


def epoch_nanoseconds(timestamps: pd.Series) -> np.ndarray:
    """Nanoseconds since the Unix epoch of time-zone aware timestamps (NaT gives int64 min)."""
    return timestamps.to_numpy(dtype="datetime64[ns]").view("int64")


def format_interval(interval: pd.Timedelta) -> str:
    """Spell an interval like 5m, 1h, 4h or 1d."""
    for unit, size in (("d", pd.Timedelta(days=1)), ("h", HOUR), ("m", pd.Timedelta(minutes=1))):
        if interval % size == pd.Timedelta(0):
            return f"{interval // size}{unit}"
    return f"{interval.total_seconds():g}s"


# Conforming a frame ----------------------------------------------------------------------


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame's candle columns in order and typed, or itself when they already are."""
    missing = [name for name in REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        raise CandlesRejected(
            f"missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(str, frame.columns))})"
        )
    names = MARKET_COLUMNS if SYMBOL in frame.columns else CANDLE_COLUMNS
    dtypes = frame.dtypes
    if (
        tuple(frame.columns) == names
        and dtypes[TIMESTAMP] == TIMESTAMP_DTYPE
        and all(dtypes[name] == VALUE_DTYPE for name in VALUE_COLUMNS)
    ):
        return frame
    columns = {name: _typed(frame, name) for name in names}
    return pd.DataFrame(columns, index=frame.index)


def _typed(frame: pd.DataFrame, name: str) -> pd.Series | np.ndarray:
    if name == SYMBOL:
        return frame[SYMBOL]
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    column = frame[name]
    if name == TIMESTAMP:
        if not isinstance(column.dtype, pd.DatetimeTZDtype):
            raise CandlesRejected(
                f"timestamp must be time-zone aware datetimes, not {column.dtype}"
            )
        try:
            return column.dt.tz_convert("UTC").dt.as_unit("ns")
        except pd.errors.OutOfBoundsDatetime:
            raise CandlesRejected(
                "timestamp holds moments outside the years 1677-2262 (datetime64[ns])"
            ) from None
    if not is_numeric_dtype(column.dtype) or is_bool_dtype(column.dtype):
        raise CandlesRejected(f"{name} must be numbers, not {column.dtype}")
    return column.to_numpy(dtype=VALUE_DTYPE, na_value=np.nan)


# The rules -------------------------------------------------------------------------------


class _Rule(NamedTuple):
    """A vectorised rule: the rows that break it, the column at fault, how to word the failure
    of one row given its position, and for a repeat, the position of the row it repeats."""

    failed: np.ndarray
    column: str
    describe: Callable[[int], str]
    first: Callable[[int], int] | None = None


def _rules(candles: pd.DataFrame, interval: pd.Timedelta | None) -> list[_Rule]:
    """Every rule, in the order a bad row's reasons are listed."""
    values = {name: candles[name].to_numpy() for name in VALUE_COLUMNS}
    missing = {name: np.isnan(values[name]) for name in VALUE_COLUMNS if name in REQUIRED_COLUMNS}
    missing[TIMESTAMP] = candles[TIMESTAMP].isna().to_numpy()
    if SYMBOL in candles.columns:
        missing[SYMBOL] = candles[SYMBOL].isna().to_numpy()
    rules = [
        _missing_rule(name, missing[name])
        for name in (SYMBOL, *REQUIRED_COLUMNS)
        if name in missing
    ]
    rules += [_non_finite_rule(name, values[name]) for name in VALUE_COLUMNS]
    rules += [_non_positive_rule(name, values[name]) for name in PRICE_COLUMNS]
    rules += _envelope_rules(values)
    rules += [_negative_rule(name, values[name]) for name in ("volume", "market_cap")]
    rules += [_too_large_rule(name, values[name], STORED_AS[name].limit) for name in values]
    dated = ~missing[TIMESTAMP]
    rules += _duplicate_rules(candles, dated & ~missing[SYMBOL] if SYMBOL in missing else dated)
    if interval is not None:
        rules.append(_grid_rule(candles[TIMESTAMP], dated, interval))
    return rules


def _missing_rule(name: str, failed: np.ndarray) -> _Rule:
    return _Rule(failed, name, lambda _: f"{name} is missing")


def _non_finite_rule(name: str, values: np.ndarray) -> _Rule:
    return _Rule(
        np.isinf(values), name, lambda i: f"{name} {_number(values[i])} is not a finite number"
    )


def _non_positive_rule(name: str, values: np.ndarray) -> _Rule:
    return _Rule(values <= 0, name, lambda i: f"{name} {_number(values[i])} is not positive")


def _envelope_rules(values: dict[str, np.ndarray]) -> list[_Rule]:
    """High and low enclose open and close."""
    top = np.maximum(values["open"], values["close"])
    bottom = np.minimum(values["open"], values["close"])
    high, low = values["high"], values["low"]
    return [
        _Rule(
            _exceeds(top, high),
            "high",
            lambda i: f"high {_number(high[i])} is below max(open, close) {_number(top[i])}",
        ),
        _Rule(
            _exceeds(low, bottom),
            "low",
            lambda i: f"low {_number(low[i])} is above min(open, close) {_number(bottom[i])}",
        ),
    ]


def _exceeds(larger: np.ndarray, smaller: np.ndarray) -> np.ndarray:
    """Where ``larger`` is above ``smaller`` by more than the relative tolerance."""
    slack = RELATIVE_TOLERANCE * np.maximum(np.abs(larger), np.abs(smaller))
    return (larger - smaller) > slack


def _negative_rule(name: str, values: np.ndarray) -> _Rule:
    return _Rule(values < 0, name, lambda i: f"{name} {_number(values[i])} is negative")


def _too_large_rule(name: str, values: np.ndarray, limit: int) -> _Rule:
    return _Rule(
        np.isfinite(values) & (np.abs(values) >= limit),
        name,
        lambda i: f"{name} {_number(values[i])} is too large to store (the limit is {limit:.0e})",
    )


def _duplicate_rules(candles: pd.DataFrame, known: np.ndarray) -> list[_Rule]:
    """Every repeat of a key (the timestamp, with the symbol if any) after its first row;
    ``known`` marks the rows whose key is complete."""
    stamps = candles[TIMESTAMP]
    symbols = candles[SYMBOL] if SYMBOL in candles.columns else None
    # One column's duplicated() costs a fraction of a frame's, and most frames have one.
    keyed = stamps if symbols is None else candles[[SYMBOL, TIMESTAMP]]
    repeated = known & keyed.duplicated(keep="first").to_numpy()
    if not repeated.any():
        return []
    keys = [epoch_nanoseconds(stamps)]
    if symbols is not None:
        keys.insert(0, symbols.to_numpy())
    first = pd.Series(np.arange(len(candles))).groupby(keys, sort=False).transform("min")

    def describe(i: int) -> str:
        of = "" if symbols is None else f" of {symbols.iloc[i]}"
        return f"duplicate timestamp {stamps.iloc[i].isoformat()}{of}"

    return [_Rule(repeated, TIMESTAMP, describe, lambda i: int(first.iloc[i]))]


def _grid_rule(timestamps: pd.Series, dated: np.ndarray, interval: pd.Timedelta) -> _Rule:
    """Timestamps off the interval's grid, anchored at the Unix epoch (so on the hour)."""
    misaligned = dated & (epoch_nanoseconds(timestamps) % interval.value != 0)
    return _Rule(
        misaligned,
        TIMESTAMP,
        lambda i: (
            f"timestamp {timestamps.iloc[i].isoformat()} is not on the "
            f"{format_interval(interval)} grid"
        ),
    )


def _number(value: float) -> str:
    return repr(float(value))
