"""The cross-sectional families' serving: the ranking chosen out of fold, the shrinkage toward
persistence, and a factor as the fallback when the model adds nothing beyond it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.families.asset import FACTOR_NAMES, AssetPriceFamily
from models.families.cross_section import RANKED_PREFIX, demeaned_by_hour
from models.skill import DOES_NOT_BEAT_FACTOR

HOURS, COINS = 600, 20


def hand_built(seed: int, factor_strength: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ranked factor columns, volatilities, and forward returns partly driven by one factor."""
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [pd.date_range("2024-01-01", periods=HOURS, freq="h", tz="UTC"), range(COINS)],
        names=["timestamp", "symbol"],
    )
    ranks = rng.permuted(np.tile(np.linspace(-0.5, 0.5, COINS), (HOURS, 1)), axis=1).ravel()
    X = pd.DataFrame(
        {RANKED_PREFIX + name: rng.uniform(-0.5, 0.5, len(index)) for name in FACTOR_NAMES},
        index=index,
    )
    X[RANKED_PREFIX + "reversal_24h"] = ranks
    X["realized_vol_24h"] = 0.01
    X["realized_vol_168h"] = 0.01
    market = np.repeat(rng.normal(0, 0.03, HOURS), COINS)
    returns = market + factor_strength * ranks + rng.normal(0, 0.02, len(index))
    return X, pd.DataFrame({"forward_return": returns}, index=index)


def noise_model(X: pd.DataFrame, seed: int) -> pd.DataFrame:
    values = np.random.default_rng(seed).normal(0, 0.01, len(X))
    return pd.DataFrame({"predicted_return": values}, index=X.index)


def test_the_ranking_falls_back_to_the_factor_when_the_model_adds_nothing() -> None:
    X, y = hand_built(seed=1, factor_strength=0.02)
    family = AssetPriceFamily(horizon=1).calibrate(X, noise_model(X, seed=2), y)

    assert family.ranker_ == "reversal_24h"
    assert family.best_candidate_ == "reversal_24h"
    served = family.serve(X, noise_model(X, seed=3))
    np.testing.assert_array_equal(served["rank_score"], X[RANKED_PREFIX + "reversal_24h"])
    assert family.shrink_weight > 0  # the factor is strong here: the forecast uses it


def test_a_model_that_knows_the_answer_keeps_the_ranking() -> None:
    X, y = hand_built(seed=4, factor_strength=0.02)
    oracle = pd.DataFrame({"predicted_return": demeaned_by_hour(y["forward_return"])})

    family = AssetPriceFamily(horizon=1).calibrate(X, oracle, y)

    assert family.ranker_ == "model"
    comparison = family.score(y, family.serve(X, oracle))["factor"]
    assert comparison["beats_factor"] and comparison["difference_low"] > 0
    assert "flag" not in comparison


def test_on_noise_the_forecast_is_persistence_and_the_flag_is_raised() -> None:
    X, y = hand_built(seed=5, factor_strength=0.0)
    family = AssetPriceFamily(horizon=1).calibrate(X, noise_model(X, seed=6), y)
    served = family.serve(X, noise_model(X, seed=7))

    assert family.shrink_weight == 0.0
    assert (served["predicted_return"] == 0.0).all()
    assert family.score(y, served)["factor"]["flag"] == DOES_NOT_BEAT_FACTOR


def test_confidence_is_a_probability_strictly_inside_0_and_1() -> None:
    X, y = hand_built(seed=8, factor_strength=0.02)
    family = AssetPriceFamily(horizon=1).calibrate(X, noise_model(X, seed=9), y)

    confidence = family.serve(X, noise_model(X, seed=10))["confidence"]

    assert ((confidence > 0) & (confidence < 1)).all()


def test_demeaning_removes_the_hours_common_move() -> None:
    index = pd.MultiIndex.from_product(
        [pd.date_range("2024-01-01", periods=2, freq="h", tz="UTC"), ["a", "b"]],
        names=["timestamp", "symbol"],
    )
    values = pd.Series([0.10, 0.20, -0.30, -0.10], index=index)

    assert demeaned_by_hour(values).tolist() == pytest.approx([-0.05, 0.05, -0.10, 0.10])


def test_the_factor_is_chosen_on_earlier_rows_only() -> None:
    """reversal_24h drives the early rows, momentum_168h the later ones: a transform fitted on
    the early rows keeps serving reversal beside the later ones, whatever they would say."""
    early_X, early_y = hand_built(seed=11, factor_strength=0.02)
    later_X, _ = hand_built(seed=12, factor_strength=0.0)
    column = RANKED_PREFIX + "momentum_168h"
    later_X[column] = later_X[RANKED_PREFIX + "reversal_24h"]
    later_X[RANKED_PREFIX + "reversal_24h"] = np.random.default_rng(13).permutation(
        later_X[column].to_numpy()
    )

    family = AssetPriceFamily(horizon=1).calibrate(early_X, noise_model(early_X, seed=14), early_y)
    served = family.serve(later_X, noise_model(later_X, seed=15))

    assert family.best_candidate_ == "reversal_24h"
    np.testing.assert_array_equal(
        served["candidate_score"], later_X[RANKED_PREFIX + "reversal_24h"]
    )


def test_sectors_are_ranked_beside_their_own_one_line_factors() -> None:
    from models.families.sector import SectorRotationFamily

    index = pd.MultiIndex.from_product(
        [pd.date_range("2024-01-01", periods=1, freq="h", tz="UTC"), ["DeFi", "Memes", "L1"]],
        names=["timestamp", "sector"],
    )
    X = pd.DataFrame(
        {
            RANKED_PREFIX + "sector_vol_168h": [-0.5, 0.5, 0.0],
            RANKED_PREFIX + "sector_relative_24h": [0.5, -0.5, 0.0],
            RANKED_PREFIX + "sector_relative_168h": [0.0, 0.5, -0.5],
        },
        index=index,
    )

    candidates = SectorRotationFamily().candidates(X)

    assert candidates["low_volatility_168h"].idxmax()[1] == "DeFi"  # the calmest
    assert candidates["reversal_24h"].idxmax()[1] == "Memes"  # the last day's loser
    assert candidates["momentum_168h"].idxmax()[1] == "Memes"  # the last week's winner
