"""Named training settings beside the defaults of `TrainSettings()`."""

from __future__ import annotations

from training.train import TrainSettings

QUICK = TrainSettings(
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
"""Every family in seconds on a few coins and months: for trying things out and for tests.
Shorter horizons, fewer trees, three folds and three GRU epochs make weaker models."""
