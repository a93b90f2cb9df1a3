"""Time-block partitions: a family's training rows computed block by block on the workers.

A family's features read a finite past (rolling windows of at most 720 hours, macro's 90-day
climatology of labels `horizon` hours long, the timing base rate's 720-hour window; the
exponential averages of MACD, RSI and ATR forget their start geometrically), and its labels a
future of `horizon` hours. So the rows of the hours [start, end] come out the same from the
candles of [start - warm-up, end + horizon] as from the whole history, equal where the windows
are finite and within rounding where an exponential average has run long enough; the
warm-up is the family's own longest chain of windows (`ModelFamily.history_hours`, the
window serving reads too). Each task reads those candles of every coin from price_data
itself (the database URL travels, not the data), builds the panel and calls the family's own
`training_data` for the rows from the block's first hour on, the warm-up read as history
only (`ModelFamily.features(panel, since)`): one feature code path, and a task's memory
bounded by the block's rows plus the warm-up's candles and per-coin indicators, whatever the
history.

Blocks rather than coins: the cross-sectional features (ranks, market and sector indexes)
need every coin of an hour, so a per-coin partition would have to be regrouped by hour, a
shuffle of the whole feature matrix; a time block holds every coin of its hours already.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import pandas as pd
from sqlalchemy import Engine

from db.engine import make_engine
from models.errors import InsufficientData
from models.families import ModelFamily
from models.panel import MarketPanel
from store.datasets import load_candles, load_coins

HOUR = pd.Timedelta(hours=1)
# A quarter of a year: with the families' warm-ups, each block reads 1.4 to 2.2 times its own
# candles, and a task of the timing family (the widest rows) builds block x coins of them.
DEFAULT_BLOCK_HOURS = 24 * 91


@dataclass(frozen=True)
class Block:
    """The hours [start, end] whose rows one task keeps."""

    start: pd.Timestamp
    end: pd.Timestamp


@dataclass(frozen=True)
class Scope:
    """What a training run reads: the database and the coins and window of `load_panel`."""

    database_url: str
    symbols: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


def time_blocks(first: pd.Timestamp, last: pd.Timestamp, hours: int) -> list[Block]:
    """Consecutive blocks of `hours` hours covering [first, last]; the last one shorter."""
    if hours < 1:
        raise ValueError(f"a block holds at least one hour, got {hours}")
    starts = pd.date_range(first, last, freq=hours * HOUR)
    ends = [*(start - HOUR for start in starts[1:]), last]
    return [Block(start, end) for start, end in zip(starts, ends, strict=True)]


def block_rows(
    scope: Scope, family: ModelFamily, block: Block
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The family's features and labels of the block's hours (a task on a worker).

    Empty frames when the block has no labelled row (a gap in the data, say).
    """
    since = block.start - family.history_hours * HOUR
    until = block.end + family.horizon * HOUR
    if scope.since is not None:
        since = max(since, pd.Timestamp(scope.since))
    if scope.until is not None:
        until = min(until, pd.Timestamp(scope.until))
    engine = _engine(scope.database_url)
    candles = load_candles(engine, list(scope.symbols) or None, since, until)
    empty = (pd.DataFrame(), pd.DataFrame())
    if candles.empty:
        return empty
    panel = MarketPanel.from_candles(candles, load_coins(engine))
    try:
        data = family.training_data(panel, since=block.start)
    except InsufficientData:
        return empty
    keep = data.timestamps <= block.end  # the rows start at the block's start already
    return data.X.loc[keep], data.y.loc[keep]


@lru_cache(maxsize=4)
def _engine(database_url: str) -> Engine:
    """One engine (and connection pool) per worker process and database."""
    return make_engine(database_url)
