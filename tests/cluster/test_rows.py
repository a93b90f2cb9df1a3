"""What the training process keeps of rows left on the cluster is enough, and bounded.

On the cluster the training process holds a family's labels and only the feature columns
`cluster.rows.described_columns` names; validation calibrates, serves and scores on those.
Here the same validation runs in-process twice, once with every column and once with only
the described ones: the results must be identical, or a family reads a column it did not
declare. The local fits' sample of hours is checked on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from cluster.rows import described_columns, sampled_hours
from models.families import ModelFamily, TrainingData
from models.panel import MarketPanel
from models.validation import InMemoryRows, Positions, fit_final, served_on, walk_forward
from training.presets import QUICK
from training.synthetic import generate_market


@dataclass(frozen=True)
class DescribedOnly(InMemoryRows):
    """In-memory rows that describe only the columns the cluster gathers."""

    def described(self, family: ModelFamily, positions: Positions) -> TrainingData:
        data = super().described(family, positions)
        return TrainingData(data.X[described_columns(family, list(data.X.columns))], data.y)


@pytest.fixture(scope="module")
def panel() -> MarketPanel:
    market = generate_market(6, 90, seed=5)
    return MarketPanel.from_candles(market.candles, market.coins)


@pytest.mark.parametrize("layer", ["macro", "sector", "asset", "timing"])
def test_validation_on_the_described_columns_equals_validation_on_all(
    panel: MarketPanel, layer: str
) -> None:
    family = QUICK.family(layer)
    data = family.training_data(panel)
    split = QUICK.splitter(family.horizon)
    whole = walk_forward(family.fresh, data, split)
    narrow = walk_forward(family.fresh, DescribedOnly(data), split)
    assert len(narrow.oof.X.columns) < len(data.X.columns)
    for name in ("model_metrics", "raw_metrics", "baseline_metrics", "skill", "calibration"):
        assert repr(getattr(narrow, name)) == repr(getattr(whole, name)), name
    final = fit_final(family.fresh, DescribedOnly(data), narrow)
    scored = narrow.positions[narrow.scored]
    pd.testing.assert_frame_equal(
        served_on(final, DescribedOnly(data), scored),
        final.predict_calibrated(data.X.iloc[scored]),
    )


def test_sampled_hours_keep_whole_hours_within_the_bound() -> None:
    hours = pd.date_range("2026-01-01", periods=1000, freq="h")
    timestamps = pd.DatetimeIndex(np.repeat(hours, 7))
    assert sampled_hours(timestamps, len(timestamps), seed=0).all()
    kept = sampled_hours(timestamps, 2100, seed=0)
    assert 2000 < kept.sum() <= 2100
    per_hour = pd.Series(kept).groupby(np.repeat(np.arange(1000), 7)).sum()
    assert set(per_hour.unique()) <= {0, 7}
    chosen = timestamps[kept].unique()
    # Spread over the whole history, not its start or end.
    assert chosen.min() < hours[100] and chosen.max() > hours[900]
    assert (sampled_hours(timestamps, 2100, seed=0) == kept).all()
