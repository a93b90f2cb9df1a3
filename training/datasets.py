"""Read candles from price_data into a `MarketPanel`, the one input every family trains on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, select

from db.schema import Cryptocurrency, CryptoSector, CryptoSectorMapping, PriceData
from models.panel import MarketPanel

CANDLE_COLUMNS = ("symbol", "timestamp", "open", "high", "low", "close", "volume", "market_cap")


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
    frame = pd.DataFrame(rows, columns=list(CANDLE_COLUMNS))
    for column in CANDLE_COLUMNS[2:]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
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
