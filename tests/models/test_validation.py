"""Nested walk-forward: each fold is served by a transform that never saw the fold's labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.families.base import TrainingData
from models.families.sector import SectorRotationFamily
from models.panel import MarketPanel
from models.skill import NO_EDGE
from models.splits import WalkForwardSplit
from models.validation import walk_forward
from training.synthetic import generate_market

HORIZON = 24
SPLIT = WalkForwardSplit(n_folds=3, test_fraction=0.5, purge=HORIZON, min_train_hours=24 * 20)


def make() -> SectorRotationFamily:
    return SectorRotationFamily(horizon=HORIZON, params={"n_estimators": 20})


@pytest.fixture(scope="module")
def data() -> TrainingData:
    market = generate_market(14, 120, seed=11)
    return make().training_data(MarketPanel.from_candles(market.candles, market.coins))


def test_a_folds_served_output_does_not_depend_on_its_own_labels(data: TrainingData) -> None:
    folds = SPLIT.split(data.timestamps)
    last = data.X.index[folds[-1].test_index]
    rng = np.random.default_rng(0)
    shuffled_y = data.y.copy()
    shuffled_y.loc[last, "relative_return"] = rng.permutation(shuffled_y.loc[last].to_numpy())

    original = walk_forward(make, data, SPLIT)
    shuffled = walk_forward(make, TrainingData(data.X, shuffled_y), SPLIT)

    pd.testing.assert_frame_equal(original.served.loc[last], shuffled.served.loc[last])
    assert original.fold_metrics[-1]["raw"] != shuffled.fold_metrics[-1]["raw"]  # it did bite


def test_the_first_fold_trains_the_serving_and_is_not_scored(data: TrainingData) -> None:
    result = walk_forward(make, data, SPLIT)
    first = data.X.index[result.folds[0].test_index]

    assert not result.scored[: len(first)].any() and result.scored[len(first) :].all()
    pd.testing.assert_frame_equal(
        result.served.loc[first, ["sector_strength"]], result.baseline.loc[first]
    )
    assert [fold["fold"] for fold in result.fold_metrics] == [1, 2]


def test_skill_is_reported_with_an_interval_and_a_verdict(data: TrainingData) -> None:
    result = walk_forward(make, data, SPLIT)

    skill = result.skill
    assert skill["metric"] == "mae"
    assert skill["low"] <= skill["estimate"] <= skill["high"]
    assert skill["edge"] == ("demonstrated" if skill["low"] > 0 else NO_EDGE)
    served, baseline = result.model_metrics["mae"], result.baseline_metrics["mae"]
    assert skill["estimate"] == pytest.approx(1 - served / baseline)


def test_the_headline_scores_are_those_of_the_served_output(data: TrainingData) -> None:
    result = walk_forward(make, data, SPLIT)
    scored_y = result.oof.y.loc[result.scored]

    served = make().score(scored_y, result.served.loc[result.scored])
    raw = make().score(scored_y, result.raw.loc[result.scored])

    assert result.model_metrics == served
    assert result.raw_metrics == raw
