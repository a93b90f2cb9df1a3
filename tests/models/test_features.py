"""Tests of the point-in-time features: no look-ahead, hand-computed values, gaps."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from models.factors import factor_frame
from models.families.asset import AssetPriceFamily
from models.families.sector import SectorRotationFamily
from models.features import (
    COIN_FEATURES,
    MARKET_FEATURES,
    SECTOR_FEATURES,
    average_true_range,
    coin_features,
    cross_sectional_ranks,
    market_features,
    sector_features,
)
from models.panel import FIELDS, MarketPanel
from training.synthetic import generate_market

PRICE_FIELDS = ("open", "high", "low", "close", "market_cap")
FEATURE_FUNCTIONS: dict[str, Callable[[MarketPanel], pd.DataFrame]] = {
    "coin": coin_features,
    "market": market_features,
    "sector": sector_features,
    "asset": AssetPriceFamily(horizon=24).features,
    "sector_ranks": SectorRotationFamily(horizon=24).features,
    "factors": factor_frame,
}


# Panels ------------------------------------------------------------------------------------


def _gappy_panel(with_caps: bool, seed: int = 3) -> MarketPanel:
    """A synthetic market with what real data has: scattered missing candles, an
    exchange-wide outage, a late listing, zero-volume flat candles, a coin that never moves
    and a coin without a sector."""
    market = generate_market(n_coins=7, days=60, seed=seed)
    rng = np.random.default_rng(seed)
    candles = market.candles.copy()
    hour = (candles["timestamp"] - candles["timestamp"].min()) // pd.Timedelta(hours=1)
    flat = rng.random(len(candles)) < 0.01
    for column in ("open", "high", "low"):
        candles.loc[flat, column] = candles.loc[flat, "close"]
    candles.loc[flat, "volume"] = 0.0
    still = candles["symbol"] == market.coins["symbol"].iloc[-1]
    candles.loc[still, ["open", "high", "low", "close"]] = 1.0
    candles.loc[still, "volume"] = 0.0
    if not with_caps:
        candles = candles.drop(columns="market_cap")
    missing = (
        (rng.random(len(candles)) < 0.02)
        | hour.between(300, 302)
        | ((candles["symbol"] == market.coins["symbol"].iloc[2]) & (hour < 400))
    )
    return MarketPanel.from_candles(candles.loc[~missing], market.coins.iloc[:-2])


def _perturbed(panel: MarketPanel, rows: np.ndarray, seed: int) -> MarketPanel:
    """The panel with the candles of `rows` changed: each candle's prices (and cap) scaled
    by one random factor, so OHLC stays valid, and the volumes shuffled."""
    rng = np.random.default_rng(seed)
    factors = np.exp(rng.normal(0.0, 0.05, size=(int(rows.sum()), len(panel.symbols))))
    frames = {field: getattr(panel, field).copy() for field in FIELDS}
    for field in PRICE_FIELDS:
        frames[field].loc[rows] = frames[field].loc[rows].to_numpy() * factors
    frames["volume"].loc[rows] = rng.permuted(frames["volume"].loc[rows].to_numpy(), axis=0)
    return MarketPanel(**frames, sectors=panel.sectors)


def _hand_panel(
    close: dict[str, list[float]],
    high: dict[str, list[float]] | None = None,
    low: dict[str, list[float]] | None = None,
    volume: dict[str, list[float]] | None = None,
    market_cap: dict[str, list[float]] | None = None,
    sectors: dict[str, str] | None = None,
) -> MarketPanel:
    """A panel from hand-written columns; open = close, high = low = close by default."""
    hours = pd.date_range(
        "2024-01-01", periods=len(next(iter(close.values()))), freq="h", tz="UTC"
    ).rename("timestamp")

    def frame(values: dict[str, list[float]] | None, default: pd.DataFrame) -> pd.DataFrame:
        if values is None:
            return default
        return pd.DataFrame(values, index=hours, dtype=float).rename_axis(columns="symbol")

    closes = frame(close, pd.DataFrame())
    return MarketPanel(
        open=closes,
        high=frame(high, closes),
        low=frame(low, closes),
        close=closes,
        volume=frame(volume, closes * 0 + 1.0),
        market_cap=frame(market_cap, closes * np.nan),
        sectors=pd.Series(sectors or {}, index=closes.columns, dtype=object, name="sector"),
    )


def _geometric(start: float, growth: float, hours: int) -> list[float]:
    return list(start * growth ** np.arange(hours))


def _rows_until(frame: pd.DataFrame, moment: pd.Timestamp) -> pd.DataFrame:
    hours = frame.index.get_level_values("timestamp") if frame.index.nlevels > 1 else frame.index
    return frame.loc[hours <= moment]


@pytest.fixture(scope="module", params=[True, False], ids=["caps", "volume-proxy"])
def gappy_panel(request: pytest.FixtureRequest) -> MarketPanel:
    return _gappy_panel(with_caps=request.param)


@pytest.fixture(scope="module")
def gappy_features(gappy_panel: MarketPanel) -> dict[str, pd.DataFrame]:
    return {name: function(gappy_panel) for name, function in FEATURE_FUNCTIONS.items()}


# Point in time -----------------------------------------------------------------------------


@pytest.mark.parametrize("cut_hour", [150, 700, 1300])
@pytest.mark.parametrize("name", FEATURE_FUNCTIONS)
def test_features_up_to_t_ignore_everything_after_t(
    gappy_panel: MarketPanel, gappy_features: dict[str, pd.DataFrame], name: str, cut_hour: int
) -> None:
    cut = gappy_panel.hours[cut_hour]
    changed = _perturbed(gappy_panel, np.asarray(gappy_panel.hours > cut), seed=cut_hour)
    original, after_change = gappy_features[name], FEATURE_FUNCTIONS[name](changed)

    pd.testing.assert_frame_equal(
        _rows_until(original, cut), _rows_until(after_change, cut), check_exact=True
    )
    assert not original.equals(after_change), "the perturbation must change later rows"


def test_features_of_a_truncated_panel_match_the_full_panel_up_to_the_cut(
    gappy_panel: MarketPanel, gappy_features: dict[str, pd.DataFrame]
) -> None:
    cut = gappy_panel.hours[1200]
    truncated = FEATURE_FUNCTIONS["asset"](gappy_panel.until(cut))
    pd.testing.assert_frame_equal(
        truncated, _rows_until(gappy_features["asset"], cut), check_exact=True
    )


# Shapes and the join -----------------------------------------------------------------------


def test_frames_have_the_documented_index_and_columns(
    gappy_panel: MarketPanel, gappy_features: dict[str, pd.DataFrame]
) -> None:
    coins, market = gappy_features["coin"], gappy_features["market"]
    sectors, assets = gappy_features["sector"], gappy_features["asset"]
    named_sectors = sorted(gappy_panel.sectors.dropna().unique())

    assert tuple(coins.columns) == COIN_FEATURES
    assert coins.index.names == ["timestamp", "symbol"]
    assert len(coins) == len(gappy_panel.hours) * len(gappy_panel.symbols)
    assert tuple(market.columns) == MARKET_FEATURES
    assert market.index.equals(gappy_panel.hours)
    assert tuple(sectors.columns) == SECTOR_FEATURES
    assert sectors.index.names == ["timestamp", "sector"]
    assert sorted(sectors.index.get_level_values("sector").unique()) == named_sectors
    assert assets.index.equals(coins.index)


def test_asset_features_rank_each_coin_among_the_coins_of_its_hour(
    gappy_panel: MarketPanel, gappy_features: dict[str, pd.DataFrame]
) -> None:
    assets, coins = gappy_features["asset"], gappy_features["coin"]
    hour = gappy_panel.hours[1300]
    ranked = assets.xs(hour, level="timestamp")["xs_realized_vol_168h"]
    raw = coins.xs(hour, level="timestamp")["realized_vol_168h"]

    assert ranked.dropna().between(-0.5, 0.5).all()
    assert ranked.idxmax() == raw.idxmax() and ranked.idxmin() == raw.idxmin()
    assert ranked.max() == 0.5 and ranked.min() == -0.5


def test_cross_sectional_ranks_by_hand() -> None:
    index = pd.MultiIndex.from_product(
        [pd.date_range("2024-01-01", periods=2, freq="h", tz="UTC"), list("abcd")],
        names=["timestamp", "symbol"],
    )
    frame = pd.DataFrame({"x": [3.0, 1.0, 2.0, np.nan, 5.0, np.nan, np.nan, np.nan]}, index)

    ranks = cross_sectional_ranks(frame)["x"].to_numpy()

    np.testing.assert_allclose(ranks[:3], [0.5, -0.5, 0.0])
    assert np.isnan(ranks[3])
    assert ranks[4] == 0.0  # alone in its hour: the middle
    assert np.isnan(ranks[5:]).all()


# Gaps, flat candles, no inf ----------------------------------------------------------------


@pytest.mark.parametrize("name", FEATURE_FUNCTIONS)
def test_features_are_finite_or_nan(gappy_features: dict[str, pd.DataFrame], name: str) -> None:
    assert not np.isinf(gappy_features[name].to_numpy(float)).any()


def test_a_few_missing_hours_do_not_blank_the_features(
    gappy_panel: MarketPanel, gappy_features: dict[str, pd.DataFrame]
) -> None:
    warm = gappy_panel.hours[800:]
    moving = gappy_panel.close.columns[gappy_panel.close.std() > 0]
    has_candle = gappy_panel.close.loc[warm, moving].stack().dropna().index
    coverage = gappy_features["coin"].loc[has_candle].notna().mean()
    assert (coverage > 0.9).all(), coverage[coverage <= 0.9]
    market_coverage = gappy_features["market"].loc[warm].drop(columns="fear_greed").notna().mean()
    assert (market_coverage > 0.9).all(), market_coverage[market_coverage <= 0.9]


def test_a_coin_without_a_candle_at_t_has_no_features_at_t() -> None:
    closes = _geometric(100.0, 1.001, 200)
    closes[150] = np.nan
    features = coin_features(_hand_panel({"AAA": closes}))
    assert features.xs("AAA", level="symbol").iloc[150].isna().all()


def test_a_gap_of_up_to_three_hours_is_bridged_by_the_last_close() -> None:
    closes = [100.0, 110.0, np.nan, np.nan, np.nan, 121.0, np.nan, np.nan, np.nan, np.nan, 130.0]
    returns = coin_features(_hand_panel({"AAA": closes})).xs("AAA", level="symbol")
    one_hour = returns["log_return_1h"].to_numpy()

    assert one_hour[1] == pytest.approx(np.log(1.1))
    assert one_hour[5] == pytest.approx(np.log(121 / 110))  # three missing hours: bridged
    assert np.isnan(one_hour[10])  # four missing hours: too old a reference


# Hand-computed values ----------------------------------------------------------------------


def test_returns_volatility_and_trend_of_a_steady_climb() -> None:
    closes = _geometric(100.0, 1.01, 200)
    last = coin_features(_hand_panel({"AAA": closes})).xs("AAA", level="symbol").iloc[-1]

    for hours in (1, 4, 24, 72, 168):
        assert last[f"log_return_{hours}h"] == pytest.approx(hours * np.log(1.01))
    assert last["realized_vol_24h"] == pytest.approx(0.0, abs=1e-12)
    assert last["realized_vol_168h"] == pytest.approx(0.0, abs=1e-12)
    assert last["rsi_14"] == pytest.approx(100.0)
    assert last["drawdown_168h"] == 0.0
    assert last["sma_168_distance"] == pytest.approx(closes[-1] / np.mean(closes[-168:]) - 1)
    assert last["macd_rel"] > 0


def test_rsi_of_a_steady_fall_is_zero_and_of_flat_prices_is_undefined() -> None:
    panel = _hand_panel({"DOWN": _geometric(100.0, 0.99, 40), "FLAT": [5.0] * 40})
    rsi = coin_features(panel)["rsi_14"].unstack("symbol").iloc[-1]
    assert rsi["DOWN"] == pytest.approx(0.0)
    assert np.isnan(rsi["FLAT"])


def test_atr_is_wilders_smoothing_of_the_true_range() -> None:
    rng = np.random.default_rng(0)
    up, down = rng.uniform(0.5, 3.0, 40), rng.uniform(0.5, 3.0, 40)
    panel = _hand_panel(
        {"AAA": [100.0] * 40}, high={"AAA": list(100 + up)}, low={"AAA": list(100 - down)}
    )
    true_range = up + down  # the previous close (100) always lies inside the bar
    expected = [true_range[0]]
    for value in true_range[1:]:
        expected.append(expected[-1] + (value - expected[-1]) / 14)

    atr = average_true_range(panel)["AAA"].to_numpy()
    assert np.isnan(atr[:13]).all()
    np.testing.assert_allclose(atr[13:], expected[13:], rtol=1e-12)
    relative = coin_features(panel)["atr_14_rel"].to_numpy()
    np.testing.assert_allclose(relative[13:], np.asarray(expected[13:]) / 100, rtol=1e-12)


def test_atr_counts_a_gap_from_the_previous_close() -> None:
    panel = _hand_panel({"AAA": [100.0] * 20 + [110.0] * 5})
    true_range = np.r_[np.zeros(20), 10.0, np.zeros(4)]
    atr = average_true_range(panel)["AAA"]
    assert atr.iloc[20] == pytest.approx(true_range[20] / 14)


def test_drawdown_from_the_trailing_high() -> None:
    closes = list(np.linspace(100, 200, 101)) + list(np.linspace(200, 150, 51)[1:])
    features = coin_features(_hand_panel({"AAA": closes})).xs("AAA", level="symbol")
    assert features["drawdown_168h"].iloc[150] == pytest.approx(150 / 200 - 1)


def test_breadth_counts_the_share_of_coins_up_and_above_their_average() -> None:
    rising, falling = _geometric(10.0, 1.001, 200), _geometric(10.0, 0.999, 200)
    panel = _hand_panel({"A": rising, "B": rising, "C": rising, "D": falling})
    last = market_features(panel).iloc[-1]
    assert last["breadth_positive_24h"] == pytest.approx(0.75)
    assert last["breadth_above_sma_168h"] == pytest.approx(0.75)


def test_dominance_is_the_share_of_market_cap() -> None:
    panel = _hand_panel(
        {"BTC": [10.0] * 200, "ETH": [10.0] * 200},
        market_cap={"BTC": [3.0] * 200, "ETH": [1.0] * 200},
    )
    last = market_features(panel).iloc[-1]
    assert last["btc_dominance"] == pytest.approx(75.0)
    assert last["eth_dominance"] == pytest.approx(25.0)
    assert last["btc_dominance_change_168h"] == pytest.approx(0.0)


def test_without_caps_dominance_uses_the_dollar_volume_proxy() -> None:
    panel = _hand_panel(
        {"BTC": [10.0] * 30, "ETH": [20.0] * 30, "XRP": [1.0] * 30},
        volume={"BTC": [60.0] * 30, "ETH": [10.0] * 30, "XRP": [0.0] * 30},
    )
    dominance = market_features(panel)[["btc_dominance", "eth_dominance"]]
    assert dominance.iloc[:19].isna().all().all()  # the proxy needs 20 of its 24 hours
    np.testing.assert_allclose(dominance.iloc[-1], [75.0, 25.0])


def test_index_return_weights_coins_by_their_cap_an_hour_earlier() -> None:
    panel = _hand_panel(
        {"BTC": [100.0, 110.0], "ETH": [100.0, 90.0]},
        market_cap={"BTC": [3.0, 99.0], "ETH": [1.0, 1.0]},
    )
    index_return = market_features(panel)["index_return_1h"].iloc[1]
    assert index_return == pytest.approx(np.log1p(0.75 * 0.10 + 0.25 * -0.10))


def test_sector_features_relative_to_the_market() -> None:
    hours = 30
    panel = _hand_panel(
        {"A": _geometric(1.0, 1.01, hours), "B": _geometric(5.0, 1.01, hours), "C": [2.0] * hours},
        market_cap={"A": [1.0] * hours, "B": [1.0] * hours, "C": [2.0] * hours},
        sectors={"A": "Alts", "B": "Alts"},
    )
    sector = sector_features(panel).xs("Alts", level="sector").iloc[-1]
    market_24h = 24 * np.log1p((0.01 + 0.01 + 0.0) / 4)

    assert sector["sector_return_24h"] == pytest.approx(24 * np.log(1.01))
    assert sector["sector_relative_24h"] == pytest.approx(24 * np.log(1.01) - market_24h)
    assert sector["sector_breadth_24h"] == 1.0
    assert sector["sector_coins"] == 2.0
    assert sector_features(panel).index.get_level_values("sector").unique().tolist() == ["Alts"]


def test_fear_greed_stays_in_range_after_its_trailing_warm_up(
    gappy_features: dict[str, pd.DataFrame],
) -> None:
    fear_greed = gappy_features["market"]["fear_greed"]
    known = fear_greed.dropna()
    # the index drawdown needs 576 of its 720 hours (first at row 575), its z-score as many
    assert fear_greed.first_valid_index() == fear_greed.index[2 * 575]
    assert len(known) > 200
    assert known.between(0, 100).all()
    assert known.std() > 5
