"""The macro family: a point-in-time climatology prior, and a served output shrunk toward it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.families.macro import (
    CLIMATOLOGY_COLUMNS,
    PROBABILITY_COLUMNS,
    MacroRegimeFamily,
    regime_climatology,
)
from models.labels import BEAR, REGIMES
from models.panel import MarketPanel
from models.skill import horizon_blocks
from training.synthetic import generate_market

HORIZON = 24
SMALL = {"n_estimators": 30, "climatology_hours": 720}


def panel_of(seed: int, candles: pd.DataFrame | None = None) -> MarketPanel:
    market = generate_market(5, 120, seed=seed)
    return MarketPanel.from_candles(market.candles if candles is None else candles, market.coins)


@pytest.fixture(scope="module")
def panel() -> MarketPanel:
    return panel_of(seed=11)


def make(**params: object) -> MacroRegimeFamily:
    return MacroRegimeFamily(horizon=HORIZON, params={**SMALL, **params})


def hourly(values: list[float]) -> pd.Series:
    hours = pd.date_range("2024-01-01", periods=len(values), freq="h", tz="UTC")
    return pd.Series(values, index=hours, dtype=float)


def test_climatology_counts_only_realised_labels_with_add_one_smoothing() -> None:
    # bull, bull, bear, unknown, sideways, bull; a label is realised 2 hours after its row,
    # and counts are in independent windows (rows / horizon).
    labels = hourly([0, 0, 1, np.nan, 2, 0])

    climatology = regime_climatology(labels, horizon=2, hours=3).to_numpy()

    expected = np.array(
        [
            [1, 1, 1],  # nothing realised yet: uniform
            [1, 1, 1],
            [1.5, 1, 1],  # row 0 (bull) realised at hour 2, worth 1/horizon of a window
            [2, 1, 1],
            [2, 1.5, 1],  # rows 0..2: bull, bull, bear
            [1.5, 1.5, 1],  # rows 1..3 (window 3): bull, bear, unknown (not counted)
        ]
    )
    expected = expected / expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(climatology, expected)


def test_climatology_at_t_ignores_everything_after_t(panel: MarketPanel) -> None:
    family = make()
    market = generate_market(5, 120, seed=11)
    moment = panel.hours[1500]
    later = market.candles["timestamp"] > moment
    candles = market.candles.copy()
    shock = np.random.default_rng(0).lognormal(0.0, 0.2, size=int(later.sum()))
    for column in ("open", "high", "low", "close", "market_cap"):
        candles.loc[later, column] *= shock

    before = family.features(panel)
    after = family.features(panel_of(seed=11, candles=candles))

    pd.testing.assert_frame_equal(before.loc[:moment], after.loc[:moment])
    changed = before[list(CLIMATOLOGY_COLUMNS)].ne(after[list(CLIMATOLOGY_COLUMNS)])
    assert changed.loc[moment:].any().any()  # the later candles did move later rows


def test_features_hold_no_levels_and_the_climatology_is_not_a_tree_input(
    panel: MarketPanel,
) -> None:
    family = make()
    data = family.training_data(panel)
    family.fit(data.X, data.y)

    assert {"btc_dominance", "eth_dominance"}.isdisjoint(data.X.columns)
    assert set(CLIMATOLOGY_COLUMNS) <= set(data.X.columns)
    assert set(CLIMATOLOGY_COLUMNS).isdisjoint(family.feature_names_)
    assert (family.baseline(data.X) == 1 / 3).all().all()  # the baseline is uniform
    served = family.serve(data.X, family.predict(data.X))
    pd.testing.assert_frame_equal(  # the climatology is reported beside what is served
        served[list(CLIMATOLOGY_COLUMNS)], data.X[list(CLIMATOLOGY_COLUMNS)]
    )


def test_serve_before_calibrate_is_the_baseline(panel: MarketPanel) -> None:
    family = make()
    data = family.training_data(panel)
    family.fit(data.X, data.y)

    served = family.serve(data.X, family.predict(data.X))

    assert family.shrink_weight == 0.0
    pd.testing.assert_frame_equal(
        served[list(PROBABILITY_COLUMNS)], family.baseline(data.X), check_exact=True
    )
    assert set(served["regime"]) <= set(REGIMES)


def test_served_probabilities_are_never_zero_or_one_even_from_extreme_raw(
    panel: MarketPanel,
) -> None:
    family = make()
    data = family.training_data(panel)
    codes = data.y["regime"].to_numpy(dtype=int)
    # A "model" that is certain and always right earns the full weight ...
    certain = pd.DataFrame(
        np.eye(len(REGIMES))[codes], index=data.X.index, columns=list(PROBABILITY_COLUMNS)
    )
    family.calibrate(data.X, certain, data.y)
    assert family.shrink_weight == 1.0
    # ... and still serves neither 0 nor 1, when right or certain and wrong.
    wrong = pd.DataFrame(
        np.eye(len(REGIMES))[(codes + 1) % len(REGIMES)],
        index=data.X.index,
        columns=list(PROBABILITY_COLUMNS),
    )
    for raw in (certain, wrong):
        served = family.serve(data.X, raw)[list(PROBABILITY_COLUMNS)].to_numpy()
        assert served.min() > 0.0
        assert served.max() < 1.0
        np.testing.assert_allclose(served.sum(axis=1), 1.0)


def test_the_weight_stays_near_zero_when_the_model_is_noise(panel: MarketPanel) -> None:
    # Labels drawn independently of the market, uniformly (the baseline), with the climatology
    # set to the same: whatever the trees learn is noise, and an overfitted tree's departures
    # are large.
    truth = [1 / 3, 1 / 3, 1 / 3]
    family = make(n_estimators=60, learning_rate=0.3, min_child_weight=5, early_stopping_rounds=0)
    X = family.features(panel)
    X[list(CLIMATOLOGY_COLUMNS)] = truth
    train, held, test = np.array_split(np.arange(len(X)), 3)
    weights, departures = [], []
    for seed in range(3):
        codes = np.random.default_rng(seed).choice(3, size=len(X), p=truth)
        y = pd.DataFrame({"regime": codes.astype(float)}, index=X.index)

        family.fit(X.iloc[train], y.iloc[train])
        family.calibrate(X.iloc[held], family.predict(X.iloc[held]), y.iloc[held])
        served = family.predict_calibrated(X.iloc[test])[list(PROBABILITY_COLUMNS)]

        weights.append(family.shrink_weight)
        departures.append((served - truth).abs().to_numpy().mean())

    assert max(weights) <= 0.3
    assert np.mean(weights) <= 0.15
    assert max(departures) < 0.02


def test_a_class_missing_from_training_keeps_its_prior(panel: MarketPanel) -> None:
    family = make()
    data = family.training_data(panel)
    keep = data.y["regime"] != BEAR

    family.fit(data.X.loc[keep], data.y.loc[keep])
    raw = family.predict(data.X)

    np.testing.assert_allclose(raw["p_bear"], data.X["climatology_bear"])
    np.testing.assert_allclose(raw.sum(axis=1), 1.0)


def test_early_stopping_falls_back_to_every_tree_on_a_short_history(panel: MarketPanel) -> None:
    data = make().training_data(panel)
    short = data.rows(np.arange(8 * HORIZON))

    assert make().fit(short.X, short.y).n_trees_ == SMALL["n_estimators"]
    assert make().fit(data.X, data.y).n_trees_ <= SMALL["n_estimators"]


def test_save_and_load_round_trip_the_served_output(panel: MarketPanel, tmp_path: Path) -> None:
    family = make()
    data = family.training_data(panel)
    fitted, held = data.rows(np.arange(1200)), data.rows(np.arange(1200, len(data.X)))
    family.fit(fitted.X, fitted.y)
    family.save(tmp_path / "uncalibrated")
    family.calibrate(held.X, family.predict(held.X), held.y)
    family.save(tmp_path / "calibrated")

    loaded = MacroRegimeFamily.load(tmp_path / "calibrated")
    bare = MacroRegimeFamily.load(tmp_path / "uncalibrated")

    assert loaded.shrink_weight == family.shrink_weight
    pd.testing.assert_frame_equal(
        loaded.predict_calibrated(held.X), family.predict_calibrated(held.X)
    )
    assert bare.shrink_weight == 0.0
    pd.testing.assert_frame_equal(
        bare.predict_calibrated(held.X)[list(PROBABILITY_COLUMNS)], bare.baseline(held.X)
    )


def test_losses_average_to_the_primary_metric_and_score_is_complete(
    panel: MarketPanel,
) -> None:
    family = make()
    data = family.training_data(panel)
    fitted, held = data.rows(np.arange(1200)), data.rows(np.arange(1200, len(data.X)))
    family.fit(fitted.X, fitted.y).calibrate(held.X, family.predict(held.X), held.y)

    for predictions in (
        family.predict(held.X),
        family.predict_calibrated(held.X),
        family.baseline(held.X),
    ):
        scores = family.score(held.y, predictions)
        losses = family.losses(held.y, predictions)
        assert losses.shape == (len(held.X),)
        assert math.isclose(losses.mean(), scores[family.primary_metric])
        assert scores["log_loss_uniform"] == math.log(3)
        assert math.isclose(
            scores["log_loss_skill_vs_uniform"], 1 - scores["log_loss"] / math.log(3)
        )
        for metric in ("rps", "brier", "accuracy", "balanced_accuracy", "macro_f1", "ece"):
            assert 0.0 <= scores[metric] <= 2.0
    windows = len(np.unique(horizon_blocks(held.y.index, HORIZON)))
    assert scores["independent_windows"] == windows

    report = family.calibration_report(held.X, family.predict_calibrated(held.X), held.y)
    assert report["shrink_weight"] == family.shrink_weight
    assert {"brier", "ece", "brier_of_reference", "brier_skill"} <= set(report)
