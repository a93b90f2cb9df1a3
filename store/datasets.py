"""Read candles from price_data into a `MarketPanel`, the one input every family trains on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, func, select

from db.schema import Cryptocurrency, CryptoSector, CryptoSectorMapping, PriceData
from models.panel import MarketPanel
from store.candles import MARKET_COLUMNS, TIMESTAMP, VALUE_COLUMNS


def load_candles(
    engine: Engine,
    symbols: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Long candles of the active coins, optionally limited to symbols and a time window."""
    query = (
        select(
            Cryptocurrency.symbol,
            PriceData.timestamp,
            PriceData.open_price,
            PriceData.high_price,
            PriceData.low_price,
            PriceData.close_price,
            PriceData.volume,
            PriceData.market_cap,
        )
        .join(Cryptocurrency, Cryptocurrency.id == PriceData.crypto_id)
        .where(Cryptocurrency.is_active.is_(True))
        .order_by(Cryptocurrency.symbol, PriceData.timestamp)
    )
    if symbols:
        query = query.where(Cryptocurrency.symbol.in_([s.upper() for s in symbols]))
    if since is not None:
        query = query.where(PriceData.timestamp >= since)
    if until is not None:
        query = query.where(PriceData.timestamp <= until)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame(rows, columns=list(MARKET_COLUMNS))
    for column in VALUE_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True)
    return frame


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
    if candles.empty:
        window = f" between {since or 'the start'} and {until or 'the end'}"
        wanted = f" for {', '.join(symbols)}" if symbols else ""
        raise ValueError(f"price_data holds no candles{wanted}{window}: ingest or synth first")
    if symbols:
        missing = sorted({s.upper() for s in symbols} - set(candles["symbol"]))
        if missing:
            raise ValueError(f"no candles for: {', '.join(missing)}")
    return MarketPanel.from_candles(candles, load_coins(engine))


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
