"""Bulk writes of candles, coins and sector mappings; the only code that writes price_data.

Each dialect gets its fast path: PostgreSQL streams the rows with COPY into a temporary
staging table and upserts them with one INSERT ... SELECT ... ON CONFLICT; SQLite runs one
executemany of an upsert. Identical rows are left untouched, so loading a file twice changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, insert, select, update

from db.schema import Cryptocurrency, CryptoSector, CryptoSectorMapping, PriceData

CANDLE_COLUMNS = ("open", "high", "low", "close", "volume", "market_cap")
PRICE_DATA_COLUMNS = (
    "open_price",
    "high_price",
    "low_price",
    "close_price",
    "volume",
    "market_cap",
)
COPY_CHUNK_ROWS = 100_000
SYMBOL_MAX_LENGTH = 10

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )


def ensure_cryptocurrencies(
    connection: Connection, names_by_symbol: dict[str, str]
) -> dict[str, int]:
    """Ids for every symbol, creating the missing `cryptocurrencies` rows."""
    too_long = [symbol for symbol in names_by_symbol if len(symbol) > SYMBOL_MAX_LENGTH]
    if too_long:
        raise ValueError(
            f"symbols longer than {SYMBOL_MAX_LENGTH} characters: {', '.join(sorted(too_long))}"
        )
    existing = _crypto_ids(connection, names_by_symbol)
    missing = [
        {"symbol": symbol, "name": name}
        for symbol, name in names_by_symbol.items()
        if symbol not in existing
    ]
    if missing:
        connection.execute(insert(Cryptocurrency), missing)
        existing = _crypto_ids(connection, names_by_symbol)
    return existing


def _crypto_ids(connection: Connection, symbols: Iterable[str]) -> dict[str, int]:
    rows = connection.execute(
        select(Cryptocurrency.symbol, Cryptocurrency.id).where(
            Cryptocurrency.symbol.in_(list(symbols))
        )
    )
    return {symbol: crypto_id for symbol, crypto_id in rows}


def apply_coin_metadata(connection: Connection, coins: pd.DataFrame) -> int:
    """Names and sectors from a coins table (symbol, name, sector) for coins we hold.

    Coins not in `cryptocurrencies` are skipped; a coin without a sector keeps none. An
    unknown sector name is an error, since it would silently drop the coin from its sector.
    Returns the number of coins mapped to a sector.
    """
    sector_ids = dict(connection.execute(select(CryptoSector.name, CryptoSector.id)).all())
    with_sector = coins[coins["sector"].notna() & (coins["sector"].astype(str) != "")]
    unknown = sorted(set(with_sector["sector"]) - set(sector_ids))
    if unknown:
        raise ValueError(
            f"unknown sectors in coins file: {', '.join(unknown)}; "
            f"known sectors are: {', '.join(sorted(sector_ids))}"
        )
    crypto_ids = _crypto_ids(connection, coins["symbol"])
    held = coins[coins["symbol"].isin(list(crypto_ids))]
    for coin in held.itertuples(index=False):
        has_sector = isinstance(coin.sector, str) and coin.sector in sector_ids
        values: dict[str, object] = {"sectors": [coin.sector] if has_sector else []}
        if isinstance(coin.name, str) and coin.name:
            values["name"] = coin.name
        connection.execute(
            update(Cryptocurrency)
            .where(Cryptocurrency.id == crypto_ids[coin.symbol])
            .values(values)
        )
    mapped = {
        (crypto_id, sector_id)
        for crypto_id, sector_id in connection.execute(
            select(CryptoSectorMapping.crypto_id, CryptoSectorMapping.sector_id)
        )
    }
    wanted = {
        (crypto_ids[coin.symbol], sector_ids[coin.sector])
        for coin in with_sector.itertuples(index=False)
        if coin.symbol in crypto_ids
    }
    new = [{"crypto_id": crypto, "sector_id": sector} for crypto, sector in wanted - mapped]
    if new:
        connection.execute(insert(CryptoSectorMapping), new)
    return len(wanted)


def upsert_candles(
    connection: Connection,
    crypto_id: int,
    candles: pd.DataFrame,
    progress: ProgressCallback | None = None,
) -> UpsertCounts:
    """Insert or update hourly candles of one coin; rows equal to what is stored are skipped."""
    if candles.empty:
        return UpsertCounts()
    if connection.dialect.name == "postgresql":
        counts = _upsert_postgres(connection, crypto_id, candles, progress)
    else:
        counts = _upsert_sqlite(connection, crypto_id, candles, progress)
    _refresh_latest_quote(connection, crypto_id)
    return counts


def _upsert_postgres(
    connection: Connection,
    crypto_id: int,
    candles: pd.DataFrame,
    progress: ProgressCallback | None,
) -> UpsertCounts:
    """Append with one binary COPY straight into price_data when the coin has no stored
    candle in the frame's span and every value's NUMERIC is certain; otherwise stage and
    upsert.

    Either way the stored rows are the same: an append can only insert, and the encoded
    NUMERICs are the ones the staged path's float8 -> text -> numeric cast gives.
    """
    cursor = connection.connection.cursor()
    # A concurrent ingest of this coin waits here until we commit, and then sees our rows;
    # NO KEY UPDATE leaves foreign-key checks of other writers (FOR KEY SHARE) unblocked.
    cursor.execute("SELECT 1 FROM cryptocurrencies WHERE id = %s FOR NO KEY UPDATE", (crypto_id,))
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM price_data"
        " WHERE crypto_id = %s AND timestamp BETWEEN %s AND %s)",
        (crypto_id, candles["timestamp"].min(), candles["timestamp"].max()),
    )
    row = cursor.fetchone()
    if row is not None and not row[0]:
        appended = _append_postgres(connection, crypto_id, candles, progress)
        if appended is not None:
            return appended
    return _upsert_staged(connection, crypto_id, candles, progress)


def _append_postgres(
    connection: Connection,
    crypto_id: int,
    candles: pd.DataFrame,
    progress: ProgressCallback | None,
) -> UpsertCounts | None:
    """Binary COPY into price_data; None (nothing written) if a value's NUMERIC is not certain."""
    chunks = []
    for start in range(0, len(candles), COPY_CHUNK_ROWS):
        encoded = _price_data_rows(crypto_id, candles.iloc[start : start + COPY_CHUNK_ROWS])
        if encoded is None:
            return None
        chunks.append(encoded)
    cursor = connection.connection.cursor()
    columns = ", ".join(("crypto_id", "timestamp", *PRICE_DATA_COLUMNS))
    with cursor.copy(f"COPY price_data ({columns}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(BINARY_COPY_HEADER)
        for start, encoded in zip(range(0, len(candles), COPY_CHUNK_ROWS), chunks, strict=True):
            copy.write(encoded)
            if progress:
                progress(min(COPY_CHUNK_ROWS, len(candles) - start))
        copy.write(BINARY_COPY_TRAILER)
    return UpsertCounts(inserted=len(candles))


def _upsert_staged(
    connection: Connection,
    crypto_id: int,
    candles: pd.DataFrame,
    progress: ProgressCallback | None,
) -> UpsertCounts:
    cursor = connection.connection.cursor()
    # float8 staging, filled by binary COPY straight from numpy; the INSERT casts through
    # text, whose shortest round-trip form is Python's repr, so NUMERIC gets the same digits
    # the CSV file had (a direct float8 -> numeric cast keeps only 15 significant digits).
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS staging_price_data ("
        " timestamp timestamptz, open_price float8, high_price float8,"
        " low_price float8, close_price float8, volume float8, market_cap float8"
        ") ON COMMIT DROP"
    )
    cursor.execute("TRUNCATE staging_price_data")
    cursor.execute("SET LOCAL extra_float_digits = 1")
    columns = ", ".join(("timestamp", *PRICE_DATA_COLUMNS))
    with cursor.copy(f"COPY staging_price_data ({columns}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(BINARY_COPY_HEADER)
        for start in range(0, len(candles), COPY_CHUNK_ROWS):
            chunk = candles.iloc[start : start + COPY_CHUNK_ROWS]
            copy.write(_binary_rows(chunk))
            if progress:
                progress(len(chunk))
        copy.write(BINARY_COPY_TRAILER)
    casts = ", ".join(f"NULLIF({column}, 'NaN')::text::numeric" for column in PRICE_DATA_COLUMNS)
    targets = ", ".join(f"{column} = EXCLUDED.{column}" for column in PRICE_DATA_COLUMNS)
    stored = ", ".join(f"price_data.{column}" for column in PRICE_DATA_COLUMNS)
    incoming = ", ".join(f"EXCLUDED.{column}" for column in PRICE_DATA_COLUMNS)
    cursor.execute(
        f"""
        WITH upserted AS (
            INSERT INTO price_data (crypto_id, {columns})
            SELECT %s, timestamp, {casts} FROM staging_price_data
            ON CONFLICT (crypto_id, timestamp) DO UPDATE SET {targets}
            WHERE ({stored}) IS DISTINCT FROM ({incoming})
            RETURNING (xmax = 0) AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
        FROM upserted
        """,
        (crypto_id,),
    )
    row = cursor.fetchone()
    assert row is not None
    inserted, updated = int(row[0]), int(row[1])
    return UpsertCounts(inserted, updated, len(candles) - inserted - updated)


# PostgreSQL's binary COPY format: signature, flags, header extension length; -1 ends it.
BINARY_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" * 2
BINARY_COPY_TRAILER = b"\xff\xff"
POSTGRES_EPOCH = pd.Timestamp("2000-01-01", tz="UTC")
_FIELD_COUNT = 1 + len(CANDLE_COLUMNS)
_BINARY_ROW = np.dtype(
    [("fields", ">i2"), ("timestamp_length", ">i4"), ("timestamp", ">i8")]
    + [item for name in CANDLE_COLUMNS for item in ((f"{name}_length", ">i4"), (name, ">f8"))]
)


def _binary_rows(chunk: pd.DataFrame) -> bytes:
    """Fixed-width binary COPY tuples: timestamptz as microseconds since 2000, float8 prices.

    A missing value travels as float8 NaN and becomes NULL in the INSERT.
    """
    rows = np.empty(len(chunk), dtype=_BINARY_ROW)
    rows["fields"] = _FIELD_COUNT
    rows["timestamp_length"] = 8
    moments = chunk["timestamp"].dt.tz_convert("UTC")
    rows["timestamp"] = (moments - POSTGRES_EPOCH) // pd.Timedelta(microseconds=1)
    for name in CANDLE_COLUMNS:
        rows[f"{name}_length"] = 8
        rows[name] = chunk[name].to_numpy(dtype=float)
    return rows.tobytes()


# NUMERIC in binary COPY: ndigits, weight, sign, display scale, then base-10000 digits, most
# significant first. PostgreSQL strips leading and trailing zero digits itself, so every value
# of a column gets the same fixed width: four integer digits (values below 10**16) and the
# fraction in whole digits. Its typmod then rounds to the column's scale, as for text input.
NUMERIC_BASE = 10_000
NUMERIC_INTEGER_DIGITS = 4
NUMERIC_NEGATIVE = 0x4000
_PRICE_DATA_TYPES = {
    candle: PriceData.__table__.c[column].type
    for candle, column in zip(CANDLE_COLUMNS, PRICE_DATA_COLUMNS, strict=True)
}
_NUMERIC_SCALES = {
    candle: int(getattr(kind, "scale", None) or 0) for candle, kind in _PRICE_DATA_TYPES.items()
}
_FRACTION_DIGITS = {candle: -(-scale // 4) for candle, scale in _NUMERIC_SCALES.items()}


def _numeric_dtype(fraction_digits: int) -> list[tuple[str, str] | tuple[str, str, int]]:
    return [
        ("length", ">i4"),
        ("ndigits", ">i2"),
        ("weight", ">i2"),
        ("sign", ">u2"),
        ("dscale", ">i2"),
        ("digits", ">i2", NUMERIC_INTEGER_DIGITS + fraction_digits),
    ]


_APPEND_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("crypto_id_length", ">i4"),
        ("crypto_id", ">i4"),
        ("timestamp_length", ">i4"),
        ("timestamp", ">i8"),
    ]
    + [(name, np.dtype(_numeric_dtype(_FRACTION_DIGITS[name]))) for name in CANDLE_COLUMNS]
)

_FIELD_OFFSETS = {name: int(field[1]) for name, field in (_APPEND_ROW.fields or {}).items()}


EXTRA_PLACES = 4  # decimals beyond a column's scale that the append path still rounds itself


def decimal_units(values: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each float's magnitude rounded to `scale` decimal places, as an integer part and a
    fraction in 10**-scale units, and whether that is certain to be what the staged path
    stores.

    The staged path prints the float's shortest round-trip decimal (PostgreSQL's float8
    output, Python's `repr`) and NUMERIC rounds that to `scale` places, half away from zero.
    Two ways to be certain of the result without printing:

    - that decimal lies within half a float spacing of the float, and `magnitude * 10**scale`
      is off by at most half of its own spacing; when the scaled float is further than both
      errors from a half unit, rounding it gives the same units;
    - a decimal with `p` places, `k * 10**-p`, converts to the float (`k / 10**p == value`)
      and the float's spacing is below half of `10**-p`: it is then the only decimal of at
      most `p` places near the float, so it is the shortest one, and `k` is rounded to
      `scale` places in integers (this settles exact ties such as 0.123456785).

    Returns (integer, fraction, certain); NaN, infinities and what neither way settles
    (values near 2**53 units and beyond, more than `scale + EXTRA_PLACES` places) are not
    certain.
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
        for places in range(scale + EXTRA_PLACES, -1, -1):
            step = 10.0**places
            candidate = np.rint(magnitude * step)
            exact = ~certain & finite & (spacing < 0.5 / step) & (candidate / step == magnitude)
            whole, part = np.divmod(candidate[exact].astype(np.int64), 10**places)
            if places > scale:
                shift = 10 ** (places - scale)
                part = (part + shift // 2) // shift  # half away from zero, on the magnitude
                carry = part // unit
                whole, part = whole + carry, part - carry * unit
            else:
                part = part * 10 ** (scale - places)
            integer[exact], fraction[exact] = whole, part
            certain |= exact
    return integer, fraction, certain


def _price_data_rows(crypto_id: int, chunk: pd.DataFrame) -> bytes | None:
    """Binary COPY tuples of price_data (crypto_id, timestamp, the six NUMERICs); None when
    a value's rounding is not certain (see `decimal_units`). NaN becomes NULL."""
    rows = np.zeros(len(chunk), dtype=_APPEND_ROW)
    rows["fields"] = 2 + len(CANDLE_COLUMNS)
    rows["crypto_id_length"] = 4
    rows["crypto_id"] = crypto_id
    rows["timestamp_length"] = 8
    moments = chunk["timestamp"].dt.tz_convert("UTC")
    rows["timestamp"] = (moments - POSTGRES_EPOCH) // pd.Timedelta(microseconds=1)
    nulls = {}
    for name in CANDLE_COLUMNS:
        values = chunk[name].to_numpy(dtype=float)
        missing = np.isnan(values)
        scale = _NUMERIC_SCALES[name]
        integer, fraction, certain = decimal_units(values, scale)
        if not np.all(certain | missing) or np.any(integer >= NUMERIC_BASE**NUMERIC_INTEGER_DIGITS):
            return None
        field = rows[name]
        fraction_digits = _FRACTION_DIGITS[name]
        field["length"] = np.where(missing, -1, _APPEND_ROW[name].itemsize - 4)
        field["ndigits"] = NUMERIC_INTEGER_DIGITS + fraction_digits
        field["weight"] = NUMERIC_INTEGER_DIGITS - 1
        field["sign"] = np.where(values < 0, NUMERIC_NEGATIVE, 0)
        field["dscale"] = scale
        fraction = fraction * 10 ** (4 * fraction_digits - scale)
        digits = field["digits"]
        for position in range(NUMERIC_INTEGER_DIGITS + fraction_digits):
            if position < NUMERIC_INTEGER_DIGITS:
                power = NUMERIC_INTEGER_DIGITS - 1 - position
                digits[:, position] = integer // NUMERIC_BASE**power % NUMERIC_BASE
            else:
                power = NUMERIC_INTEGER_DIGITS + fraction_digits - 1 - position
                digits[:, position] = fraction // NUMERIC_BASE**power % NUMERIC_BASE
        if missing.any():
            nulls[name] = missing
    if not nulls:
        return rows.tobytes()
    # A NULL field is its length (-1) alone: drop the payload bytes of each missing value.
    keep = np.ones((len(rows), _APPEND_ROW.itemsize), dtype=bool)
    for name, missing in nulls.items():
        start = _FIELD_OFFSETS[name] + 4
        end = _FIELD_OFFSETS[name] + _APPEND_ROW[name].itemsize
        keep[np.ix_(missing, np.arange(start, end))] = False
    return rows.view(np.uint8).reshape(len(rows), _APPEND_ROW.itemsize)[keep].tobytes()


# SQLAlchemy's own storage format for DateTime on SQLite; the upsert key must match it exactly.
SQLITE_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def _upsert_sqlite(
    connection: Connection,
    crypto_id: int,
    candles: pd.DataFrame,
    progress: ProgressCallback | None,
) -> UpsertCounts:
    before = connection.exec_driver_sql("SELECT total_changes()").scalar_one()
    timestamps = candles["timestamp"].dt.tz_convert(UTC).dt.strftime(SQLITE_TIMESTAMP_FORMAT)
    values = candles[list(CANDLE_COLUMNS)].astype(object)
    values = values.where(values.notna(), None)
    rows = [
        (crypto_id, timestamp, *prices)
        for timestamp, prices in zip(timestamps, values.itertuples(index=False), strict=True)
    ]
    columns = ", ".join(("crypto_id", "timestamp", *PRICE_DATA_COLUMNS))
    placeholders = ", ".join("?" * (2 + len(PRICE_DATA_COLUMNS)))
    targets = ", ".join(f"{column} = excluded.{column}" for column in PRICE_DATA_COLUMNS)
    changed = " OR ".join(
        f"price_data.{column} IS NOT excluded.{column}" for column in PRICE_DATA_COLUMNS
    )
    existing = connection.exec_driver_sql(
        "SELECT count(*) FROM price_data WHERE crypto_id = ?", (crypto_id,)
    ).scalar_one()
    connection.exec_driver_sql(
        f"INSERT INTO price_data ({columns}) VALUES ({placeholders}) "
        f"ON CONFLICT (crypto_id, timestamp) DO UPDATE SET {targets} WHERE {changed}",
        rows,
    )
    if progress:
        progress(len(rows))
    written = connection.exec_driver_sql("SELECT total_changes()").scalar_one() - before
    after = connection.exec_driver_sql(
        "SELECT count(*) FROM price_data WHERE crypto_id = ?", (crypto_id,)
    ).scalar_one()
    inserted = after - existing
    updated = written - inserted
    return UpsertCounts(inserted, updated, len(rows) - inserted - updated)


def _refresh_latest_quote(connection: Connection, crypto_id: int) -> None:
    """Keep `cryptocurrencies.current_price` and friends at the newest stored candle."""
    newest = connection.execute(
        select(PriceData.close_price, PriceData.market_cap, PriceData.timestamp)
        .where(PriceData.crypto_id == crypto_id)
        .order_by(PriceData.timestamp.desc())
        .limit(1)
    ).first()
    if newest is None:
        return
    connection.execute(
        update(Cryptocurrency)
        .where(Cryptocurrency.id == crypto_id)
        .values(
            current_price=newest.close_price,
            market_cap=newest.market_cap,
            last_data_update=datetime.now(UTC),
        )
    )
