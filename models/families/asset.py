"""Layer 3, assets: each coin's price `horizon` hours ahead, with a calibrated confidence.

The estimator predicts the log return; the price is the last close times its exponential.
`confidence` is the calibrated probability that the prediction is accurate in the spec's own
sense, |predicted - actual| / actual <= `accuracy_threshold` percent: a logistic model of that
event on the size of the predicted move and the coin's recent volatility, fitted on
out-of-fold predictions only.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from models.families.base import Upstream
from models.families.context import with_regime, with_sector_strength
from models.families.xgb import TreeRegressorFamily
from models.features import asset_feature_frame
from models.labels import asset_labels
from models.metrics import calibration_report, price_accuracy, regression_report
from models.panel import MarketPanel

DEFAULT_ACCURACY_THRESHOLD = 5.0  # percent, the spec's predictions.accuracy_threshold default
CONFIDENCE_INPUTS = ("abs_predicted_return", "realized_vol_24h", "realized_vol_168h")


def accurate(
    predicted_return: np.ndarray, actual_return: np.ndarray, threshold: float
) -> np.ndarray:
    """The spec's is_accurate on log returns: prices relative to the current close."""
    return price_accuracy(np.exp(predicted_return), np.exp(actual_return), threshold)


class AssetPriceFamily(TreeRegressorFamily):
    """XGBoost on coin, market and sector features; the baseline is persistence (random walk)."""

    name: ClassVar[str] = "asset_price"
    model_type: ClassVar[str] = "asset"
    layer: ClassVar[int] = 3
    primary_metric: ClassVar[str] = "mae"
    target: ClassVar[str] = "forward_return"
    output: ClassVar[str] = "predicted_return"
    non_tree_params: ClassVar[tuple[str, ...]] = ("accuracy_threshold",)

    @property
    def accuracy_threshold(self) -> float:
        return float(self.params.get("accuracy_threshold", DEFAULT_ACCURACY_THRESHOLD))

    def features(self, panel: MarketPanel, upstream: Upstream) -> pd.DataFrame:
        frame = with_regime(asset_feature_frame(panel), upstream)
        return with_sector_strength(frame, upstream, panel.sectors)

    def labels(self, panel: MarketPanel) -> pd.DataFrame:
        return asset_labels(panel, self.horizon).to_frame("forward_return")

    def baseline(self, X: pd.DataFrame, y_train: pd.DataFrame) -> pd.DataFrame:
        """Persistence: the price stays where it is."""
        return pd.DataFrame({"predicted_return": np.zeros(len(X))}, index=X.index)

    def score(self, y: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, float]:
        predicted = predictions["predicted_return"].to_numpy()
        actual = y["forward_return"].to_numpy()
        report = regression_report(predicted, actual)
        scores = {key: value for key, value in report.items() if value is not None}
        scores["accuracy_rate"] = float(accurate(predicted, actual, self.accuracy_threshold).mean())
        return scores

    def calibrate(self, X: pd.DataFrame, raw: pd.DataFrame, y: pd.DataFrame) -> Self:
        outcomes = accurate(
            raw["predicted_return"].to_numpy(),
            y["forward_return"].to_numpy(),
            self.accuracy_threshold,
        )
        inputs = _confidence_inputs(X, raw)
        if outcomes.all() or not outcomes.any():
            self.constant_confidence_ = float(outcomes.mean())
            self.confidence_model_ = None
        else:
            self.confidence_model_ = LogisticRegression().fit(inputs, outcomes.astype(int))
        return self

    def confidence(self, X: pd.DataFrame, raw: pd.DataFrame) -> np.ndarray:
        """Calibrated P(accurate); NaN before `calibrate` has run."""
        model = getattr(self, "confidence_model_", None)
        if model is None:
            return np.full(len(X), getattr(self, "constant_confidence_", np.nan))
        probabilities: np.ndarray = model.predict_proba(_confidence_inputs(X, raw))[:, 1]
        return probabilities

    def predict_calibrated(self, X: pd.DataFrame) -> pd.DataFrame:
        raw = self.predict(X)
        raw["confidence"] = self.confidence(X, raw)
        return raw

    def calibration_report(
        self, X: pd.DataFrame, raw: pd.DataFrame, y: pd.DataFrame
    ) -> dict[str, Any]:
        outcomes = accurate(
            raw["predicted_return"].to_numpy(),
            y["forward_return"].to_numpy(),
            self.accuracy_threshold,
        )
        return calibration_report(self.confidence(X, raw), outcomes.astype(int))

    def _extra_state(self) -> dict[str, Any]:
        return {
            "confidence_model": getattr(self, "confidence_model_", None),
            "constant_confidence": getattr(self, "constant_confidence_", None),
        }

    def _restore_extra(self, state: dict[str, Any]) -> None:
        self.confidence_model_ = state["confidence_model"]
        self.constant_confidence_ = state["constant_confidence"]


def _confidence_inputs(X: pd.DataFrame, raw: pd.DataFrame) -> np.ndarray:
    """Size of the predicted move and log volatilities; missing volatility -> its median."""
    frame = pd.DataFrame(
        {
            "abs_predicted_return": raw["predicted_return"].abs(),
            "realized_vol_24h": np.log(X["realized_vol_24h"].clip(lower=1e-6)),
            "realized_vol_168h": np.log(X["realized_vol_168h"].clip(lower=1e-6)),
        },
        index=X.index,
    )
    return frame.fillna(frame.median()).fillna(0.0)[list(CONFIDENCE_INPUTS)].to_numpy()
