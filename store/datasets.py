"""Read candles from price_data into a `MarketPanel`, the one input every family trains on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import Engine, Float, Select, cast, func, select, type_coerce
from sqlalchemy.types import NullType

from db.schema import Cryptocurrency, CryptoSector, CryptoSectorMapping, PriceData
from models.panel import MarketPanel
from store.candles import MARKET_COLUMNS, STORED_AS, TIMESTAMP, VALUE_COLUMNS

AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])


def load_candles(
    engine: Engine,
    symbols: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Long candles of the active coins, optionally limited to symbols and a time window.

    The values come as floats from the database (`CAST ... AS FLOAT`) and the timestamps as
    the driver returns them, parsed by pandas a column at a time: converted row by row by
    the columns' own types (a Decimal and then a float per value, a parsed and then zoned
    datetime per row) the same read took ten times as long.
    """
    stored = PriceData.__table__.c
    query = (
        select(
            Cryptocurrency.symbol,
            type_coerce(PriceData.timestamp, NullType()),
            *(cast(stored[STORED_AS[value].name], Float) for value in VALUE_COLUMNS),
        )
        .join(Cryptocurrency, Cryptocurrency.id == PriceData.crypto_id)
        .order_by(Cryptocurrency.symbol, PriceData.timestamp)
    )
    with engine.connect() as connection:
        rows = connection.execute(_active_within(query, symbols, since, until)).all()
    columns = list(zip(*rows, strict=True)) or [()] * len(MARKET_COLUMNS)
    frame = pd.DataFrame(dict(zip(MARKET_COLUMNS, columns, strict=True)))
    for column in VALUE_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True, format="ISO8601")
    return frame


def _active_within(
    query: AnySelect,
    symbols: Sequence[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> AnySelect:
    """`query` over the candles of the active coins, limited to symbols and a time window."""
    query = query.where(Cryptocurrency.is_active.is_(True))
    if symbols:
        query = query.where(Cryptocurrency.symbol.in_([s.upper() for s in symbols]))
    if since is not None:
        query = query.where(PriceData.timestamp >= since)
    if until is not None:
        query = query.where(PriceData.timestamp <= until)
    return query


def load_coins(engine: Engine) -> pd.DataFrame:
    """symbol, name, sector (the primary sector from crypto_sector_mapping, or None)."""
    query = (
        select(Cryptocurrency.symbol, Cryptocurrency.name, CryptoSector.name)
        .outerjoin(
            CryptoSectorMapping,
            (CryptoSectorMapping.crypto_id == Cryptocurrency.id)
            & CryptoSectorMapping.is_primary_sector.is_(True),
        )
        .outerjoin(CryptoSector, CryptoSector.id == CryptoSectorMapping.sector_id)
        .order_by(Cryptocurrency.symbol)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    coins = pd.DataFrame(rows, columns=["symbol", "name", "sector"])
    return coins.drop_duplicates("symbol")


def load_panel(
    engine: Engine,
    symbols: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> MarketPanel:
    """The market panel of price_data; a clear error when there is nothing to train on."""
    candles = load_candles(engine, symbols, since, until)
    _check_found(set(candles["symbol"]), symbols, since, until)
    return MarketPanel.from_candles(candles, load_coins(engine))


def candle_extent(
    engine: Engine,
    symbols: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[datetime, datetime, list[str]]:
    """First and last candle hour and the coins that `load_panel` with these arguments would
    read, from one grouped query instead of the candles; the same errors when it finds none."""
    query = (
        select(Cryptocurrency.symbol, func.min(PriceData.timestamp), func.max(PriceData.timestamp))
        .join(Cryptocurrency, Cryptocurrency.id == PriceData.crypto_id)
        .group_by(Cryptocurrency.symbol)
        .order_by(Cryptocurrency.symbol)
    )
    with engine.connect() as connection:
        rows = connection.execute(_active_within(query, symbols, since, until)).all()
    _check_found({row[0] for row in rows}, symbols, since, until)
    first = min(pd.Timestamp(row[1]) for row in rows)
    last = max(pd.Timestamp(row[2]) for row in rows)
    return _utc(first), _utc(last), [row[0] for row in rows]


def _utc(moment: pd.Timestamp) -> datetime:
    return (moment.tz_localize("UTC") if moment.tzinfo is None else moment).to_pydatetime()


def _check_found(
    found: set[str],
    symbols: Sequence[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """A clear error when the window holds no candles, or no candle of a coin asked for."""
    if not found:
        window = f" between {since or 'the start'} and {until or 'the end'}"
        wanted = f" for {', '.join(symbols)}" if symbols else ""
        raise ValueError(f"price_data holds no candles{wanted}{window}: ingest or synth first")
    if symbols:
        missing = sorted({s.upper() for s in symbols} - found)
        if missing:
            raise ValueError(f"no candles for: {', '.join(missing)}")


def latest_hour(engine: Engine, until: datetime | None = None) -> datetime | None:
    """The newest candle of the active coins at or before `until` (default: of all).

    One probe of the (crypto_id, timestamp) index per coin, not a scan of price_data.
    """
    newest = select(func.max(PriceData.timestamp)).where(PriceData.crypto_id == Cryptocurrency.id)
    if until is not None:
        newest = newest.where(PriceData.timestamp <= until)
    query = select(newest.scalar_subquery()).where(Cryptocurrency.is_active.is_(True))
    with engine.connect() as connection:
        hours = [hour for hour in connection.scalars(query) if hour is not None]
    return max(hours) if hours else None


def load_window(engine: Engine, hours: int, until: datetime | None = None) -> MarketPanel:
    """The panel of the `hours` up to the newest candle at or before `until`, both included.

    What trimming the whole history's panel to that window gives
    (`serving.inference.predictor.recent`), without reading the candles before it: the cost of
    one analysed hour stays flat as the history grows.
    """
    end = latest_hour(engine, until)
    if end is None:
        return load_panel(engine, until=until)  # nothing stored: the usual error
    return load_panel(engine, since=end - timedelta(hours=hours), until=end)
