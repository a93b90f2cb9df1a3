"""Tests of the forward-looking labels: the future they read, hand-computed values, signal."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from models.features import coin_features, sector_features
from models.labels import (
    BEAR,
    BULL,
    REGIMES,
    SIDEWAYS,
    BarrierSpec,
    asset_labels,
    beta_adjusted_sector_labels,
    forward_log_return,
    regime_labels,
    sector_labels,
    triple_barrier_labels,
)
from models.panel import FIELDS, MarketPanel
from training.synthetic import generate_market

HORIZON = 24
PRICE_FIELDS = ("open", "high", "low", "close", "market_cap")
LABEL_FUNCTIONS: dict[str, Callable[[MarketPanel], pd.Series | pd.DataFrame]] = {
    "regime": lambda panel: regime_labels(panel, HORIZON),
    "sector": lambda panel: sector_labels(panel, HORIZON),
    "sector_beta": lambda panel: beta_adjusted_sector_labels(panel, HORIZON, window=100),
    "asset": lambda panel: asset_labels(panel, HORIZON),
    "barrier": lambda panel: triple_barrier_labels(panel, BarrierSpec(horizon=HORIZON)),
}


# Panels ------------------------------------------------------------------------------------


def _market_panel(seed: int = 5, days: int = 40) -> MarketPanel:
    """A synthetic market with scattered missing candles and zero-volume flat candles."""
    market = generate_market(n_coins=6, days=days, seed=seed)
    rng = np.random.default_rng(seed)
    candles = market.candles.copy()
    flat = rng.random(len(candles)) < 0.01
    for column in ("open", "high", "low"):
        candles.loc[flat, column] = candles.loc[flat, "close"]
    candles.loc[flat, "volume"] = 0.0
    missing = rng.random(len(candles)) < 0.02
    return MarketPanel.from_candles(candles.loc[~missing], market.coins.iloc[:-1])


def _perturbed(panel: MarketPanel, rows: np.ndarray, seed: int) -> MarketPanel:
    """The panel with the candles of `rows` changed: each candle's prices (and cap) scaled
    by one random factor, so OHLC stays valid, and the volumes shuffled."""
    rng = np.random.default_rng(seed)
    factors = np.exp(rng.normal(0.0, 0.05, size=(int(rows.sum()), len(panel.symbols))))
    return _scaled(panel, rows, factors, shuffle_volume=rng)


def _scaled(
    panel: MarketPanel,
    rows: np.ndarray,
    factors: np.ndarray | float,
    shuffle_volume: np.random.Generator | None = None,
) -> MarketPanel:
    frames = {field: getattr(panel, field).copy() for field in FIELDS}
    for field in PRICE_FIELDS:
        frames[field].loc[rows] = frames[field].loc[rows].to_numpy() * factors
    if shuffle_volume is not None:
        volume = frames["volume"].loc[rows].to_numpy()
        frames["volume"].loc[rows] = shuffle_volume.permuted(volume, axis=0)
    return MarketPanel(**frames, sectors=panel.sectors)


def _one_coin(
    close: list[float], high: list[float] | None = None, low: list[float] | None = None
) -> MarketPanel:
    """A one-coin panel (so the index is the coin); open = close, and a constant cap."""
    hours = pd.date_range("2024-01-01", periods=len(close), freq="h", tz="UTC", name="timestamp")

    def frame(values: list[float] | np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"AAA": values}, index=hours, dtype=float).rename_axis(columns="symbol")

    return MarketPanel(
        open=frame(close),
        high=frame(high or close),
        low=frame(low or close),
        close=frame(close),
        volume=frame(np.ones(len(close))),
        market_cap=frame(np.full(len(close), 1e9)),
        sectors=pd.Series({"AAA": "Alts"}, name="sector"),
    )


def _rows_until(labels: pd.Series | pd.DataFrame, moment: pd.Timestamp) -> pd.Series:
    hours = labels.index.get_level_values("timestamp")
    return labels.loc[hours <= moment]


def _rows_at(labels: pd.Series | pd.DataFrame, moment: pd.Timestamp) -> pd.Series:
    return labels.loc[labels.index.get_level_values("timestamp") == moment]


def _assert_identical(left: pd.Series | pd.DataFrame, right: pd.Series | pd.DataFrame) -> None:
    if isinstance(left, pd.Series):
        pd.testing.assert_series_equal(left, right, check_exact=True)
    else:
        pd.testing.assert_frame_equal(left, right, check_exact=True)


@pytest.fixture(scope="module")
def market_panel() -> MarketPanel:
    return _market_panel()


@pytest.fixture(scope="module")
def market_labels(market_panel: MarketPanel) -> dict[str, pd.Series | pd.DataFrame]:
    return {name: function(market_panel) for name, function in LABEL_FUNCTIONS.items()}


# What future a label reads -----------------------------------------------------------------


@pytest.mark.parametrize("cut_hour", [200, 600])
@pytest.mark.parametrize("name", LABEL_FUNCTIONS)
def test_labels_up_to_t_ignore_everything_after_t_plus_horizon(
    market_panel: MarketPanel,
    market_labels: dict[str, pd.Series | pd.DataFrame],
    name: str,
    cut_hour: int,
) -> None:
    cut = market_panel.hours[cut_hour]
    later = np.asarray(market_panel.hours > cut + pd.Timedelta(hours=HORIZON))
    changed = LABEL_FUNCTIONS[name](_perturbed(market_panel, later, seed=cut_hour))
    original = market_labels[name]

    assert _rows_until(original, cut).notna().any(axis=None)
    _assert_identical(_rows_until(original, cut), _rows_until(changed, cut))
    assert not original.equals(changed), "the perturbation must change later labels"


@pytest.mark.parametrize("name", ["sector", "asset", "barrier"])
def test_labels_at_t_read_the_hours_up_to_t_plus_horizon(
    market_panel: MarketPanel, market_labels: dict[str, pd.Series | pd.DataFrame], name: str
) -> None:
    cut = market_panel.hours[300]
    hours = market_panel.hours
    window = np.asarray((hours > cut) & (hours <= cut + pd.Timedelta(hours=HORIZON)))
    changed = LABEL_FUNCTIONS[name](_perturbed(market_panel, window, seed=1))

    assert not _rows_at(market_labels[name], cut).equals(_rows_at(changed, cut))


@pytest.mark.parametrize(("factor", "regime"), [(1.5, BULL), (1 / 1.5, BEAR)])
def test_regime_at_t_follows_a_move_within_the_horizon(
    market_panel: MarketPanel, factor: float, regime: int
) -> None:
    cut = market_panel.hours[300]
    hours = market_panel.hours
    window = np.asarray((hours > cut) & (hours <= cut + pd.Timedelta(hours=HORIZON)))
    labels = regime_labels(_scaled(market_panel, window, factor), HORIZON)
    assert labels[cut] == regime


def test_the_last_horizon_hours_have_no_labels(
    market_panel: MarketPanel, market_labels: dict[str, pd.Series | pd.DataFrame]
) -> None:
    tail = market_panel.hours[-HORIZON:]
    for labels in market_labels.values():
        hours = labels.index.get_level_values("timestamp")
        assert labels.loc[hours.isin(tail)].isna().all(axis=None)
        assert labels.loc[hours == market_panel.hours[-HORIZON - 1]].notna().any(axis=None)


@pytest.mark.parametrize("name", LABEL_FUNCTIONS)
def test_labels_are_finite_or_nan(
    market_labels: dict[str, pd.Series | pd.DataFrame], name: str
) -> None:
    assert not np.isinf(market_labels[name].to_numpy(float)).any()


# Agreement with the features they are judged against ---------------------------------------


def test_asset_label_at_t_is_the_return_feature_at_t_plus_horizon() -> None:
    panel = MarketPanel.from_candles(*_clean_market())
    labels = asset_labels(panel, HORIZON).unstack("symbol")
    feature = coin_features(panel)[f"log_return_{HORIZON}h"].unstack("symbol")
    pd.testing.assert_frame_equal(labels, feature.shift(-HORIZON), check_names=False)


def test_sector_label_at_t_is_the_relative_strength_at_t_plus_horizon() -> None:
    panel = MarketPanel.from_candles(*_clean_market())
    labels = sector_labels(panel, HORIZON)["relative_return"].unstack("sector")
    feature = sector_features(panel)[f"sector_relative_{HORIZON}h"].unstack("sector")
    pd.testing.assert_frame_equal(labels, feature.shift(-HORIZON), check_names=False)


def _clean_market() -> tuple[pd.DataFrame, pd.DataFrame]:
    market = generate_market(n_coins=5, days=20, seed=2)
    return market.candles, market.coins


# Hand-computed values ----------------------------------------------------------------------


def test_forward_log_return_reads_rows_t_and_t_plus_horizon_only() -> None:
    close = pd.Series([100.0, 110.0, 121.0, np.nan, 150.0])
    np.testing.assert_allclose(
        forward_log_return(close, 1), [np.log(1.1), np.log(1.1), np.nan, np.nan, np.nan]
    )
    np.testing.assert_allclose(
        forward_log_return(close, 2), [np.log(1.21), np.nan, np.log(150 / 121), np.nan, np.nan]
    )
    frame = forward_log_return(close.to_frame("AAA"), 2)
    assert isinstance(frame, pd.DataFrame)
    assert frame["AAA"].iloc[0] == pytest.approx(np.log(1.21))


@pytest.mark.parametrize(
    ("move", "regime"),
    [(1.5, BULL), (-1.5, BEAR), (0.5, SIDEWAYS), (-0.5, SIDEWAYS)],
)
def test_regime_thresholds_are_half_a_sigma_per_root_hour(move: float, regime: int) -> None:
    step, horizon = 0.01, 4
    # 200 hours alternating +-step: the trailing 168h sd is step * sqrt(168 / 167)
    band = 0.5 * step * np.sqrt(168 / 167) * np.sqrt(horizon)
    log_moves = np.r_[0.0, np.tile([step, -step], 100)[:199], np.full(horizon, move * band / 4)]
    panel = _one_coin(list(100 * np.exp(np.cumsum(log_moves))))

    labels = regime_labels(panel, horizon)
    assert labels.iloc[199] == regime
    assert labels.iloc[-horizon:].isna().all()
    assert labels.iloc[:134].isna().all()  # sigma needs 135 of its 168 hourly returns
    assert REGIMES[int(labels.iloc[199])] == REGIMES[regime]


def _barrier_path(bars: list[tuple[float, float, float]]) -> MarketPanel:
    """20 bars of close 100 with a true range of 2 (so ATR(14) = 2), then `bars` as
    (high, low, close)."""
    high = [101.0] * 20 + [bar[0] for bar in bars]
    low = [99.0] * 20 + [bar[1] for bar in bars]
    close = [100.0] * 20 + [bar[2] for bar in bars]
    return _one_coin(close, high, low)


# entry 100, ATR 2: long target 104 / stop 98, short target 96 / stop 102
QUIET = (100.5, 99.5, 100.0)


@pytest.mark.parametrize(
    ("bars", "expected"),
    [
        pytest.param(
            [QUIET, (104.5, 100.0, 104.0), (104.0, 97.0, 97.5), QUIET, QUIET],
            (1.0, 0.0, 0.04, -0.02),
            id="long-target-first",
        ),
        pytest.param(
            [(100.5, 95.5, 96.0), (105.0, 96.0, 104.0), QUIET, QUIET, QUIET],
            (0.0, 1.0, -0.02, 0.04),
            id="stop-first-short-target",
        ),
        pytest.param(
            [QUIET, (105.0, 95.0, 100.0), QUIET, QUIET, QUIET],
            (0.0, 0.0, -0.02, -0.02),
            id="both-in-one-bar-count-as-stop",
        ),
        pytest.param(
            [
                QUIET,
                (101.5, 98.5, 100.0),
                QUIET,
                QUIET,
                (101.0, 100.5, 101.0),
                (110.0, 99.5, 105.0),
            ],
            (0.0, 0.0, 0.01, -0.01),
            id="neither-exits-at-horizon-close-and-ignores-the-next-bar",
        ),
    ],
)
def test_triple_barrier_on_constructed_paths(
    bars: list[tuple[float, float, float]], expected: tuple[float, float, float, float]
) -> None:
    labels = triple_barrier_labels(_barrier_path(bars), BarrierSpec(horizon=5))
    entry = labels.xs("AAA", level="symbol").iloc[19]

    assert entry["atr"] == pytest.approx(2.0)
    columns = ["long_hit", "short_hit", "long_return", "short_return"]
    np.testing.assert_allclose(entry[columns].to_numpy(float), expected, atol=1e-9)


def test_triple_barrier_is_unknown_without_atr_or_a_full_horizon() -> None:
    labels = triple_barrier_labels(_barrier_path([QUIET] * 10), BarrierSpec(horizon=5))
    rows = labels.xs("AAA", level="symbol")
    assert rows.iloc[:13].isna().all(axis=None)  # ATR(14) needs 14 bars
    assert rows.iloc[13:25].notna().all(axis=None)
    assert rows.iloc[25:].isna().all(axis=None)


def test_triple_barrier_is_unknown_when_the_horizon_candle_is_missing() -> None:
    close = [100.0] * 30
    close[25] = np.nan
    labels = triple_barrier_labels(_one_coin(close), BarrierSpec(horizon=5))
    rows = labels.xs("AAA", level="symbol")
    assert rows.iloc[20].isna().all()
    assert rows.iloc[19].notna().all()


# Signal ------------------------------------------------------------------------------------


def test_regime_labels_agree_with_the_generators_regime_more_than_chance() -> None:
    market = generate_market(n_coins=6, days=365, seed=0)
    horizon = 168
    labels = regime_labels(MarketPanel.from_candles(market.candles, market.coins), horizon)
    codes = market.regimes.map({name: code for code, name in enumerate(REGIMES)})
    truth = codes.shift(-horizon // 2)  # the true regime halfway through the horizon
    known = labels.notna() & truth.notna()
    labels, truth = labels[known], truth[known]

    agreement = (labels == truth).mean()
    independent = (labels.value_counts(normalize=True) * truth.value_counts(normalize=True)).sum()
    assert agreement > independent + 0.05


def test_beta_adjusted_sector_label_removes_what_the_market_explains() -> None:
    """A sector that moves exactly twice the market has beta 2 and a label of 0."""
    hours = pd.date_range("2024-01-01", periods=400, freq="h", tz="UTC")
    rng = np.random.default_rng(0)
    market = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(hours))))
    double = 100 * (market / 100) ** 2
    candles = pd.concat(
        [
            pd.DataFrame({"symbol": symbol, "timestamp": hours, "close": close, "volume": 1.0})
            for symbol, close in (("MKT", market), ("DBL", double))
        ]
    )
    candles["open"] = candles["high"] = candles["low"] = candles["close"]
    # Equal dollar volumes would weigh DBL into the index; a cap for each pins it to MKT.
    candles["market_cap"] = np.where(candles["symbol"] == "MKT", 1e12, 1.0)
    coins = pd.DataFrame({"symbol": ["MKT", "DBL"], "name": ["m", "d"], "sector": ["A", "B"]})
    panel = MarketPanel.from_candles(candles, coins)

    labels = beta_adjusted_sector_labels(panel, 24, window=100)["relative_return"]
    known = labels.unstack("sector").dropna()

    assert len(known) > 200
    np.testing.assert_allclose(known["B"], 0.0, atol=1e-6)
    np.testing.assert_allclose(known["A"], 0.0, atol=1e-6)
