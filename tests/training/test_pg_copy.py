"""Binary COPY encoding of candles: PostgreSQL stores exactly what the text path would.

The reference is the float's shortest round-trip decimal (`repr`) rounded to the column's
scale, half away from zero. Every encoded value is copied into a table typed like
price_data and compared with it; below 2**52 the server's own text path,
`x::float8::text::numeric(p, s)`, must give the same. Above, a float has no fractional
digits left and the two shortest-decimal algorithms may pick different ends of a tie
(PostgreSQL prints 18266596576136088 where Python prints 1.826659657613609e+16).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Context, Decimal

import numpy as np
import pandas as pd
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pg_databases import throwaway_database
from training.pg_copy import HEADER, TRAILER, NumericColumn, decimal_units, encode_rows

COLUMNS = {
    "price": NumericColumn(20, 8),
    "volume": NumericColumn(30, 8),
    "market_cap": NumericColumn(30, 2),
}

# Values the numpy shortcuts get wrong if they are careless: exact decimal ties (whose float
# lies on either side of the tie), long fractions, the largest magnitudes each column
# holds, tiny values, and magnitudes where a float no longer resolves 10**-8.
EDGE_VALUES = [
    0.0,
    1e-9,
    4.9999999e-9,
    5e-9,
    1.5e-8,
    0.123456785,
    0.123456775,
    2.675,
    1.0000000050000001,
    0.30000000000000004,
    5.330000000000001e-05,
    99999999.999999995,
    123456789.12345679,
    45035996.273704985,
    2.0**53 / 1e8,
    999999999999.99,
    9.999999999999e11,
    1e15 + 0.5,
    2.0**60,
    1.2345678901234567e21,
]


def expected(values: list[float], column: NumericColumn) -> list[Decimal]:
    exact = Context(prec=column.precision + 1, rounding=ROUND_HALF_UP)
    unit = Decimal(1).scaleb(-column.scale)
    return [Decimal(repr(value)).quantize(unit, context=exact) for value in values]


def server_text_path(
    connection: psycopg.Connection, values: list[float], column: NumericColumn
) -> list[Decimal]:
    """The server's float8 -> text -> numeric cast of each value."""
    kind = f"numeric({column.precision}, {column.scale})"
    rows = connection.execute(
        f"SELECT v::float8::text::{kind} FROM unnest(%s::float8[]) WITH ORDINALITY AS u(v, i)"
        " ORDER BY i",
        (values,),
    ).fetchall()
    return [row[0] for row in rows]


def copied(
    connection: psycopg.Connection, values: list[float], column: NumericColumn
) -> list[object]:
    """The values as stored after a binary COPY of `encode_rows`."""
    kind = f"numeric({column.precision}, {column.scale})"
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2021-01-01", periods=len(values), freq="h", tz="UTC"),
            "value": values,
        }
    )
    with connection.transaction(force_rollback=True):
        connection.execute(f"CREATE TEMP TABLE encoded (timestamp timestamptz, value {kind})")
        with connection.cursor().copy("COPY encoded FROM STDIN (FORMAT binary)") as copy:
            copy.write(HEADER + encode_rows(frame, {"value": column}) + TRAILER)
        rows = connection.execute("SELECT value FROM encoded ORDER BY timestamp").fetchall()
    return [row[0] for row in rows]


@pytest.fixture(scope="module")
def connection(postgres_template: str) -> Iterator[psycopg.Connection]:
    with throwaway_database("cryptopredict_pgcopy", postgres_template) as url:
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as connection:
            yield connection


def assert_stored_as_expected(
    connection: psycopg.Connection, values: list[float], column: NumericColumn
) -> None:
    wanted = expected(values, column)
    assert copied(connection, values, column) == wanted
    below = [index for index, value in enumerate(values) if abs(value) < 2.0**52]
    from_server = server_text_path(connection, [values[index] for index in below], column)
    assert from_server == [wanted[index] for index in below]


def fits(value: float, column: NumericColumn) -> bool:
    return abs(value) < column.limit / 10  # clear of overflow after rounding


@pytest.mark.parametrize("name", list(COLUMNS))
def test_edge_values_store_what_the_text_cast_stores(
    connection: psycopg.Connection, name: str
) -> None:
    column = COLUMNS[name]
    values = [value for value in EDGE_VALUES if fits(value, column)]
    values += [-value for value in values]

    assert_stored_as_expected(connection, values, column)


@pytest.mark.parametrize("name", list(COLUMNS))
def test_random_values_of_every_magnitude_store_what_the_text_cast_stores(
    connection: psycopg.Connection, name: str
) -> None:
    column = COLUMNS[name]
    generator = np.random.default_rng(7)
    exponents = generator.uniform(-10, column.precision - column.scale - 1, 20_000)
    full = 10.0**exponents
    # As sources print them: 8, 4 and 2 decimals, and 10 significant digits.
    printed = [np.round(full, 8), np.round(full, 4), np.round(full, 2)]
    printed.append(np.array([float(f"{value:.10g}") for value in full]))
    values = np.concatenate([full, *printed]).tolist()

    assert_stored_as_expected(connection, values, column)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    values=st.lists(
        st.floats(min_value=0, max_value=1e11, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=200,
    )
)
def test_any_price_stores_what_the_text_cast_stores(
    connection: psycopg.Connection, values: list[float]
) -> None:
    column = COLUMNS["price"]
    assert_stored_as_expected(connection, values, column)


def test_missing_values_become_null_and_the_rest_stay_aligned(
    connection: psycopg.Connection,
) -> None:
    values = [1.5, float("nan"), 2.25, float("nan"), float("nan"), 3.125]

    stored = copied(connection, values, COLUMNS["market_cap"])

    assert [None if value is None else float(value) for value in stored] == [
        1.5,
        None,
        2.25,
        None,
        None,
        3.13,
    ]


@pytest.mark.parametrize("value", [1e12, 999999999999.999999996, 5e20])
def test_a_price_the_column_cannot_hold_is_refused_by_name(value: float) -> None:
    frame = pd.DataFrame({"timestamp": [pd.Timestamp("2021-01-01", tz="UTC")], "close": [value]})

    with pytest.raises(ValueError, match=r"close .* does not fit NUMERIC\(20, 8\)"):
        encode_rows(frame, {"close": COLUMNS["price"]})


def test_numpy_settles_the_values_sources_print() -> None:
    """The per-value Decimal fallback is for rare values, not for ordinary candles."""
    generator = np.random.default_rng(11)
    prices = np.round(10.0 ** generator.uniform(-6, 6, 100_000), 8)
    volumes = np.round(10.0 ** generator.uniform(0, 12, 100_000), 2)

    assert decimal_units(prices, 8)[2].all()
    assert decimal_units(volumes, 8)[2].all()
