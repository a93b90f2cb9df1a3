"""The family contract: same seed same model, save/load round trip, point-in-time baselines,
serving that starts at the baseline, per-row losses that average to the primary metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.families import FAMILIES, ModelFamily, TrainingData
from models.panel import MarketPanel
from training.synthetic import generate_market

SMALL = {
    "macro": {"n_estimators": 20},
    "sector": {"n_estimators": 20},
    "asset": {"n_estimators": 20},
    "timing": {"lookback": 8, "stride": 6, "sequence": {"max_epochs": 2, "hidden_size": 8}},
}
HORIZONS = {"macro": 48, "sector": 48, "asset": 24, "timing": 12}


@pytest.fixture(scope="module")
def panel() -> MarketPanel:
    market = generate_market(5, 80, seed=5)
    return MarketPanel.from_candles(market.candles, market.coins)


def make(layer: str, seed: int = 0) -> ModelFamily:
    return FAMILIES[layer](horizon=HORIZONS[layer], params=SMALL[layer], random_state=seed)


def data_for(layer: str, panel: MarketPanel) -> TrainingData:
    data = make(layer).training_data(panel)
    return data.rows(np.arange(min(len(data.X), 4000)))


@pytest.mark.parametrize("layer", list(FAMILIES))
def test_same_seed_gives_the_same_model(layer: str, panel: MarketPanel) -> None:
    data = data_for(layer, panel)
    first = make(layer).fit(data.X, data.y).predict(data.X)
    second = make(layer).fit(data.X, data.y).predict(data.X)
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize("layer", list(FAMILIES))
def test_save_and_load_give_identical_calibrated_predictions(
    layer: str, panel: MarketPanel, tmp_path: Path
) -> None:
    data = data_for(layer, panel)
    family = make(layer).fit(data.X, data.y)
    family.calibrate(data.X, family.predict(data.X), data.y)
    family.save(tmp_path / layer)

    loaded = type(family).load(tmp_path / layer)

    pd.testing.assert_frame_equal(
        loaded.predict_calibrated(data.X), family.predict_calibrated(data.X)
    )


@pytest.mark.parametrize("layer", list(FAMILIES))
def test_baseline_is_point_in_time_from_the_rows_alone_and_matches_output_columns(
    layer: str, panel: MarketPanel
) -> None:
    data = data_for(layer, panel)
    family = make(layer).fit(data.X, data.y)
    tail = data.X.tail(10)

    baseline = family.baseline(tail)

    raw_columns = list(family.predict(tail).columns)
    # The served columns beyond the raw ones (an interval) come from the serving transform.
    assert list(baseline.columns[: len(raw_columns)]) == raw_columns
    assert set(baseline.columns) <= set(family.predict_calibrated(tail).columns)
    assert baseline.index.equals(tail.index)
    # Each row's naive forecast depends on that row only, never on the others or on labels.
    pd.testing.assert_frame_equal(baseline, family.baseline(data.X).tail(10))
    assert family.primary_metric in family.score(data.y.tail(10), baseline)


@pytest.mark.parametrize("layer", list(FAMILIES))
def test_before_calibration_a_family_serves_its_baseline(layer: str, panel: MarketPanel) -> None:
    data = data_for(layer, panel)
    family = make(layer).fit(data.X, data.y)

    served = family.predict_calibrated(data.X)
    baseline = family.baseline(data.X)

    assert family.shrink_weight == 0.0
    pd.testing.assert_frame_equal(served[baseline.columns], baseline)


@pytest.mark.parametrize("layer", list(FAMILIES))
def test_per_row_losses_average_to_the_primary_metric(layer: str, panel: MarketPanel) -> None:
    data = data_for(layer, panel)
    family = make(layer).fit(data.X, data.y)
    family.calibrate(data.X, family.predict(data.X), data.y)
    served = family.predict_calibrated(data.X)

    losses = family.losses(data.y, served)

    assert losses.shape == (len(data.X),)
    assert losses.mean() == pytest.approx(family.score(data.y, served)[family.primary_metric])


def test_asset_confidence_is_a_probability_of_the_spec_accuracy_event(
    panel: MarketPanel,
) -> None:
    from models.families.asset import accurate

    predicted = np.log(np.array([1.05, 1.049, 1.0]))
    actual = np.zeros(3)
    # |pred - actual| / actual: 5 % is at the 5 % threshold (accurate), 4.9 % is inside.
    assert accurate(predicted, actual, 5.0).tolist() == [True, True, True]
    assert accurate(np.log(np.array([1.06])), np.zeros(1), 5.0).tolist() == [False]
