"""Bulk writes of candles, coins and sector mappings; the only code that writes price_data.

Each dialect gets its fast path: PostgreSQL streams the rows with a binary COPY into a
temporary staging table, then moves them with one INSERT ... SELECT, a plain append when the
coin has no candle in their span and an upsert (ON CONFLICT) otherwise; SQLite runs one
executemany of an upsert. Identical rows are left untouched, so loading a file twice changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPICursor

from db.schema import Cryptocurrency, CryptoSector, CryptoSectorMapping, PriceData
from store.candles import STORED_AS, VALUE_COLUMNS
from training import pg_copy

# The price_data column of each candle value, in the order of VALUE_COLUMNS.
PRICE_DATA_COLUMNS = tuple(STORED_AS[name].name for name in VALUE_COLUMNS)
COPY_CHUNK_ROWS = 100_000
# First key of the advisory locks that serialise ingests of a coin (the second is its id).
INGEST_LOCK_SPACE = 0x43500001
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
        # A concurrent ingest creating the same coin makes this wait for its commit and
        # then skip the row, instead of failing on the unique symbol.
        postgres = connection.dialect.name == "postgresql"
        dialect_insert = postgresql.insert if postgres else sqlite.insert
        connection.execute(
            dialect_insert(Cryptocurrency).on_conflict_do_nothing(index_elements=["symbol"]),
            missing,
        )
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
    """Insert or update hourly candles of one coin; rows equal to what is stored are skipped.

    The coin's latest quote is left to `refresh_latest_quotes`, once for all coins written.
    """
    if candles.empty:
        return UpsertCounts()
    if connection.dialect.name == "postgresql":
        return _upsert_postgres(connection, crypto_id, candles, progress)
    return _upsert_sqlite(connection, crypto_id, candles, progress)


def _upsert_postgres(
    connection: Connection,
    crypto_id: int,
    candles: pd.DataFrame,
    progress: ProgressCallback | None,
) -> UpsertCounts:
    """Stage the candles with a binary COPY, then append them, or upsert them when the coin
    already has candles in their span."""
    cursor = connection.connection.cursor()
    # Serialises ingests of one coin: a concurrent one waits here until we commit and then
    # sees our rows. An advisory lock keyed on the coin leaves the coin's row alone, which
    # every inserted candle's foreign-key check locks.
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", (INGEST_LOCK_SPACE, crypto_id))
    # Each inserted candle's foreign-key check looks its coin up. On a cryptocurrencies table
    # of a few pages the planner makes that lookup a sequential scan, so every candle pays
    # for every coin (it made the INSERTs 1.5x slower at 192 coins); without sequential scans
    # it goes through the primary key. JIT would then compile the staging table's scan,
    # whose cost the setting inflates, for nothing.
    cursor.execute("SET LOCAL enable_seqscan = off")
    cursor.execute("SET LOCAL jit = off")
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM price_data"
        " WHERE crypto_id = %s AND timestamp BETWEEN %s AND %s)",
        (crypto_id, candles["timestamp"].min(), candles["timestamp"].max()),
    )
    overlaps = cursor.fetchone() == (True,)
    _stage(cursor, candles, progress)
    insert_staged = (
        f"INSERT INTO price_data (crypto_id, {_STAGED_COLUMNS})"
        f" SELECT %s, {_STAGED_COLUMNS} FROM staging_price_data"
    )
    if not overlaps:  # nothing stored to conflict with: a plain INSERT skips ON CONFLICT's probe
        cursor.execute(insert_staged, (crypto_id,))
        return UpsertCounts(inserted=cursor.rowcount)
    targets = ", ".join(f"{column} = EXCLUDED.{column}" for column in PRICE_DATA_COLUMNS)
    stored = ", ".join(f"price_data.{column}" for column in PRICE_DATA_COLUMNS)
    incoming = ", ".join(f"EXCLUDED.{column}" for column in PRICE_DATA_COLUMNS)
    cursor.execute(
        f"""
        WITH upserted AS (
            {insert_staged}
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


def _stage(cursor: DBAPICursor, candles: pd.DataFrame, progress: ProgressCallback | None) -> None:
    """The candles into a temporary table typed like price_data, by binary COPY.

    The NUMERICs arrive encoded (`training.pg_copy`), so moving them on to price_data needs
    no cast: the text round trip a float8 staging column would need cost more than the COPY.
    """
    numeric_types = ", ".join(
        f"{column} {_PRICE_DATA_TYPES[column]}" for column in PRICE_DATA_COLUMNS
    )
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS staging_price_data"
        f" (timestamp timestamptz, {numeric_types}) ON COMMIT DROP"
    )
    cursor.execute("TRUNCATE staging_price_data")
    statement = f"COPY staging_price_data ({_STAGED_COLUMNS}) FROM STDIN (FORMAT binary)"
    with cursor.copy(statement) as copy:
        copy.write(pg_copy.HEADER)
        for start in range(0, len(candles), COPY_CHUNK_ROWS):
            chunk = candles.iloc[start : start + COPY_CHUNK_ROWS]
            copy.write(pg_copy.encode_rows(chunk, NUMERIC_COLUMNS))
            if progress:
                progress(len(chunk))
        copy.write(pg_copy.TRAILER)


# Candle value -> the binary COPY encoding of its price_data NUMERIC.
NUMERIC_COLUMNS = {
    name: pg_copy.NumericColumn(column.precision, column.scale)
    for name, column in STORED_AS.items()
}
_PRICE_DATA_TYPES = {
    column.name: f"numeric({column.precision}, {column.scale})" for column in STORED_AS.values()
}
_STAGED_COLUMNS = ", ".join(("timestamp", *PRICE_DATA_COLUMNS))


# SQLAlchemy's own storage format for DateTime on SQLite; the upsert key must match it exactly.
SQLITE_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def _upsert_sqlite(
    connection: Connection,
    crypto_id: int,
    candles: pd.DataFrame,
    progress: ProgressCallback | None,
) -> UpsertCounts:
    timestamps = candles["timestamp"].dt.tz_convert(UTC).dt.strftime(SQLITE_TIMESTAMP_FORMAT)
    values = candles[list(VALUE_COLUMNS)].astype(object)
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
    # The summed row count of the executemany: rows inserted or changed by the statement
    # itself (`total_changes()` would also count what the data version's triggers write).
    written = connection.exec_driver_sql(
        f"INSERT INTO price_data ({columns}) VALUES ({placeholders}) "
        f"ON CONFLICT (crypto_id, timestamp) DO UPDATE SET {targets} WHERE {changed}",
        rows,
    ).rowcount
    if progress:
        progress(len(rows))
    after = connection.exec_driver_sql(
        "SELECT count(*) FROM price_data WHERE crypto_id = ?", (crypto_id,)
    ).scalar_one()
    inserted = after - existing
    updated = written - inserted
    return UpsertCounts(inserted, updated, len(rows) - inserted - updated)


def refresh_latest_quotes(connection: Connection, crypto_ids: Collection[int]) -> None:
    """Set `cryptocurrencies.current_price` and `market_cap` from each coin's newest candle.

    One statement for all coins written, after their candles, rather than one per coin: the
    cryptocurrencies pages that every candle's foreign-key check reads then gain no row
    versions in the middle of an ingest.
    """
    if not crypto_ids:
        return
    newest = (
        select(PriceData)
        .where(PriceData.crypto_id == Cryptocurrency.id)
        .order_by(PriceData.timestamp.desc())
        .limit(1)
    )
    connection.execute(
        update(Cryptocurrency)
        .where(Cryptocurrency.id.in_(list(crypto_ids)))
        .values(
            current_price=newest.with_only_columns(PriceData.close_price).scalar_subquery(),
            market_cap=newest.with_only_columns(PriceData.market_cap).scalar_subquery(),
            last_data_update=datetime.now(UTC),
        )
    )
