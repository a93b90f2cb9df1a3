"""Layer 1, macro: the market regime (bull / bear / sideways) of the coming `horizon` hours."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np
import pandas as pd
import xgboost as xgb

from models.calibration import MulticlassCalibrator
from models.families.base import ModelFamily, Upstream
from models.families.xgb import gain_importance, top_contributions, tree_params
from models.features import market_features
from models.labels import REGIMES, regime_labels
from models.metrics import calibration_report, classification_report
from models.panel import MarketPanel

PROBABILITY_COLUMNS = tuple(f"p_{regime}" for regime in REGIMES)
MODEL_FILE = "model.json"
CALIBRATOR_FILE = "calibrator.joblib"


class MacroRegimeFamily(ModelFamily):
    """XGBoost on market-wide features; the baseline always predicts the training mix."""

    name: ClassVar[str] = "macro_regime"
    model_type: ClassVar[str] = "macro"
    layer: ClassVar[int] = 1
    primary_metric: ClassVar[str] = "log_loss"

    def features(self, panel: MarketPanel, upstream: Upstream) -> pd.DataFrame:
        return market_features(panel)

    def labels(self, panel: MarketPanel) -> pd.DataFrame:
        return regime_labels(panel, self.horizon).to_frame("regime")

    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> Self:
        codes = y["regime"].to_numpy(dtype=int)
        # XGBoost wants classes 0..k-1; a window without, say, a bear spell has fewer.
        self.classes_ = np.unique(codes)
        encoded = np.searchsorted(self.classes_, codes)
        self.feature_names_ = list(X.columns)
        if len(self.classes_) == 1:
            self.booster_: xgb.Booster | None = None
        else:
            estimator = xgb.XGBClassifier(**tree_params(self.params, self.random_state))
            estimator.fit(X, encoded)
            self.booster_ = estimator.get_booster()
        self.calibrator_: MulticlassCalibrator | None = None
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        probabilities = np.zeros((len(X), len(REGIMES)))
        if self.booster_ is None:
            probabilities[:, self.classes_[0]] = 1.0
        else:
            raw = self.booster_.predict(xgb.DMatrix(X[self.feature_names_]))
            probabilities[:, self.classes_] = raw.reshape(len(X), len(self.classes_))
        return pd.DataFrame(probabilities, index=X.index, columns=list(PROBABILITY_COLUMNS))

    def baseline(self, X: pd.DataFrame, y_train: pd.DataFrame) -> pd.DataFrame:
        """Majority regime: the training class frequencies, whatever the features say."""
        counts = np.bincount(y_train["regime"].to_numpy(dtype=int), minlength=len(REGIMES))
        frequencies = counts / counts.sum()
        return pd.DataFrame(
            np.tile(frequencies, (len(X), 1)), index=X.index, columns=list(PROBABILITY_COLUMNS)
        )

    def score(self, y: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, float]:
        return classification_report(
            predictions[list(PROBABILITY_COLUMNS)].to_numpy(),
            y["regime"].to_numpy(dtype=int),
            REGIMES,
        )

    def calibrate(self, X: pd.DataFrame, raw: pd.DataFrame, y: pd.DataFrame) -> Self:
        self.calibrator_ = MulticlassCalibrator().fit(
            raw[list(PROBABILITY_COLUMNS)].to_numpy(), y["regime"].to_numpy(dtype=int)
        )
        return self

    def predict_calibrated(self, X: pd.DataFrame) -> pd.DataFrame:
        raw = self.predict(X)
        calibrator = getattr(self, "calibrator_", None)
        if calibrator is not None:
            raw[list(PROBABILITY_COLUMNS)] = calibrator.transform(raw.to_numpy())
        raw["regime"] = [REGIMES[i] for i in raw.to_numpy().argmax(axis=1)]
        raw["confidence"] = raw[list(PROBABILITY_COLUMNS)].max(axis=1)
        return raw

    def calibration_report(
        self, X: pd.DataFrame, raw: pd.DataFrame, y: pd.DataFrame
    ) -> dict[str, Any]:
        """Reliability of the top-class confidence: P(the predicted regime is the real one)."""
        codes = y["regime"].to_numpy(dtype=int)
        raw_probabilities = raw[list(PROBABILITY_COLUMNS)].to_numpy()
        if self.calibrator_ is None:
            raise ValueError("calibrate() before asking for a calibration report")
        calibrated = self.calibrator_.transform(raw_probabilities)
        return {
            "raw": _top_class_reliability(raw_probabilities, codes),
            "calibrated": _top_class_reliability(calibrated, codes),
            "calibrated_scores": classification_report(calibrated, codes, REGIMES),
        }

    def feature_importance(self) -> pd.Series:
        if self.booster_ is None:
            return pd.Series(0.0, index=self.feature_names_)
        return gain_importance(self.booster_, self.feature_names_)

    def explain(self, X: pd.DataFrame, top: int = 5) -> list[dict[str, float]]:
        if self.booster_ is None:
            return [{} for _ in range(len(X))]
        chosen = self.booster_.predict(xgb.DMatrix(X[self.feature_names_])).reshape(
            len(X), len(self.classes_)
        )
        return top_contributions(self.booster_, X[self.feature_names_], top, chosen.argmax(axis=1))

    def _save_state(self, directory: Path) -> None:
        if self.booster_ is not None:
            self.booster_.save_model(directory / MODEL_FILE)
        joblib.dump(
            {
                "classes": self.classes_,
                "feature_names": self.feature_names_,
                "calibrator": self.calibrator_,
            },
            directory / CALIBRATOR_FILE,
        )

    def _load_state(self, directory: Path) -> None:
        state = joblib.load(directory / CALIBRATOR_FILE)
        self.classes_ = state["classes"]
        self.feature_names_ = state["feature_names"]
        self.calibrator_ = state["calibrator"]
        self.booster_ = None
        if (directory / MODEL_FILE).exists():
            self.booster_ = xgb.Booster()
            self.booster_.load_model(directory / MODEL_FILE)


def _top_class_reliability(probabilities: np.ndarray, codes: np.ndarray) -> dict[str, Any]:
    top = probabilities.argmax(axis=1)
    return calibration_report(probabilities.max(axis=1), (top == codes).astype(int))
