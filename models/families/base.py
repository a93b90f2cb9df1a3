"""The contract every family follows, so validation, tracking and serving treat them alike.

A family turns a `MarketPanel` into a feature frame and a label frame, fits an estimator, and
predicts typed output columns. Its `baseline` is the naive forecast it must beat, computed
point-in-time from the feature rows alone, so it is the same in validation and in serving.

Families do not feed each other. An upper layer's out-of-fold output exists only for the
validated part of the history, so as a feature it would mark the era rather than inform;
and the lower layers model the cross-section of coins (asset) or each coin's own path
(timing), where a market-wide regime probability is the same for every row of an hour.
The layers stay a hierarchy in what is served: the regime and sector views are written
beside the coin forecasts as their context. A family says which layers' views its rows carry
(`upstream`), what it gives the layers below as context (`context`), and which tables its
served outputs go to (`outputs`, data only: serving keeps the writers); `serve_at` is its
whole serving computation at one hour, so the predictor is one loop over the families.

What a family serves is not its raw output: `calibrate` fits, on out-of-fold predictions only,
the serving transform (probability calibration, and the weight that shrinks the output toward
the baseline, `models.shrinkage`), and `serve` applies it. `serve` never touches the fitted
estimator, so validation can serve each fold's raw predictions through a transform fitted on
earlier folds only. Before `calibrate` has run, `serve` gives the baseline: without evidence
of skill, the naive forecast is what a family stands behind.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from models.errors import InsufficientData
from models.families.outputs import TableOutput
from models.panel import MarketPanel, hours_of

PARAMS_FILE = "family.json"


@dataclass(frozen=True)
class TrainingData:
    """Features and labels of the rows whose label is known, aligned on the same index."""

    X: pd.DataFrame
    y: pd.DataFrame

    def __post_init__(self) -> None:
        if not self.X.index.equals(self.y.index):
            raise ValueError("features and labels must share one index")
        if self.X.empty:
            raise InsufficientData("no rows with both features and a known label")

    @property
    def timestamps(self) -> pd.DatetimeIndex:
        return hours_of(self.X.index)

    def rows(self, positions: Any) -> TrainingData:
        return TrainingData(self.X.iloc[positions], self.y.iloc[positions])


@dataclass
class ModelFamily(ABC):
    """Hyperparameters live in `params`; learned state in attributes ending in `_`."""

    horizon: int = 24
    params: Mapping[str, Any] = field(default_factory=dict)
    random_state: int = 0

    name: ClassVar[str]
    model_type: ClassVar[str]  # ai_models.model_type (its CHECK allows the four layers' names)
    layer: ClassVar[int]  # the layer's number: predictions.layer_source, ai_suggestions.ai_layer
    primary_metric: ClassVar[str]
    lower_is_better: ClassVar[bool] = True

    # ---- what the registry, training and serving read (see `models.families.registry`)
    layer_name: ClassVar[str]
    default_horizon: ClassVar[int]
    upstream: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[tuple[TableOutput, ...]] = ()
    # Trained once per forecast horizon (`TrainSettings.forecast_horizons`), each horizon
    # its own version line; otherwise one line at the layer's horizon.
    horizon_lines: ClassVar[bool] = False
    # What `training.presets.QUICK` trains it with: a horizon (None: the default) and params.
    quick_horizon: ClassVar[int | None] = None
    quick_params: ClassVar[Mapping[str, Any]] = {}
    # Why `serve_at` can come back empty, for the analysis report.
    empty_reason: ClassVar[str] = "nothing to serve at this hour"
    # The feature columns `calibrate`, `serve`, `baseline`, `score` and `calibration_report`
    # read (None: any of them). Training on a cluster brings only these to its process
    # (`cluster.rows`); tests/cluster/test_rows.py checks that validation needs no other.
    serving_columns: ClassVar[tuple[str, ...] | None] = None

    @property
    def registered_name(self) -> str:
        """The name of this family's version line in MLflow and `ai_models`."""
        return self.name

    def fresh(self) -> Self:
        """An unfitted family with the same settings: one per walk-forward fold."""
        return replace(self)

    @classmethod
    def registers(cls, name: str) -> bool:
        """Whether `name` is the registered name of one of this family's version lines."""
        return name == cls.name

    @classmethod
    def table_output(cls, table: str) -> TableOutput:
        """The declared output to `table`; KeyError if the family writes no such table."""
        found = next((output for output in cls.outputs if output.table == table), None)
        if found is None:
            raise KeyError(f"{cls.__name__} writes no {table!r}")
        return found

    # ---- data
    @property
    @abstractmethod
    def history_hours(self) -> int:
        """Hours of candles before an hour that the features of that hour read: the family's
        longest chain of windows. From a panel reaching that far back they equal the features
        of the whole history (to rounding), so serving reads that much and a training block
        that much before its first hour (`cluster.blocks`); tests/models/test_history_hours.py
        and tests/cluster/test_blocks.py check each family's figure."""

    @abstractmethod
    def features(self, panel: MarketPanel, since: pd.Timestamp | None = None) -> pd.DataFrame:
        """Features of every row from the hour `since` on (of every hour when None), the latest
        (unlabelled) hour included. The panel's earlier hours are read as history only, so
        serving builds the rows of the hour it serves and a training block those of its own
        hours, not those of the warm-up before them."""

    @abstractmethod
    def labels(self, panel: MarketPanel) -> pd.DataFrame:
        """Labels of every row; NaN where the future is not known yet."""

    def training_data(self, panel: MarketPanel, since: pd.Timestamp | None = None) -> TrainingData:
        X = self.features(panel, since)
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
    def baseline(self, X: pd.DataFrame) -> pd.DataFrame:
        """The naive forecast for the rows of X: the columns of `predict`, and any the serving
        transform adds beyond them (a naive interval, say)."""

    @abstractmethod
    def score(self, y: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, Any]:
        """Metrics of predictions against labels (model and baseline are scored alike)."""

    @abstractmethod
    def losses(self, y: pd.DataFrame, predictions: pd.DataFrame) -> np.ndarray:
        """The primary metric row by row (its mean is the metric), for skill intervals."""

    @abstractmethod
    def calibrate(self, X: pd.DataFrame, raw: pd.DataFrame, y: pd.DataFrame) -> Self:
        """Fit the serving transform on out-of-fold rows: calibration and shrinkage weight."""

    @abstractmethod
    def serve(self, X: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
        """Served outputs from raw ones: calibrated, shrunk toward `baseline(X)`."""

    @property
    def shrink_weight(self) -> float:
        """The weight on the model's departure from the baseline; 0 until `calibrate`."""
        return float(getattr(self, "shrink_weight_", 0.0))

    def predict_calibrated(self, X: pd.DataFrame) -> pd.DataFrame:
        """What serving uses: the raw outputs through the serving transform."""
        return self.serve(X, self.predict(X))

    def calibration_report(
        self, X: pd.DataFrame, served: pd.DataFrame, y: pd.DataFrame
    ) -> dict[str, Any]:
        """Reliability of the served confidences on held-out rows; empty if none."""
        return {}

    # ---- serving at one hour
    @abstractmethod
    def serve_at(self, panel: MarketPanel, as_of: pd.Timestamp) -> pd.DataFrame:
        """What the family serves at `as_of` (`predict_calibrated` of that hour's rows, and
        whatever its tables need from them), one row per entity of the hour, indexed by the
        entity; the columns its `outputs` are written from. Empty if it has nothing to serve."""

    @classmethod
    def context(cls, served: pd.DataFrame | None, sector: str | None) -> dict[str, Any]:
        """What this layer's served frame (None when no version is active) tells a lower
        layer's row, of a coin in `sector` or (None) of the whole market; written beside it."""
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
