"""The contract every family follows, so validation, tracking and serving treat them alike.

A family turns a `MarketPanel` (plus the upper layers' outputs, `Upstream`) into a feature
frame and a label frame, fits an estimator, and predicts typed output columns. Its `baseline`
is the naive forecast it must beat, produced for the same rows from training labels only.
Probabilistic outputs are calibrated by `calibrate` on out-of-fold predictions, never on rows
the estimator was fitted on.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import pandas as pd

from models.panel import MarketPanel

PARAMS_FILE = "family.json"


@dataclass(frozen=True)
class Upstream:
    """Outputs of the upper layers, known at each hour, used as features below them.

    `regime` is indexed by timestamp with columns p_bull, p_bear, p_sideways; `sector_strength`
    by (timestamp, sector) with column sector_strength. Training uses out-of-fold values;
    serving uses the active models' predictions. Missing rows mean "not known" (NaN).
    """

    regime: pd.DataFrame | None = None
    sector_strength: pd.DataFrame | None = None


@dataclass(frozen=True)
class TrainingData:
    """Features and labels of the rows whose label is known, aligned on the same index."""

    X: pd.DataFrame
    y: pd.DataFrame

    def __post_init__(self) -> None:
        if not self.X.index.equals(self.y.index):
            raise ValueError("features and labels must share one index")
        if self.X.empty:
            raise ValueError("no rows with both features and a known label")

    @property
    def timestamps(self) -> pd.DatetimeIndex:
        index = self.X.index
        values = index.get_level_values("timestamp") if index.nlevels > 1 else index
        return pd.DatetimeIndex(values)

    def rows(self, positions: Any) -> TrainingData:
        return TrainingData(self.X.iloc[positions], self.y.iloc[positions])


@dataclass
class ModelFamily(ABC):
    """Hyperparameters live in `params`; learned state in attributes ending in `_`."""

    horizon: int = 24
    params: Mapping[str, Any] = field(default_factory=dict)
    random_state: int = 0

    name: ClassVar[str]
    model_type: ClassVar[str]
    layer: ClassVar[int]
    primary_metric: ClassVar[str]
    lower_is_better: ClassVar[bool] = True

    # ---- data
    @abstractmethod
    def features(self, panel: MarketPanel, upstream: Upstream) -> pd.DataFrame:
        """Features of every row, the latest (unlabelled) hour included."""

    @abstractmethod
    def labels(self, panel: MarketPanel) -> pd.DataFrame:
        """Labels of every row; NaN where the future is not known yet."""

    def training_data(self, panel: MarketPanel, upstream: Upstream) -> TrainingData:
        X = self.features(panel, upstream)
        y = self.labels(panel).reindex(X.index)
        known = y.notna().all(axis=1)
        return TrainingData(X.loc[known], y.loc[known])

    # ---- learning
    @abstractmethod
    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> Self: ...

    @abstractmethod
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Raw (uncalibrated) outputs, one row per input row."""

    @abstractmethod
    def baseline(self, X: pd.DataFrame, y_train: pd.DataFrame) -> pd.DataFrame:
        """The naive forecast for the rows of X, in the same columns as `predict`."""

    @abstractmethod
    def score(self, y: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, float]:
        """Metrics of predictions against labels (model and baseline are scored alike)."""

    def calibrate(self, X: pd.DataFrame, raw: pd.DataFrame, y: pd.DataFrame) -> Self:
        """Fit the confidence mapping on out-of-fold rows; families without one keep this."""
        return self

    def predict_calibrated(self, X: pd.DataFrame) -> pd.DataFrame:
        """What serving uses: raw outputs with calibrated confidences."""
        return self.predict(X)

    def calibration_report(
        self, X: pd.DataFrame, raw: pd.DataFrame, y: pd.DataFrame
    ) -> dict[str, Any]:
        """Reliability of the calibrated confidences on held-out rows; empty if none."""
        return {}

    def feature_importance(self) -> pd.Series:
        """Importance per feature, for the run's plots; empty if the estimator has none."""
        return pd.Series(dtype=float)

    def explain(self, X: pd.DataFrame, top: int = 5) -> list[dict[str, float]]:
        """Per-row top feature contributions; empty dicts if the estimator cannot say."""
        return [{} for _ in range(len(X))]

    # ---- persistence
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        settings = {"horizon": self.horizon, "params": dict(self.params)}
        settings["random_state"] = self.random_state
        (directory / PARAMS_FILE).write_text(json.dumps(settings))
        self._save_state(directory)

    @classmethod
    def load(cls, directory: Path) -> Self:
        settings = json.loads((directory / PARAMS_FILE).read_text())
        family = cls(**settings)
        family._load_state(directory)
        return family

    @abstractmethod
    def _save_state(self, directory: Path) -> None: ...

    @abstractmethod
    def _load_state(self, directory: Path) -> None: ...
