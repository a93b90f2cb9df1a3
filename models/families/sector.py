"""Layer 2, sectors: which sectors will out- or under-perform the market over the coming hours.

The same cross-sectional treatment as the assets (`cross_section`): sector features ranked
across the sectors of each hour; the target each sector's forward return beyond what its
beta to the market explains (`beta_adjusted_sector_labels`), demeaned across sectors; the
forecast shrunk toward "every sector does as the market does". The one-line factors,
applied to sectors (the calmest sectors, last day's losers, last week's winners), are the
rankings the model must beat. With about nine sectors and a few hundred independent weeks,
the data rarely supports a claim of skill; the skill interval says so when it does not.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd

from models.families.cross_section import RANKED_PREFIX, CrossSectionalFamily
from models.families.outputs import TableOutput
from models.families.served import rows_at, rows_from
from models.features import (
    INDEX_WEIGHT_HOURS,
    TREND_WINDOW,
    cross_sectional_ranks,
    sector_features,
)
from models.labels import BETA_WINDOW, beta_adjusted_sector_labels
from models.layers import DEFAULT_HORIZONS
from models.panel import MarketPanel

# Levels that trend through time (how many coins a sector has) mark the era, not the sector.
ERA_MARKERS = ("sector_coins",)


class SectorRotationFamily(CrossSectionalFamily):
    """XGBoost on ranked sector aggregates; the baseline says every sector tracks the market."""

    name: ClassVar[str] = "sector_rotation"
    model_type: ClassVar[str] = "sector"
    layer: ClassVar[int] = 2
    target: ClassVar[str] = "relative_return"
    output: ClassVar[str] = "sector_strength"
    layer_name: ClassVar[str] = "sector"
    default_horizon: ClassVar[int] = DEFAULT_HORIZONS["sector"]
    outputs: ClassVar[tuple[TableOutput, ...]] = (
        TableOutput("sector_performance"),
        TableOutput("sector_rotation_analysis"),
    )
    quick_horizon: ClassVar[int | None] = 48
    quick_params: ClassVar[dict[str, Any]] = {"n_estimators": 40}
    empty_reason: ClassVar[str] = "no sector has candles at this hour"
    # The candidate one-line factors its ranking is compared with.
    serving_columns: ClassVar[tuple[str, ...] | None] = tuple(
        RANKED_PREFIX + name
        for name in ("sector_vol_168h", "sector_relative_24h", "sector_relative_168h")
    )

    @property
    def history_hours(self) -> int:
        return BETA_WINDOW + TREND_WINDOW + INDEX_WEIGHT_HOURS

    def features(self, panel: MarketPanel, since: pd.Timestamp | None = None) -> pd.DataFrame:
        per_sector = rows_from(sector_features(panel), since).drop(columns=list(ERA_MARKERS))
        return cross_sectional_ranks(per_sector).add_prefix(RANKED_PREFIX)

    def labels(self, panel: MarketPanel) -> pd.DataFrame:
        return beta_adjusted_sector_labels(panel, self.horizon)

    def candidates(self, X: pd.DataFrame) -> pd.DataFrame:
        """Sector factors from the ranked features: higher = expected to do better."""
        return pd.DataFrame(
            {
                "low_volatility_168h": -X[RANKED_PREFIX + "sector_vol_168h"],
                "reversal_24h": -X[RANKED_PREFIX + "sector_relative_24h"],
                "momentum_168h": X[RANKED_PREFIX + "sector_relative_168h"],
            },
            index=X.index,
        )

    def serve_at(self, panel: MarketPanel, as_of: pd.Timestamp) -> pd.DataFrame:
        """Each sector's aggregates at `as_of` beside its forecast strength, by sector."""
        strength = self.predict_calibrated(rows_at(self.features(panel, as_of), as_of))
        aggregates = rows_at(sector_features(panel), as_of)
        joined = aggregates.join(strength[[self.output]])
        return joined.reset_index(level="timestamp", drop=True)

    @classmethod
    def context(cls, served: pd.DataFrame | None, sector: str | None) -> dict[str, Any]:
        """A coin's sector and that sector's forecast strength (None if it has none)."""
        strength = None
        if served is not None and sector is not None and sector in served.index:
            strength = float(served.loc[sector, cls.output])
        return {"sector": sector, "sector_strength": strength}
