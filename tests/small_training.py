"""Training settings small enough for tests: every family in tens of seconds on two cores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from training.train import TrainSettings

LAYERS = ["macro", "sector", "asset", "timing"]
SETTINGS = TrainSettings(
    horizons={"macro": 48, "sector": 48, "asset": 24, "timing": 12},
    params={
        "macro": {"n_estimators": 40},
        "sector": {"n_estimators": 40},
        "asset": {"n_estimators": 40},
        "timing": {"lookback": 12, "stride": 4, "sequence": {"max_epochs": 3}},
    },
    n_folds=3,
    test_fraction=0.4,
    min_train_hours=24 * 20,
)


@dataclass(frozen=True)
class TrainedStore:
    """A PostgreSQL template holding a fresh synthetic market and four trained families."""

    template: str
    tracking_uri: str
    data_dir: Path
    last_candle: datetime
