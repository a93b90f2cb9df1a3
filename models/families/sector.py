"""Layer 2, sectors: each sector's return relative to the market over the coming hours."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from models.families.base import Upstream
from models.families.context import with_regime
from models.families.xgb import TreeRegressorFamily
from models.features import market_features, sector_features
from models.labels import sector_labels
from models.metrics import regression_report
from models.panel import MarketPanel


class SectorRotationFamily(TreeRegressorFamily):
    """XGBoost on sector and market aggregates; the baseline says every sector tracks the market."""

    name: ClassVar[str] = "sector_rotation"
    model_type: ClassVar[str] = "sector"
    layer: ClassVar[int] = 2
    primary_metric: ClassVar[str] = "rmse"
    target: ClassVar[str] = "relative_return"
    output: ClassVar[str] = "sector_strength"

    def features(self, panel: MarketPanel, upstream: Upstream) -> pd.DataFrame:
        per_sector = sector_features(panel)
        market = market_features(panel).add_prefix("market_")
        joined = per_sector.join(market, on="timestamp")
        return with_regime(joined, upstream)

    def labels(self, panel: MarketPanel) -> pd.DataFrame:
        return sector_labels(panel, self.horizon)

    def baseline(self, X: pd.DataFrame, y_train: pd.DataFrame) -> pd.DataFrame:
        """Market return: every sector is expected to do as the market does."""
        return pd.DataFrame({"sector_strength": np.zeros(len(X))}, index=X.index)

    def score(self, y: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, float]:
        report = regression_report(
            predictions["sector_strength"].to_numpy(), y["relative_return"].to_numpy()
        )
        return {key: value for key, value in report.items() if value is not None}
