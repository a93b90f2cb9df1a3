"""The timing family: rolling base rate as baseline and prior, subsampling that keeps every
coin, bounded inputs, out-of-fold estimator choice, shrinkage, the trading policy's numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.families import timing
from models.families.base import TrainingData
from models.families.timing import (
    BASE_RATE_COLUMNS,
    PROBABILITY_COLUMNS,
    TradeTimingFamily,
    lag_columns,
    rolling_base_rates,
    staggered_rows,
)
from models.features import COIN_FEATURES
from models.panel import MarketPanel
from training.synthetic import generate_market

HORIZON = 12
LOOKBACK = 8
GRU = {"hidden_size": 8, "max_epochs": 2, "batch_size": 256}
SMALL: dict[str, Any] = {
    "lookback": LOOKBACK,
    "base_rate_hours": 240,
    "trees": {"n_estimators": 30},
    "sequence": GRU,
}


def make(**params: Any) -> TradeTimingFamily:
    return TradeTimingFamily(horizon=HORIZON, params={**SMALL, **params})


def _panel(candles: pd.DataFrame, coins: pd.DataFrame) -> MarketPanel:
    return MarketPanel.from_candles(candles, coins)


@pytest.fixture(scope="module")
def market() -> tuple[pd.DataFrame, pd.DataFrame]:
    generated = generate_market(5, 90, seed=11)
    return generated.candles, generated.coins


@pytest.fixture(scope="module")
def data(market: tuple[pd.DataFrame, pd.DataFrame]) -> TrainingData:
    return make().training_data(_panel(*market))


def _hours(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="timestamp")


# --------------------------------------------------------------------------- base rate


def test_base_rate_pools_the_entries_known_by_t_over_the_window() -> None:
    hours = _hours(10)
    index = pd.MultiIndex.from_product([hours, ["A", "B"]], names=["timestamp", "symbol"])
    long_hit = np.zeros((10, 2))
    long_hit[[2, 3, 4], 0] = 1.0  # coin A hits at entry hours 2, 3 and 4
    long_hit[3, 1] = np.nan  # B's outcome at hour 3 is unknown: not an entry
    short_hit = np.where(np.isnan(long_hit), np.nan, 0.0)
    labels = pd.DataFrame(
        {"long_hit": long_hit.ravel(), "short_hit": short_hit.ravel()}, index=index
    )

    rates = rolling_base_rates(labels, hours, horizon=2, window=3)

    # At hour 6 the outcomes of entries 2, 3, 4 are known (s + 2 <= 6) and in the window:
    # 5 entries (B's hour 3 unknown), 3 hits; add-one: (3 + 1) / (5 + 2).
    assert rates.loc[hours[6], "base_rate_long"] == pytest.approx(4 / 7)
    assert rates.loc[hours[6], "base_rate_short"] == pytest.approx(1 / 7)
    # Before any outcome is known (t < horizon), the add-one rate of nothing: 1/2.
    assert rates.loc[hours[1]].tolist() == [0.5, 0.5]
    # At hour 2 only entry 0 is known: 2 entries, no hit.
    assert rates.loc[hours[2], "base_rate_long"] == pytest.approx(1 / 4)
    # Never 0 or 1, even after only hits or only misses.
    assert ((rates > 0) & (rates < 1)).all().all()


def test_features_carry_the_base_rate_of_their_hour(
    market: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    panel = _panel(*market)
    family = make()
    X = family.features(panel)
    expected = rolling_base_rates(family.labels(panel), panel.hours, HORIZON, 240)

    joined = expected.reindex(X.index.get_level_values("timestamp"))
    np.testing.assert_allclose(X[list(BASE_RATE_COLUMNS)].to_numpy(), joined.to_numpy())
    assert list(X.columns[:2]) == list(BASE_RATE_COLUMNS)
    assert list(X.columns[2:]) == lag_columns(LOOKBACK)
    pd.testing.assert_frame_equal(
        family.baseline(X), X[list(BASE_RATE_COLUMNS)].set_axis(list(PROBABILITY_COLUMNS), axis=1)
    )


def test_features_and_base_rate_at_t_ignore_candles_after_t(
    market: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    candles, coins = market
    cutoff = pd.Timestamp(candles["timestamp"].sort_values().iloc[len(candles) * 2 // 3])
    later = pd.to_datetime(candles["timestamp"], utc=True) > cutoff
    perturbed = candles.copy()
    factor = np.random.default_rng(3).uniform(0.5, 2.0, size=int(later.sum()))
    for column in ("open", "high", "low", "close"):
        perturbed.loc[later, column] *= factor
    perturbed.loc[later, "volume"] *= 3.0

    original = make().features(_panel(candles, coins))
    changed = make().features(_panel(perturbed, coins))

    upto = original.index.get_level_values("timestamp") <= cutoff
    pd.testing.assert_frame_equal(changed.loc[upto], original.loc[upto])
    after = original.index.get_level_values("timestamp") > cutoff + pd.Timedelta(hours=HORIZON)
    assert not np.allclose(
        changed.loc[after, "base_rate_long"], original.loc[after, "base_rate_long"]
    )


# --------------------------------------------------------------------------- subsampling


def test_staggered_rows_keep_every_coin_with_a_stride_of_the_coin_count() -> None:
    index = pd.MultiIndex.from_product([_hours(100), list("ABCDE")], names=["timestamp", "symbol"])

    rows = staggered_rows(index, stride=5)

    kept = index[rows].get_level_values("symbol").value_counts()
    assert sorted(kept.index) == list("ABCDE")
    assert (kept == 20).all()  # each coin keeps one hour in five
    # Every hour still has one coin, so the sample spans the whole period.
    assert index[rows].get_level_values("timestamp").nunique() == 100
    assert np.all(np.diff(rows) > 0)  # time order is kept
    # The old subsample (every 5th row of the time-then-symbol order) kept coin A only.
    assert set(index[::5].get_level_values("symbol")) == {"A"}


def test_the_gru_trains_on_every_coin(data: TrainingData, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[set[str]] = []

    def recording(index: pd.Index, stride: int) -> np.ndarray:
        rows = staggered_rows(index, stride)
        seen.append(set(index[rows].get_level_values("symbol")))
        return rows

    monkeypatch.setattr(timing, "staggered_rows", recording)
    make(estimator="gru", stride=5).fit(data.X, data.y)

    assert seen == [set(data.X.index.get_level_values("symbol"))]
    assert len(seen[0]) == 5


# --------------------------------------------------------------------------- inputs


def test_gru_inputs_of_training_and_later_rows_share_one_bounded_scale(
    data: TrainingData,
) -> None:
    hours = data.X.index.get_level_values("timestamp")
    early = hours < hours.unique().sort_values()[len(hours.unique()) // 2]
    family = make(estimator="gru", stride=1).fit(data.X.loc[early], data.y.loc[early])
    assert family.sequence_ is not None

    seen = family.sequence_.standardise(family._windows(data.X.loc[early]))
    later = family.sequence_.standardise(family._windows(data.X.loc[~early]))

    clip = family.sequence_.clip_z
    assert np.abs(seen).max() <= clip
    assert np.abs(later).max() <= clip
    # The training rows are centred with unit spread, and the later rows on that scale too.
    channels = len(COIN_FEATURES)
    np.testing.assert_allclose(np.median(seen.reshape(-1, channels), axis=0), 0.0, atol=0.2)
    for values in (seen, later):
        low, high = np.percentile(values.reshape(-1, channels), [25, 75], axis=0)
        assert ((high - low) / 1.349 < 3.0).all()


def test_raw_inputs_have_outliers_the_standardisation_must_bound(data: TrainingData) -> None:
    # The reason for the clip: fat tails put plain z-scores of some inputs far beyond 5.
    windows = make()._windows(data.X)
    last = windows[:, -1, :].astype(float)
    z = (last - last.mean(axis=0)) / last.std(axis=0)
    assert np.abs(z).max() > 5.0


# --------------------------------------------------------------------------- estimators


def _planted(n_hours: int, seed: int) -> TrainingData:
    """Random windows whose long hit follows the sum of channel 0 over the whole window:
    the GRU sees it, the trees (last hour only) see an eighth of it."""
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [_hours(n_hours), list("ABCDE")], names=["timestamp", "symbol"]
    )
    n = len(index)
    windows = rng.standard_normal((n, LOOKBACK, len(COIN_FEATURES))).astype(np.float32)
    X = pd.DataFrame(windows.reshape(n, -1), index=index, columns=lag_columns(LOOKBACK))
    X.insert(0, "base_rate_long", 0.5)
    X.insert(1, "base_rate_short", 0.3)
    signal = windows[:, :, 0].sum(axis=1) / np.sqrt(LOOKBACK)
    long_hit = (signal + 0.3 * rng.standard_normal(n) > 0).astype(float)
    short_hit = (rng.uniform(size=n) < 0.3).astype(float)
    y = pd.DataFrame(
        {
            "long_hit": long_hit,
            "short_hit": short_hit,
            "long_return": np.where(long_hit == 1, 0.02, -0.01),
            "short_return": np.where(short_hit == 1, 0.02, -0.01),
            "atr": 1.0,
            "atr_rel": 0.01,
        },
        index=index,
    )
    return TrainingData(X, y)


def test_auto_keeps_the_estimator_with_the_lower_inner_brier_and_records_both() -> None:
    planted = _planted(500, seed=1)
    sequence = {"hidden_size": 8, "max_epochs": 6, "batch_size": 64, "learning_rate": 1e-2}

    family = make(stride=1, sequence=sequence).fit(planted.X, planted.y)

    assert set(family.inner_briers_) == {"gru", "trees"}
    assert family.estimator_ == "gru"
    assert family.inner_briers_["gru"] < family.inner_briers_["trees"] - 0.02
    assert family.boosters_ == {}  # nothing left over from the comparison


def test_a_named_estimator_is_fitted_without_a_comparison(data: TrainingData) -> None:
    family = make(estimator="trees").fit(data.X, data.y)

    assert family.estimator_ == "trees"
    assert family.inner_briers_ == {}
    assert family.sequence_ is None
    assert family.feature_importance().index.str.endswith("_lag0").all()


def test_an_unknown_estimator_is_rejected(data: TrainingData) -> None:
    with pytest.raises(ValueError, match="estimator"):
        make(estimator="forest").fit(data.X, data.y)


# --------------------------------------------------------------------------- serving


def _served_against(raw_p: np.ndarray, hit: np.ndarray, base: np.ndarray) -> TradeTimingFamily:
    hours = _hours(len(raw_p))
    index = pd.MultiIndex.from_arrays([hours, ["A"] * len(hours)], names=["timestamp", "symbol"])
    X = pd.DataFrame({"base_rate_long": base, "base_rate_short": base}, index=index)
    raw = pd.DataFrame({"p_long": raw_p, "p_short": raw_p}, index=index)
    y = pd.DataFrame({"long_hit": hit, "short_hit": hit}, index=index)
    return make().calibrate(X, raw, y)


def test_noise_gets_no_weight_and_is_served_as_the_base_rate() -> None:
    rng = np.random.default_rng(4)
    base = rng.uniform(0.2, 0.5, size=20_000)
    hit = (rng.uniform(size=base.size) < base).astype(float)  # the base rate is the truth
    raw = rng.uniform(0.05, 0.95, size=base.size)  # a model of nothing

    family = _served_against(raw, hit, base)
    X = pd.DataFrame({"base_rate_long": base[:500], "base_rate_short": base[:500]})
    served = family.serve(X, pd.DataFrame({"p_long": raw[:500], "p_short": raw[:500]}))

    assert family.shrink_weight <= 0.1
    assert np.abs(served["p_long"] - base[:500]).max() < 0.02


def test_a_model_with_skill_gets_weight() -> None:
    rng = np.random.default_rng(5)
    truth = rng.uniform(0.05, 0.95, size=20_000)
    hit = (rng.uniform(size=truth.size) < truth).astype(float)

    family = _served_against(truth, hit, np.full(truth.size, hit.mean()))

    assert family.shrink_weight >= 0.8


def test_served_probabilities_are_never_0_or_1() -> None:
    hit = np.tile([0.0, 1.0], 500)
    raw = np.where(hit == 1, 0.999999, 1e-7)  # a perfect, overconfident model

    family = _served_against(raw, hit, np.full(hit.size, 0.5))
    X = pd.DataFrame({"base_rate_long": [0.5, 0.5], "base_rate_short": [0.5, 0.5]})
    served = family.serve(X, pd.DataFrame({"p_long": [0.0, 1.0], "p_short": [1e-12, 1.0]}))

    assert family.shrink_weight > 0
    values = served.to_numpy()
    assert ((values > 0) & (values < 1)).all()


def test_serve_gives_the_baseline_before_calibration_and_never_uses_the_estimator(
    data: TrainingData,
) -> None:
    family = make(estimator="trees").fit(data.X, data.y)
    tail = data.X.tail(50)
    pd.testing.assert_frame_equal(family.predict_calibrated(tail), family.baseline(tail))

    family.calibrate(data.X, family.predict(data.X), data.y)
    raw = family.predict(tail)
    family.boosters_ = {}  # serving must work from the raw outputs alone

    served = family.serve(tail, raw)
    assert served.index.equals(tail.index)
    assert list(served.columns) == list(PROBABILITY_COLUMNS)


@pytest.mark.parametrize("estimator", ["trees", "gru"])
def test_save_and_load_round_trip_the_served_output(
    estimator: str, data: TrainingData, tmp_path: Path
) -> None:
    family = make(estimator=estimator).fit(data.X, data.y)
    family.calibrate(data.X, family.predict(data.X), data.y)
    family.save(tmp_path)

    loaded = TradeTimingFamily.load(tmp_path)

    assert loaded.estimator_ == estimator
    assert loaded.shrink_weight == family.shrink_weight
    pd.testing.assert_frame_equal(
        loaded.predict_calibrated(data.X), family.predict_calibrated(data.X)
    )


def test_calibration_report_compares_the_served_output_with_the_base_rate(
    data: TrainingData,
) -> None:
    family = make(estimator="trees").fit(data.X, data.y)
    family.calibrate(data.X, family.predict(data.X), data.y)

    report = family.calibration_report(data.X, family.predict_calibrated(data.X), data.y)

    assert set(report) == {"long", "short", "shrink_weight"}
    assert report["long"]["reference_rate"] == pytest.approx(data.X["base_rate_long"].mean())
    assert "brier_skill" in report["short"]


# --------------------------------------------------------------------------- scores


def test_policy_expectancy_by_hand() -> None:
    # Target 2 ATR, stop 1 ATR, fee 0.1 % a side: a side's expected net return is
    # atr_rel * (3p - 1) - 0.002.
    y = pd.DataFrame(
        {
            "long_hit": [1.0, 0.0, 0.0, 1.0],
            "short_hit": [0.0, 1.0, 0.0, 0.0],
            "long_return": [0.04, -0.02, 0.001, 0.02],
            "short_return": [-0.02, 0.04, -0.001, -0.01],
            "atr_rel": [0.02, 0.02, 0.02, 0.001],
        }
    )
    predictions = pd.DataFrame(
        {
            # row 0: long +0.016 > short; row 1: short +0.010; row 2: both -0.002, no trade;
            # row 3: long's gross edge 0.001 * 0.8 is below the 0.002 round trip, no trade.
            "p_long": [0.6, 0.2, 1 / 3, 0.6],
            "p_short": [0.3, 0.5, 1 / 3, 0.2],
        }
    )

    scores = make().score(y, predictions)

    assert scores["trades"] == 2
    assert scores["long_trades"] == 1
    assert scores["short_trades"] == 1
    assert scores["trade_share"] == pytest.approx(0.5)
    assert scores["expectancy_per_trade"] == pytest.approx(((0.04 - 0.002) + (0.04 - 0.002)) / 2)
    assert scores["always_long_expectancy"] == pytest.approx(
        (0.04 - 0.02 + 0.001 + 0.02) / 4 - 0.002
    )
    assert scores["hit_rate_long"] == pytest.approx(0.5)
    assert scores["auc_short"] == pytest.approx(1.0)


def test_no_trades_give_no_expectancy_and_one_class_no_auc() -> None:
    y = pd.DataFrame(
        {
            "long_hit": [0.0, 0.0],
            "short_hit": [1.0, 0.0],
            "long_return": [-0.01, -0.01],
            "short_return": [0.02, -0.01],
            "atr_rel": [0.01, 0.01],
        }
    )
    predictions = pd.DataFrame({"p_long": [0.1, 0.1], "p_short": [0.2, 0.2]})

    scores = make().score(y, predictions)

    assert scores["trades"] == 0
    assert scores["expectancy_per_trade"] is None
    assert scores["auc_long"] is None
    assert scores["brier"] == pytest.approx(make().losses(y, predictions).mean())
    assert scores["brier"] == pytest.approx((scores["brier_long"] + scores["brier_short"]) / 2)
