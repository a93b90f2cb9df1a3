"""The market as wide frames: one row per hour, one column per coin.

Every model works on a `MarketPanel`. Wide frames make cross-sectional work (index returns,
breadth, dominance, sector aggregates) plain vectorised pandas, and the complete hourly index
makes "the value known at hour t" mean the same row everywhere. Missing candles stay NaN:
nothing is forward-filled here, so no later value can leak into an earlier hour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HOUR = pd.Timedelta(hours=1)
FIELDS = ("open", "high", "low", "close", "volume", "market_cap")


def hours_of(index: pd.Index) -> pd.DatetimeIndex:
    """The hour of each row of a (timestamp, entity) index, or of a timestamp index."""
    return pd.DatetimeIndex(index.get_level_values("timestamp") if index.nlevels > 1 else index)


@dataclass(frozen=True)
class MarketPanel:
    """Hourly OHLCV of many coins; each frame is indexed by UTC hour, one column per symbol."""

    open: pd.DataFrame
    high: pd.DataFrame
    low: pd.DataFrame
    close: pd.DataFrame
    volume: pd.DataFrame
    market_cap: pd.DataFrame
    sectors: pd.Series  # symbol -> sector name; NaN for a coin without a sector

    @classmethod
    def from_candles(cls, candles: pd.DataFrame, coins: pd.DataFrame | None = None) -> MarketPanel:
        """Build from long candles: symbol, timestamp, OHLC, volume and optionally market_cap.

        `coins` (symbol, name, sector) supplies sectors; coins absent from it have none.
        """
        if candles.empty:
            raise ValueError("no candles to build a market panel from")
        frame = candles.copy()
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        if "market_cap" not in frame:
            frame["market_cap"] = np.nan
        hours = pd.date_range(
            frame["timestamp"].min(), frame["timestamp"].max(), freq=HOUR, name="timestamp"
        )
        symbols = sorted(frame["symbol"].unique())
        wide = {
            field: frame.pivot(index="timestamp", columns="symbol", values=field)
            .reindex(index=hours, columns=symbols)
            .astype(float)
            for field in FIELDS
        }
        sector_map = (
            coins.set_index("symbol")["sector"] if coins is not None else pd.Series(dtype=object)
        )
        sectors = sector_map.reindex(symbols)
        sectors.index.name = "symbol"
        return cls(**wide, sectors=sectors)

    @property
    def symbols(self) -> list[str]:
        return list(self.close.columns)

    @property
    def hours(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.close.index)

    def until(self, moment: pd.Timestamp) -> MarketPanel:
        """The panel as it was known at `moment` (rows after it removed)."""
        return self._rows(self.close.index <= moment)

    def between(self, start: pd.Timestamp | None, end: pd.Timestamp | None) -> MarketPanel:
        mask = np.ones(len(self.close), dtype=bool)
        if start is not None:
            mask &= self.close.index >= start
        if end is not None:
            mask &= self.close.index <= end
        return self._rows(mask)

    def _rows(self, mask: np.ndarray) -> MarketPanel:
        return MarketPanel(
            **{field: getattr(self, field).loc[mask] for field in FIELDS}, sectors=self.sectors
        )
