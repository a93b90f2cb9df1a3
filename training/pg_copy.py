"""PostgreSQL's binary COPY format for candle frames, encoded with numpy.

Binary COPY spares the server all text parsing: each field travels as its length and its
internal representation. A NUMERIC is its base-10000 digits with a weight and a display
scale; the server strips leading and trailing zero digits itself, so every value of a column
gets the same fixed width (enough digits for the column's precision) and a whole chunk of
rows is one numpy structured array.

The digits are those the text path would store: the float's shortest round-trip decimal
(Python's `repr`) rounded to the column's scale, half away from zero, as NUMERIC's typmod
rounds text input. Below 2**52 that is also what PostgreSQL's own float8 -> text -> numeric
cast gives; above, where a float has no fractional digits left, the two shortest-decimal
algorithms may pick different ends of a tie (18266596576136088 against 1.826659657613609e16).
numpy settles almost every value (see `decimal_units`); the few it cannot are rounded one by
one with `decimal.Decimal`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal

import numpy as np
import pandas as pd

# Signature, flags, header extension length; a field count of -1 ends the data.
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" * 2
TRAILER = b"\xff\xff"
POSTGRES_EPOCH = pd.Timestamp("2000-01-01", tz="UTC")
NULL_LENGTH = -1

NUMERIC_BASE = 10_000
DIGITS_PER_GROUP = 4
NUMERIC_POSITIVE = 0x0000
NUMERIC_NEGATIVE = 0x4000
# Decimals beyond a column's scale that `decimal_units` still rounds in integers.
EXTRA_PLACES = 4


@dataclass(frozen=True)
class NumericColumn:
    """A NUMERIC(precision, scale) column's fixed-width binary encoding."""

    precision: int
    scale: int

    @property
    def integer_groups(self) -> int:
        return -(-(self.precision - self.scale) // DIGITS_PER_GROUP)

    @property
    def fraction_groups(self) -> int:
        return -(-self.scale // DIGITS_PER_GROUP)

    @property
    def limit(self) -> int:
        """Magnitudes must stay below this once rounded, or the column overflows."""
        return 10 ** (self.precision - self.scale)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(
            [
                ("length", ">i4"),
                ("ndigits", ">i2"),
                ("weight", ">i2"),
                ("sign", ">u2"),
                ("dscale", ">i2"),
                ("digits", ">i2", (self.integer_groups + self.fraction_groups,)),
            ]
        )


def row_dtype(numeric_columns: Mapping[str, NumericColumn]) -> np.dtype:
    """One binary COPY tuple: field count, timestamptz, then each NUMERIC in order."""
    return np.dtype(
        [("fields", ">i2"), ("timestamp_length", ">i4"), ("timestamp", ">i8")]
        + [(name, column.dtype) for name, column in numeric_columns.items()]
    )


def encode_rows(frame: pd.DataFrame, numeric_columns: Mapping[str, NumericColumn]) -> bytes:
    """Binary COPY tuples of `frame`'s timestamp and NUMERIC columns; NaN becomes NULL.

    Raises ValueError naming the first value that would overflow its column.
    """
    dtype = row_dtype(numeric_columns)
    rows = np.zeros(len(frame), dtype=dtype)
    rows["fields"] = 1 + len(numeric_columns)
    rows["timestamp_length"] = 8
    moments = frame["timestamp"].dt.tz_convert("UTC")
    rows["timestamp"] = (moments - POSTGRES_EPOCH) // pd.Timedelta(microseconds=1)
    nulls: dict[str, np.ndarray] = {}
    for name, column in numeric_columns.items():
        values = frame[name].to_numpy(dtype=float)
        missing = np.isnan(values)
        _encode_numeric(rows[name], values, missing, column, name)
        if missing.any():
            nulls[name] = missing
    if not nulls:
        return rows.tobytes()
    # A NULL field is its length alone: drop the payload bytes of each missing value.
    keep = np.ones((len(rows), dtype.itemsize), dtype=bool)
    for name, missing in nulls.items():
        start = int(dtype.fields[name][1]) + 4  # type: ignore[index]
        keep[np.ix_(missing, np.arange(start, start + dtype[name].itemsize - 4))] = False
    return rows.view(np.uint8).reshape(len(rows), dtype.itemsize)[keep].tobytes()


def _encode_numeric(
    field: np.ndarray, values: np.ndarray, missing: np.ndarray, column: NumericColumn, name: str
) -> None:
    integer, fraction, certain = decimal_units(values, column.scale)
    settled = certain & ~missing
    if np.any(integer[settled] >= column.limit):
        bad = values[np.flatnonzero(settled & (integer >= column.limit))[0]]
        raise _overflow(name, float(bad), column)
    groups = _digit_groups(integer, fraction, column)  # zeros where not certain
    for index in np.flatnonzero(~certain & ~missing):
        groups[index] = _digit_groups_exactly(float(values[index]), column, name)
    field["length"] = np.where(missing, NULL_LENGTH, field.dtype.itemsize - 4)
    field["ndigits"] = groups.shape[1]
    field["weight"] = column.integer_groups - 1
    field["sign"] = np.where(values < 0, NUMERIC_NEGATIVE, NUMERIC_POSITIVE)
    field["dscale"] = column.scale
    field["digits"] = groups


def _digit_groups(integer: np.ndarray, fraction: np.ndarray, column: NumericColumn) -> np.ndarray:
    """Base-10000 digits, most significant first, of integer + fraction * 10**-scale."""
    padded = fraction * 10 ** (DIGITS_PER_GROUP * column.fraction_groups - column.scale)
    powers = NUMERIC_BASE ** np.arange(column.integer_groups - 1, -1, -1, dtype=np.int64)
    fraction_powers = NUMERIC_BASE ** np.arange(column.fraction_groups - 1, -1, -1, dtype=np.int64)
    return np.concatenate(
        [
            integer[:, None] // powers % NUMERIC_BASE,
            padded[:, None] // fraction_powers % NUMERIC_BASE,
        ],
        axis=1,
    )


def _digit_groups_exactly(value: float, column: NumericColumn, name: str) -> list[int]:
    """The digits of one value through its shortest decimal, as the text path reads it."""
    magnitude = abs(Decimal(repr(value)))
    if magnitude >= column.limit:
        raise _overflow(name, value, column)
    exact = Context(prec=column.precision + 1, rounding=ROUND_HALF_UP)
    rounded = magnitude.quantize(Decimal(1).scaleb(-column.scale), context=exact)
    if rounded >= column.limit:
        raise _overflow(name, value, column)
    units = int(rounded.scaleb(DIGITS_PER_GROUP * column.fraction_groups, context=exact))
    count = column.integer_groups + column.fraction_groups
    return [units // NUMERIC_BASE**power % NUMERIC_BASE for power in range(count - 1, -1, -1)]


def _overflow(name: str, value: float, column: NumericColumn) -> ValueError:
    return ValueError(
        f"{name} {value!r} does not fit NUMERIC({column.precision}, {column.scale}): "
        f"it must stay below {column.limit:.0e}"
    )


def decimal_units(values: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each float's magnitude rounded to `scale` places, as an integer part and a fraction in
    10**-scale units, and whether numpy is certain that is what the text path stores.

    The text path rounds the float's shortest round-trip decimal to `scale` places, half
    away from zero. Two ways to be certain of the result without printing it:

    - that decimal lies within half a float spacing of the float, and `magnitude * 10**scale`
      is off by at most half of its own spacing; when the scaled float is further than both
      errors from a half unit, rounding it gives the same units;
    - a decimal with `p` places, `k * 10**-p`, converts to the float (`k / 10**p == value`)
      and the float's spacing is below half of `10**-p`: it is then the only decimal of at
      most `p` places near the float, so it is the shortest one, and `k` is rounded to
      `scale` places in integers (this settles exact ties such as 0.123456785).

    NaN, infinities and what neither way settles (scaled values near 2**53 and beyond, more
    than `scale + EXTRA_PLACES` places) are not certain; their units are left at zero.
    """
    magnitude = np.abs(values)
    integer = np.zeros(len(values), dtype=np.int64)
    fraction = np.zeros(len(values), dtype=np.int64)
    unit = 10**scale
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(magnitude)
        spacing = np.spacing(magnitude)
        scaled = magnitude * float(unit)
        error = np.spacing(scaled) + unit * spacing  # twice the bound, for margin
        certain = finite & (scaled < 2.0**53) & (np.abs(scaled - np.floor(scaled) - 0.5) > error)
        # Below 2**53 these are exact integers (each test bounds them).
        integer[certain], fraction[certain] = np.divmod(
            np.rint(scaled[certain]).astype(np.int64), unit
        )
        pending = np.flatnonzero(~certain & finite)
        for places in range(scale + EXTRA_PLACES, -1, -1):
            if not len(pending):
                break
            step = 10.0**places
            candidate = np.rint(magnitude[pending] * step)
            exact = (spacing[pending] < 0.5 / step) & (candidate / step == magnitude[pending])
            whole, part = np.divmod(candidate[exact].astype(np.int64), 10**places)
            if places > scale:
                shift = 10 ** (places - scale)
                part = (part + shift // 2) // shift  # half away from zero, on the magnitude
                carry = part // unit
                whole, part = whole + carry, part - carry * unit
            else:
                part = part * 10 ** (scale - places)
            settled = pending[exact]
            integer[settled], fraction[settled] = whole, part
            certain[settled] = True
            pending = pending[~exact]
    return integer, fraction, certain
