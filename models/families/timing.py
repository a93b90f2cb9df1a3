"""Layer 4, timing: does a long (or short) entry now reach its target before its stop?

Labels are triple-barrier outcomes: target and stop are ATR multiples from the entry, the
horizon is the time barrier. A small GRU (`models.sequence.SequenceClassifier`) reads the last
`lookback` hours of each coin's features; its two probabilities are calibrated one by one on
out-of-fold predictions. Each row carries its whole window as lag columns, so the family keeps
the tabular contract of the others and no window ever reaches past its own hour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np
import pandas as pd

from models.calibration import ProbabilityCalibrator
from models.families.base import ModelFamily, Upstream
from models.families.context import REGIME_COLUMNS, with_regime
from models.features import coin_features
from models.labels import BarrierSpec, triple_barrier_labels
from models.metrics import brier_score, calibration_report
from models.panel import MarketPanel
from models.sequence import SequenceClassifier, make_sequences

SIDES = ("long", "short")
PROBABILITY_COLUMNS = ("p_long", "p_short")
WEIGHTS_FILE = "sequence.pt"
STATE_FILE = "state.joblib"
SEQUENCE_DEFAULTS: dict[str, Any] = {"hidden_size": 16, "max_epochs": 8, "patience": 2}


class TradeTimingFamily(ModelFamily):
    """GRU over recent bars; baselines: always long (the base rate), and no trade."""

    name: ClassVar[str] = "trade_timing"
    model_type: ClassVar[str] = "timing"
    layer: ClassVar[int] = 4
    primary_metric: ClassVar[str] = "brier"

    @property
    def barrier(self) -> BarrierSpec:
        return BarrierSpec(
            horizon=self.horizon,
            target_atr=float(self.params.get("target_atr", 2.0)),
            stop_atr=float(self.params.get("stop_atr", 1.0)),
        )

    @property
    def lookback(self) -> int:
        return int(self.params.get("lookback", 24))

    def features(self, panel: MarketPanel, upstream: Upstream) -> pd.DataFrame:
        per_bar = with_regime(coin_features(panel), upstream)
        # Before the macro layer has an out-of-fold view, it says "no idea": uniform.
        per_bar[list(REGIME_COLUMNS)] = per_bar[list(REGIME_COLUMNS)].fillna(1 / 3)
        windows, index = make_sequences(per_bar, self.lookback)
        columns = [
            f"{name}_lag{lag}" for lag in range(self.lookback - 1, -1, -1) for name in per_bar
        ]
        flat = windows.reshape(len(windows), -1)
        return pd.DataFrame(flat, index=index, columns=columns)

    def labels(self, panel: MarketPanel) -> pd.DataFrame:
        return triple_barrier_labels(panel, self.barrier)

    def _windows(self, X: pd.DataFrame) -> np.ndarray:
        return X.to_numpy(dtype=np.float32).reshape(len(X), self.lookback, -1)

    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> Self:
        # Neighbouring hours overlap almost entirely; every `stride`-th row keeps the
        # information and cuts training time by the same factor.
        stride = int(self.params.get("stride", 3))
        order = np.argsort(X.index.get_level_values("timestamp"), kind="stable")[::stride]
        settings = {**SEQUENCE_DEFAULTS, **self.params.get("sequence", {})}
        self.classifier_ = SequenceClassifier(random_state=self.random_state, **settings)
        targets = y[["long_hit", "short_hit"]].to_numpy(dtype=np.float32)[order]
        self.classifier_.fit(self._windows(X)[order], targets)
        self.calibrators_: dict[str, ProbabilityCalibrator] = {}
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        probabilities = self.classifier_.predict_proba(self._windows(X))
        return pd.DataFrame(probabilities, index=X.index, columns=list(PROBABILITY_COLUMNS))

    def baseline(self, X: pd.DataFrame, y_train: pd.DataFrame) -> pd.DataFrame:
        """Always long (and always short): the training hit rates, whatever the market does."""
        rates = [float(y_train[f"{side}_hit"].mean()) for side in SIDES]
        return pd.DataFrame(
            np.tile(rates, (len(X), 1)), index=X.index, columns=list(PROBABILITY_COLUMNS)
        )

    def score(self, y: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, float]:
        scores: dict[str, float] = {}
        for side, column in zip(SIDES, PROBABILITY_COLUMNS, strict=True):
            hits = y[f"{side}_hit"].to_numpy(dtype=int)
            scores[f"brier_{side}"] = brier_score(predictions[column].to_numpy(), hits)
            scores[f"hit_rate_{side}"] = float(hits.mean())
        scores["brier"] = (scores["brier_long"] + scores["brier_short"]) / 2
        scores.update(self._policy_returns(y, predictions))
        return scores

    def _policy_returns(self, y: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, float]:
        """Mean realised return per hour of trading on the predictions, against the naive ones.

        The policy enters the side with the higher expected R-multiple when it is positive
        (p * target - (1 - p) * stop > 0), and stays out otherwise.
        """
        spec = self.barrier
        edge = {
            side: predictions[column].to_numpy() * spec.target_atr
            - (1 - predictions[column].to_numpy()) * spec.stop_atr
            for side, column in zip(SIDES, PROBABILITY_COLUMNS, strict=True)
        }
        go_long = (edge["long"] > 0) & (edge["long"] >= edge["short"])
        go_short = (edge["short"] > 0) & ~go_long
        realised = np.where(go_long, y["long_return"], np.where(go_short, y["short_return"], 0.0))
        return {
            "policy_return": float(np.mean(realised)),
            "trade_share": float(np.mean(go_long | go_short)),
            "always_long_return": float(y["long_return"].mean()),
            "no_trade_return": 0.0,
        }

    def calibrate(self, X: pd.DataFrame, raw: pd.DataFrame, y: pd.DataFrame) -> Self:
        self.calibrators_ = {
            side: ProbabilityCalibrator().fit(raw[column], y[f"{side}_hit"].astype(int))
            for side, column in zip(SIDES, PROBABILITY_COLUMNS, strict=True)
        }
        return self

    def predict_calibrated(self, X: pd.DataFrame) -> pd.DataFrame:
        raw = self.predict(X)
        for side, column in zip(SIDES, PROBABILITY_COLUMNS, strict=True):
            if side in getattr(self, "calibrators_", {}):
                raw[column] = self.calibrators_[side].transform(raw[column])
        return raw

    def calibration_report(
        self, X: pd.DataFrame, raw: pd.DataFrame, y: pd.DataFrame
    ) -> dict[str, Any]:
        return {
            side: {
                "raw": calibration_report(raw[column], y[f"{side}_hit"].astype(int)),
                "calibrated": calibration_report(
                    self.calibrators_[side].transform(raw[column]), y[f"{side}_hit"].astype(int)
                ),
            }
            for side, column in zip(SIDES, PROBABILITY_COLUMNS, strict=True)
        }

    def _save_state(self, directory: Path) -> None:
        self.classifier_.save(directory / WEIGHTS_FILE)
        joblib.dump({"calibrators": self.calibrators_}, directory / STATE_FILE)

    def _load_state(self, directory: Path) -> None:
        self.classifier_ = SequenceClassifier.load(directory / WEIGHTS_FILE)
        self.calibrators_ = joblib.load(directory / STATE_FILE)["calibrators"]
