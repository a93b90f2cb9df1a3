"""Skill metrics against answers worked out by hand, scipy, and planted effects.

Float tolerance: pytest.approx (relative 1e-6) unless the values are exactly representable.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from models.labels import BEAR, BULL, SIDEWAYS
from models.skill import (
    REGIME_ORDER,
    Interval,
    absolute_errors,
    binary_auc,
    brier_losses,
    brier_skill,
    compare_rankings,
    cross_sectional_quintile_spread,
    cross_sectional_rank_ic,
    horizon_blocks,
    log_loss_skill,
    log_losses,
    mean_difference_interval,
    quintile_spread,
    rank_ic_summary,
    ranked_probability_score,
    ranked_probability_scores,
    skill_interval,
    squared_errors,
)

NAN = math.nan


def _hours(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="timestamp")


def _long(rows: list[list[float]]) -> pd.Series:
    """One list per hour, one value per entity e0, e1, ...; shorter lists are NaN-padded."""
    width = max(len(row) for row in rows)
    wide = pd.DataFrame(
        [row + [NAN] * (width - len(row)) for row in rows],
        index=_hours(len(rows)),
        columns=pd.Index([f"e{i}" for i in range(width)], name="entity"),
    )
    return wide.stack(future_stack=True)


def _random_panel(
    n_hours: int, n_entities: int, seed: int
) -> tuple[pd.Series, np.random.Generator]:
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [_hours(n_hours), [f"e{i}" for i in range(n_entities)]], names=["timestamp", "entity"]
    )
    return pd.Series(rng.normal(size=len(index)), index=index), rng


# --------------------------------------------------------------------------- blocks


def test_horizon_blocks_by_hand() -> None:
    assert horizon_blocks(_hours(10), 4).tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    hours = _hours(10)[[5, 0, 9, 5]]
    assert horizon_blocks(hours, 3).tolist() == [1, 0, 3, 1]
    assert horizon_blocks(_hours(3), 1).tolist() == [0, 1, 2]


def test_horizon_blocks_rejects_a_zero_horizon() -> None:
    with pytest.raises(ValueError, match="horizon"):
        horizon_blocks(_hours(3), 0)


# --------------------------------------------------------------------------- rank IC


def test_rank_ic_by_hand() -> None:
    scores = _long(
        [
            [1, 2, 3, 4, 5],  # perfectly ranked
            [1, 2, 3, 4, 5],  # reversed outcomes
            [1, 2, 3, 4, NAN],  # four valid pairs: too few
            [7, 7, 7, 7, 7],  # constant scores
            [1, 2, 3, 4, 5],  # constant outcomes
            [1, 2, 3, 4, 5, 6],  # one swap: 1 - 6 * 2 / (6 * 35)
        ]
    )
    outcomes = _long(
        [
            [0.1, 0.2, 0.3, 0.4, 0.9],
            [5, 4, 3, 2, 1],
            [1, 2, 3, 4, 5],
            [1, 2, 3, 4, 5],
            [2, 2, 2, 2, 2],
            [1, 2, 4, 3, 5, 6],
        ]
    )
    ic = cross_sectional_rank_ic(scores, outcomes)
    hours = _hours(6)
    assert list(ic.index) == [hours[0], hours[1], hours[5]]
    assert ic.iloc[0] == pytest.approx(1.0)
    assert ic.iloc[1] == pytest.approx(-1.0)
    assert ic.iloc[2] == pytest.approx(1 - 6 * 2 / (6 * 35))
    assert cross_sectional_rank_ic(scores, outcomes, min_entities=4).index[2] == hours[2]


def test_rank_ic_matches_scipy_with_ties_and_gaps() -> None:
    outcomes, rng = _random_panel(n_hours=40, n_entities=12, seed=1)
    scores = pd.Series(rng.integers(0, 4, len(outcomes)).astype(float), index=outcomes.index)
    scores[rng.random(len(scores)) < 0.15] = NAN
    outcomes = outcomes.round(1)  # ties on the outcome side too
    ic = cross_sectional_rank_ic(scores, outcomes)
    assert len(ic) > 30
    for hour, value in ic.items():
        pair = pd.DataFrame({"s": scores.loc[hour], "o": outcomes.loc[hour]}).dropna()
        assert value == pytest.approx(spearmanr(pair["s"], pair["o"]).statistic)


def test_rank_ic_aligns_on_the_index() -> None:
    outcomes, rng = _random_panel(n_hours=5, n_entities=8, seed=2)
    scores = outcomes + rng.normal(size=len(outcomes))
    shuffled = outcomes.sample(frac=1.0, random_state=0)
    pd.testing.assert_series_equal(
        cross_sectional_rank_ic(scores, shuffled), cross_sectional_rank_ic(scores, outcomes)
    )


def test_rank_ic_summary_by_hand() -> None:
    # Horizon 2: blocks (0.0, 0.2), (0.3, 0.3), (0.1, 0.3), (0.2,) have means 0.1, 0.3, 0.2,
    # 0.2: mean 0.2, sd sqrt(0.02 / 3).
    ic = pd.Series([0.0, 0.2, 0.3, 0.3, 0.1, 0.3, 0.2], index=_hours(7))
    summary = rank_ic_summary(ic, horizon=2)
    icir = 0.2 / math.sqrt(0.02 / 3)
    assert summary == {
        "rank_ic": pytest.approx(1.4 / 7),
        "rank_ic_hours": 7,
        "rank_ic_blocks": 4,
        "icir": pytest.approx(icir),
        "rank_ic_t": pytest.approx(icir * 2),
    }


def test_rank_ic_summary_is_none_where_undefined() -> None:
    one_block = rank_ic_summary(pd.Series([0.1, 0.3], index=_hours(2)), horizon=24)
    assert one_block["rank_ic_blocks"] == 1
    assert one_block["icir"] is None and one_block["rank_ic_t"] is None
    flat = rank_ic_summary(pd.Series([0.1, 0.1, 0.1], index=_hours(3)), horizon=1)
    assert flat["icir"] is None and flat["rank_ic_t"] is None
    empty = rank_ic_summary(pd.Series([], index=_hours(0), dtype=float), horizon=1)
    assert empty == {
        "rank_ic": None,
        "rank_ic_hours": 0,
        "rank_ic_blocks": 0,
        "icir": None,
        "rank_ic_t": None,
    }


# --------------------------------------------------------------------------- quintiles


def test_quintile_spread_by_hand() -> None:
    scores = _long(
        [
            [3, 1, 4, 10, 5, 9, 2, 6, 8, 7],  # ten entities: two each side
            [1, 2, 3, 4, 5, 6, 7],  # seven: ceil(7 / 5) = 2 each side
            [1, 2, 3, 4],  # too few
            [5, 5, 5, 5, 5],  # constant scores
        ]
    )
    outcomes = _long(
        [
            [0, 10, 0, 4, 0, 6, 20, 0, 0, 0],  # top (10, 9): 4, 6; bottom (1, 2): 10, 20
            [1, 3, 0, 0, 0, 8, 10],  # top: 8, 10; bottom: 1, 3
            [1, 2, 3, 4],
            [1, 2, 3, 4, 5],
        ]
    )
    per_hour = cross_sectional_quintile_spread(scores, outcomes)
    assert per_hour.tolist() == [5.0 - 15.0, 9.0 - 2.0]
    assert list(per_hour.index) == list(_hours(2))
    summary = quintile_spread(scores, outcomes, horizon=1)
    assert summary["quintile_spread"] == pytest.approx(-1.5)
    # Two one-hour blocks, -10 and 7: mean -1.5, sd sqrt(144.5).
    assert summary["quintile_spread_t"] == pytest.approx(-1.5 / math.sqrt(144.5) * math.sqrt(2))


# --------------------------------------------------------------------------- losses


def test_per_row_losses_by_hand() -> None:
    assert absolute_errors([1.0, 2.0], [1.5, 0.0]).tolist() == [0.5, 2.0]
    assert squared_errors([1.0, 2.0], [1.5, 0.0]).tolist() == [0.25, 4.0]
    assert brier_losses([0.75, 0.5], [1, 1]).tolist() == [0.0625, 0.25]
    losses = log_losses([[0.5, 0.5], [0.0, 1.0]], [0, 0])
    assert losses.tolist() == pytest.approx([math.log(2), -math.log(1e-15)])
    with pytest.raises(ValueError, match="rows"):
        absolute_errors([1.0, 2.0], [1.0])


def test_rps_of_a_perfect_forecast_is_zero() -> None:
    assert ranked_probability_score(np.eye(3), [0, 1, 2], REGIME_ORDER) == 0.0


def test_rps_of_a_uniform_forecast_by_hand() -> None:
    # Lowest category observed: CDFs (1/3, 2/3) vs (1, 1) -> (4/9 + 1/9) / 2 = 5/18.
    # Middle: (1/3, 2/3) vs (0, 1) -> (1/9 + 1/9) / 2 = 1/9. Highest: 5/18 again.
    uniform = np.full((3, 3), 1 / 3)
    scores = ranked_probability_scores(uniform, [BEAR, SIDEWAYS, BULL], REGIME_ORDER)
    assert scores.tolist() == pytest.approx([5 / 18, 1 / 9, 5 / 18])
    assert ranked_probability_score(uniform, [BEAR, SIDEWAYS, BULL], REGIME_ORDER) == (
        pytest.approx((5 / 18 + 1 / 9 + 5 / 18) / 3)
    )


def test_rps_charges_a_near_miss_less_and_depends_on_the_order() -> None:
    all_bull = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    near_far = ranked_probability_scores(all_bull, [SIDEWAYS, BEAR], REGIME_ORDER)
    assert near_far.tolist() == [0.5, 1.0]
    # In the code order bull < bear < sideways, sideways is the far miss.
    assert ranked_probability_scores(all_bull, [SIDEWAYS, BEAR], (0, 1, 2)).tolist() == [1.0, 0.5]
    with pytest.raises(ValueError, match="permutation"):
        ranked_probability_scores(all_bull, [0, 1], (0, 1, 1))


# --------------------------------------------------------------------------- intervals


def test_skill_interval_of_identical_losses_is_zero() -> None:
    loss = np.random.default_rng(3).random(200)
    interval = skill_interval(loss, loss, np.arange(200) // 10)
    assert interval.estimate == 0.0
    assert interval.low <= 0.0 <= interval.high
    assert interval.n_blocks == 20
    assert not interval.entirely_above_zero


def test_skill_interval_of_half_the_loss_is_one_half() -> None:
    rng = np.random.default_rng(4)
    baseline = rng.random(480) + 0.5
    model = 0.5 * baseline * (1 + 0.01 * rng.normal(size=480))
    interval = skill_interval(model, baseline, np.arange(480) // 24)
    assert interval.estimate == pytest.approx(0.5, abs=0.005)
    assert interval.high - interval.low < 0.01
    assert interval.low <= interval.estimate <= interval.high
    assert interval.entirely_above_zero


def test_skill_interval_resamples_whole_blocks() -> None:
    # Four blocks of 250 rows, the model's loss ratio differing by block: the evidence is
    # four blocks, not a thousand rows.
    rng = np.random.default_rng(5)
    baseline = rng.random(1000) + 0.5
    ratio = np.repeat([0.2, 0.9, 0.4, 1.1], 250)
    model = baseline * ratio * (1 + 0.05 * rng.normal(size=1000))
    by_row = skill_interval(model, baseline, np.arange(1000))
    by_block = skill_interval(model, baseline, np.arange(1000) // 250)
    assert by_block.estimate == by_row.estimate
    assert by_block.n_blocks == 4
    assert by_block.high - by_block.low > 5 * (by_row.high - by_row.low)
    # One block resampled is always the same data.
    single = skill_interval(model, baseline, np.zeros(1000))
    assert single.low == pytest.approx(single.estimate)
    assert single.high == pytest.approx(single.estimate)


def test_skill_interval_is_reproducible_and_validated() -> None:
    rng = np.random.default_rng(6)
    model, baseline, blocks = rng.random(100), rng.random(100), np.arange(100) // 5
    assert skill_interval(model, baseline, blocks, seed=1) == skill_interval(
        model, baseline, blocks, seed=1
    )
    with pytest.raises(ValueError, match="zero"):
        skill_interval(model, np.zeros(100), blocks)
    with pytest.raises(ValueError, match="blocks"):
        skill_interval(model, baseline, blocks[:-1])
    with pytest.raises(ValueError, match="confidence"):
        skill_interval(model, baseline, blocks, confidence=1.0)


def test_interval_as_dict_is_plain_json() -> None:
    interval = Interval(np.float64(0.25), np.float64(0.125), np.float64(0.5), 8)
    assert interval.as_dict() == {"estimate": 0.25, "low": 0.125, "high": 0.5, "n_blocks": 8}
    assert json.loads(json.dumps(interval.as_dict())) == interval.as_dict()
    assert interval.entirely_above_zero


def test_mean_difference_interval_by_hand() -> None:
    rng = np.random.default_rng(7)
    b = rng.normal(size=300)
    shifted = mean_difference_interval(b + 1.0, b, np.arange(300) // 10)
    assert (shifted.estimate, shifted.low, shifted.high) == pytest.approx((1.0, 1.0, 1.0))
    assert shifted.n_blocks == 30
    noise = mean_difference_interval(rng.normal(size=300), b, np.arange(300) // 10)
    assert noise.low < 0.0 < noise.high


# --------------------------------------------------------------------------- probability skill


def test_binary_auc_by_hand() -> None:
    assert binary_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert binary_auc([0.1, 0.4], [1, 1]) is None


def test_brier_skill_by_hand() -> None:
    # Brier 0.04 against 0.25 for the coin flip.
    assert brier_skill([0.8, 0.2], [1, 0], 0.5) == pytest.approx(0.84)
    assert brier_skill([0.8, 0.2], [1, 0], [0.8, 0.2]) == 0.0
    assert brier_skill([0.5, 0.5], [1, 0], [1.0, 0.0]) is None


def test_log_loss_skill_by_hand() -> None:
    perfect = [[1.0, 0.0], [0.0, 1.0]]
    assert log_loss_skill(perfect, [0, 1], [0.5, 0.5]) == 1.0
    coin = [[0.5, 0.5], [0.5, 0.5]]
    assert log_loss_skill(coin, [0, 1], [0.5, 0.5]) == 0.0
    # log 2 against -log 0.8 per row on the row-wise reference.
    skill = log_loss_skill(coin, [0, 1], [[0.8, 0.2], [0.2, 0.8]])
    assert skill == pytest.approx(1 - math.log(2) / -math.log(0.8))
    assert log_loss_skill(coin, [0, 1], perfect) is None


# --------------------------------------------------------------------------- model vs factor


def test_compare_rankings_a_model_that_sees_the_outcome_beats_noise() -> None:
    outcomes, rng = _random_panel(n_hours=240, n_entities=20, seed=8)
    model = outcomes + 0.5 * rng.normal(size=len(outcomes))
    factor = pd.Series(rng.normal(size=len(outcomes)), index=outcomes.index)
    result = compare_rankings(model, factor, outcomes, horizon=24)
    assert result["beats_factor"] is True
    assert result["difference_low"] > 0
    assert result["difference"] == pytest.approx(result["model_rank_ic"] - result["factor_rank_ic"])
    assert result["model_rank_ic_hours"] == result["factor_rank_ic_hours"] == 240
    assert result["model_rank_ic_blocks"] == 10
    assert result["model_quintile_spread"] > result["factor_quintile_spread"]
    json.dumps(result, allow_nan=False)


def test_compare_rankings_of_the_factor_itself_is_no_improvement() -> None:
    outcomes, rng = _random_panel(n_hours=120, n_entities=10, seed=9)
    factor = outcomes + rng.normal(size=len(outcomes))
    result = compare_rankings(factor, factor, outcomes, horizon=4)
    assert (result["difference"], result["difference_low"], result["difference_high"]) == (
        0.0,
        0.0,
        0.0,
    )
    assert result["beats_factor"] is False


def test_compare_rankings_uses_the_same_hours_for_both() -> None:
    outcomes, rng = _random_panel(n_hours=48, n_entities=10, seed=10)
    model = outcomes + rng.normal(size=len(outcomes))
    factor = pd.Series(rng.normal(size=len(outcomes)), index=outcomes.index)
    hours = outcomes.index.get_level_values("timestamp")
    factor[hours < hours[0] + pd.Timedelta(hours=12)] = NAN  # the factor needs a warm-up
    result = compare_rankings(model, factor, outcomes, horizon=1)
    assert result["model_rank_ic_hours"] == result["factor_rank_ic_hours"] == 36
    empty = compare_rankings(model, factor * NAN, outcomes, horizon=1)
    assert empty["difference"] is None and empty["beats_factor"] is False
    assert empty["model_rank_ic"] is None
    json.dumps(empty, allow_nan=False)
