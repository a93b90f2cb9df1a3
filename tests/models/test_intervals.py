"""Price intervals: split-conformal on volatility-scaled errors, beside the naive one.

The tolerance on coverage is stated per test: with n independent rows the sampling error of
a coverage share at 80 % has a standard deviation of sqrt(0.8 * 0.2 / n).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.families.asset import AssetPriceFamily
from models.intervals import (
    LOWER,
    UPPER,
    VOLATILITY_COLUMN,
    ConformalInterval,
    interval_report,
    naive_bounds,
    volatility_scale,
)
from models.panel import MarketPanel
from training.synthetic import generate_market
from training.train import TrainSettings, validate_family


def known_noise(n: int, seed: int, horizon: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows whose return is the coin's volatility times sqrt(horizon) times Student-t noise
    (3 degrees of freedom: fat tails, so a normal quantile would be wrong)."""
    rng = np.random.default_rng(seed)
    volatility = rng.uniform(0.005, 0.05, n)
    X = pd.DataFrame({VOLATILITY_COLUMN: volatility})
    returns = volatility * np.sqrt(horizon) * rng.standard_t(3, n)
    return X, returns


def test_conformal_interval_covers_its_level_out_of_sample_on_known_noise() -> None:
    """Fitted on 20,000 rows, checked on 20,000 others: 80 % within 1.5 points (about 5
    standard errors of the share)."""
    X, returns = known_noise(40_000, seed=1, horizon=24)
    scale = volatility_scale(X, 24)
    forecast = np.zeros(len(X))
    fit, test = slice(0, 20_000), slice(20_000, None)

    interval = ConformalInterval.fit(returns[fit] - forecast[fit], scale[fit], 0.8)
    lower, upper = interval.bounds(forecast[test], scale[test])
    report = interval_report(lower, upper, returns[test], 0.8)

    assert report["interval_coverage"] == pytest.approx(0.8, abs=0.015)
    assert report["interval_rows"] == 20_000
    # The naive normal quantile is narrower than the t(3) tails need, and covers less.
    naive_lower, naive_upper = naive_bounds(scale[test], 0.8)
    naive = interval_report(naive_lower, naive_upper, returns[test], 0.8)
    assert naive["interval_coverage"] < report["interval_coverage"] - 0.02


@pytest.mark.parametrize("level", [0.5, 0.8, 0.95])
def test_interval_holds_the_forecast_and_widens_with_volatility(level: float) -> None:
    X, returns = known_noise(5_000, seed=2, horizon=4)
    scale = volatility_scale(X, 4)
    interval = ConformalInterval.fit(returns, scale, level)
    forecast = np.full(3, 0.01)

    lower, upper = interval.bounds(forecast, np.array([0.01, 0.02, 0.04]))

    assert np.all(lower <= forecast) and np.all(forecast <= upper)
    assert np.all(np.diff(upper - lower) > 0)


def test_a_biased_forecast_still_holds_itself_inside_its_interval() -> None:
    """Errors all positive: the lower multiplier is clipped to 0, not above the forecast."""
    errors = np.abs(np.random.default_rng(3).normal(size=1_000)) + 0.5
    interval = ConformalInterval.fit(errors, np.ones(1_000), 0.8)

    assert interval.below == 0.0 and interval.above > 0.5


def test_level_and_data_are_checked() -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        ConformalInterval.fit(np.ones(10), np.ones(10), 1.0)
    with pytest.raises(ValueError, match="no out-of-fold error"):
        ConformalInterval.fit(np.full(10, np.nan), np.ones(10), 0.8)


def test_a_coin_without_volatility_gets_its_hours_median() -> None:
    index = pd.MultiIndex.from_product(
        [pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True), ["A", "B", "C"]],
        names=["timestamp", "symbol"],
    )
    X = pd.DataFrame({VOLATILITY_COLUMN: [0.01, 0.03, np.nan, 0.02, 0.02, 0.04]}, index=index)

    scale = volatility_scale(X, 4)

    assert scale[2] == pytest.approx(0.02 * 2)  # median of 0.01 and 0.03, times sqrt(4)


@pytest.fixture(scope="module")
def market() -> MarketPanel:
    generated = generate_market(12, 240, seed=3)
    return MarketPanel.from_candles(generated.candles, generated.coins)


SETTINGS = TrainSettings(params={"asset": {"n_estimators": 40}}, n_folds=3, min_train_hours=24 * 20)


@pytest.mark.parametrize("horizon", [4, 24])
def test_walk_forward_coverage_on_a_synthetic_market_is_near_the_level(
    market: MarketPanel, horizon: int
) -> None:
    """Out of sample (each fold served by an interval fitted on earlier folds only), the 80 %
    interval covers 80 % within 5 points; the rows overlap in time and coins move together,
    so the effective sample is far smaller than the row count."""
    _, result = validate_family("asset", market, SETTINGS, horizon)

    served, naive = result.model_metrics, result.baseline_metrics
    assert served["interval_level"] == 0.8
    assert served["interval_coverage"] == pytest.approx(0.8, abs=0.05)
    assert naive["interval_coverage"] == pytest.approx(0.8, abs=0.1)
    assert served["interval_rows"] > 1_000


def test_served_intervals_hold_the_forecast_and_widen_with_the_horizon(
    market: MarketPanel,
) -> None:
    widths = {}
    for horizon in (4, 24, 168):
        family = AssetPriceFamily(horizon=horizon, params={"n_estimators": 20})
        data = family.training_data(market)
        half = data.X.index.get_level_values("timestamp") < data.timestamps[len(data.X) // 2]
        family.fit(data.X.loc[half], data.y.loc[half])
        later = ~half
        family.calibrate(data.X.loc[later], family.predict(data.X.loc[later]), data.y.loc[later])
        served = family.predict_calibrated(data.X.tail(50))
        forecast = served["predicted_return"]
        assert (served[LOWER] <= forecast).all() and (forecast <= served[UPPER]).all()
        widths[horizon] = float((served[UPPER] - served[LOWER]).mean())
    assert widths[4] < widths[24] < widths[168]
