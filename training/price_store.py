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
    if counts.inserted or counts.updated:  # an unchanged re-ingest leaves the coin untouched
        _refresh_latest_quote(connection, crypto_id)
    return counts


def _upsert_postgres(
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
