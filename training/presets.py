"""Named training settings beside the defaults of `TrainSettings()`."""

from __future__ import annotations

from models.families import FAMILIES
from training.train import TrainSettings

QUICK = TrainSettings(
    horizons={
        layer: family.quick_horizon or family.default_horizon for layer, family in FAMILIES.items()
    },
    params={layer: dict(family.quick_params) for layer, family in FAMILIES.items()},
    n_folds=3,
    test_fraction=0.4,
    min_train_hours=24 * 20,
)
"""Every family in seconds on a few coins and months: for trying things out and for tests.
Shorter horizons, fewer trees, three folds and three GRU epochs make weaker models. Each
family says what it trains with here (`quick_horizon`, `quick_params`); one registered after
this module is imported trains at its defaults."""
