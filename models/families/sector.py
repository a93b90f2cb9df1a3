"""Layer 2, sectors: each sector's return relative to the market over the coming hours."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self

import joblib
import numpy as np
import pandas as pd
import xgboost as xgb

from models.families.base import ModelFamily, Upstream
from models.families.context import with_regime
from models.families.xgb import gain_importance, top_contributions, tree_params
from models.features import market_features, sector_features
from models.labels import sector_labels
from models.metrics import regression_report
from models.panel import MarketPanel

MODEL_FILE = "model.json"
STATE_FILE = "state.joblib"


class SectorRotationFamily(ModelFamily):
    """XGBoost on sector and market aggregates; the baseline says every sector tracks the market."""

    name: ClassVar[str] = "sector_rotation"
    model_type: ClassVar[str] = "sector"
    layer: ClassVar[int] = 2
    primary_metric: ClassVar[str] = "rmse"

    def features(self, panel: MarketPanel, upstream: Upstream) -> pd.DataFrame:
        per_sector = sector_features(panel)
        market = market_features(panel).add_prefix("market_")
        joined = per_sector.join(market, on="timestamp")
        return with_regime(joined, upstream)

    def labels(self, panel: MarketPanel) -> pd.DataFrame:
        return sector_labels(panel, self.horizon)

    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> Self:
        self.feature_names_ = list(X.columns)
        estimator = xgb.XGBRegressor(**tree_params(self.params, self.random_state))
        estimator.fit(X, y["relative_return"])
        self.booster_ = estimator.get_booster()
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        values = self.booster_.predict(xgb.DMatrix(X[self.feature_names_]))
        return pd.DataFrame({"sector_strength": values}, index=X.index)

    def baseline(self, X: pd.DataFrame, y_train: pd.DataFrame) -> pd.DataFrame:
        """Market return: every sector is expected to do as the market does."""
        return pd.DataFrame({"sector_strength": np.zeros(len(X))}, index=X.index)

    def score(self, y: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, float]:
        report = regression_report(
            predictions["sector_strength"].to_numpy(), y["relative_return"].to_numpy()
        )
        return {key: value for key, value in report.items() if value is not None}

    def feature_importance(self) -> pd.Series:
        return gain_importance(self.booster_, self.feature_names_)

    def explain(self, X: pd.DataFrame, top: int = 5) -> list[dict[str, float]]:
        return top_contributions(self.booster_, X[self.feature_names_], top)

    def _save_state(self, directory: Path) -> None:
        self.booster_.save_model(directory / MODEL_FILE)
        joblib.dump({"feature_names": self.feature_names_}, directory / STATE_FILE)

    def _load_state(self, directory: Path) -> None:
        self.feature_names_ = joblib.load(directory / STATE_FILE)["feature_names"]
        self.booster_ = xgb.Booster()
        self.booster_.load_model(directory / MODEL_FILE)
