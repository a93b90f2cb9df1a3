"""Helpers the families share: the rows of one hour or from one on, and ATR-based levels."""

from __future__ import annotations

import pandas as pd

from models.features import average_true_range
from models.panel import MarketPanel, hours_of

PERCENTILE_WINDOW = 720
VOLATILITY_LEVELS = ((0.5, "low"), (0.8, "medium"), (1.01, "high"))
RISK_LEVELS = ((0.5, "low"), (0.8, "medium"), (0.95, "high"), (1.01, "extreme"))


def rows_from(frame: pd.DataFrame, hour: pd.Timestamp | None) -> pd.DataFrame:
    """The rows of `frame` at `hour` and after (all of them when `hour` is None)."""
    if hour is None:
        return frame
    return frame.loc[hours_of(frame.index) >= hour]


def rows_at(frame: pd.DataFrame, hour: pd.Timestamp) -> pd.DataFrame:
    """The rows of `frame` at `hour` (empty if it has none), its index kept."""
    if frame.index.nlevels == 1:
        return frame.loc[[hour]] if hour in frame.index else frame.iloc[0:0]
    mask = frame.index.get_level_values("timestamp") == hour
    return frame.loc[mask]


def atr_levels(
    panel: MarketPanel,
    as_of: pd.Timestamp,
    symbols: pd.Index,
    levels: tuple[tuple[float, str], ...],
) -> pd.Series:
    """Each coin's ATR relative to price, as a percentile of its own last 720 hours, named by
    the first of `levels` whose bound it lies below ('medium' where it is unknown)."""
    relative = (average_true_range(panel) / panel.close).loc[:as_of].tail(PERCENTILE_WINDOW)
    percentile = relative.rank(pct=True).iloc[-1].reindex(symbols)
    names = []
    for value in percentile:
        if pd.isna(value):
            names.append("medium")
            continue
        names.append(next(name for bound, name in levels if value < bound))
    return pd.Series(names, index=symbols)
