"""Property-based tests of the feature functions (hypothesis).

For arbitrary valid market panels (positive prices from 1e-8 to 1e8 and beyond, random gaps
and outages, flat prices, zero volume, a single coin, coins listed late, with or without
market caps, sudden crashes and spikes) every feature is finite or NaN, and a feature at
hour t is bit-for-bit the same whatever is done to the candles after t.

Examples are derandomised; see docs/reliability.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from models.families.asset import AssetPriceFamily
from models.features import (
    coin_features,
    index_log_returns,
    index_weights,
    log_returns,
    market_features,
    sector_features,
    sector_log_returns,
)
from models.panel import FIELDS, MarketPanel

FEATURE_FUNCTIONS: dict[str, Callable[[MarketPanel], pd.DataFrame]] = {
    "coin": coin_features,
    "market": market_features,
    "sector": sector_features,
    "asset": AssetPriceFamily(horizon=24).features,
}
# The hourly index returns that features and labels are built on.
BUILDING_BLOCKS: dict[str, Callable[[MarketPanel], pd.DataFrame]] = {
    "index_log_returns": lambda panel: index_log_returns(panel).to_frame(),
    "sector_log_returns": sector_log_returns,
}
SYMBOLS = ("BTC", "ETH", "SOL", "DOGE", "XRP")
SECTORS = (None, "Layer 1", "Meme")
PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class CoinSpec:
    """How one coin's candles are generated."""

    symbol: str
    log10_scale: float  # price level, 10**log10_scale
    volatility: float  # hourly sd of log returns; 0 gives a flat price
    start: float  # listed after this share of the panel's hours
    gap_rate: float  # share of hours without a candle
    jump: float  # a log-price jump (crash or spike) at a random hour; 0 for none
    volume: str  # "zero", "constant" or "random"
    caps: bool
    sector: str | None


@st.composite
def coin_specs(draw: st.DrawFn, symbol: str) -> CoinSpec:
    return CoinSpec(
        symbol=symbol,
        log10_scale=draw(st.floats(-8, 8))
        if draw(st.integers(0, 5))
        else draw(st.sampled_from([-12.0, 12.0])),
        volatility=draw(st.sampled_from([0.0, 1e-6, 0.01, 0.05, 0.3])),
        start=draw(st.sampled_from([0.0, 0.0, 0.3, 0.9])),
        gap_rate=draw(st.sampled_from([0.0, 0.02, 0.3, 0.8])),
        jump=draw(st.sampled_from([0.0, 0.0, 0.0, -45.0, -10.0, 10.0, 45.0])),
        volume=draw(st.sampled_from(["zero", "constant", "random", "random"])),
        caps=draw(st.booleans()),
        sector=draw(st.sampled_from(SECTORS)),
    )


@st.composite
def panels(draw: st.DrawFn, max_coins: int = 4) -> MarketPanel:
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=max_coins, unique=True))
    specs = [draw(coin_specs(symbol)) for symbol in symbols]
    hours = draw(st.sampled_from([2, 30, 200, 400, 900]))
    same_caps = draw(st.booleans())  # every coin with caps, or none, as in real data
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frames = [coin_candles(spec, hours, rng, same_caps) for spec in specs]
    candles = pd.concat(frames, ignore_index=True)
    coins = pd.DataFrame(
        {
            "symbol": [spec.symbol for spec in specs],
            "name": [spec.symbol for spec in specs],
            "sector": [spec.sector for spec in specs],
        }
    )
    event(f"hours: {hours}")
    return MarketPanel.from_candles(candles, coins)


def coin_candles(
    spec: CoinSpec, hours: int, rng: np.random.Generator, same_caps: bool
) -> pd.DataFrame:
    """Valid hourly candles: positive, high and low enclosing open and close."""
    steps = rng.normal(0.0, spec.volatility, hours)
    if spec.jump:
        steps[rng.integers(0, hours)] += spec.jump
    log_close = spec.log10_scale * np.log(10) + np.cumsum(steps)
    log_open = np.concatenate([[log_close[0]], log_close[:-1]])
    wick = np.abs(rng.normal(0.0, spec.volatility, (2, hours)))
    close, open_ = np.exp(log_close), np.exp(log_open)
    volume = {
        "zero": np.zeros(hours),
        "constant": np.full(hours, 1234.5),
        "random": rng.lognormal(8, 2, hours),
    }[spec.volume]
    with_caps = spec.caps if not same_caps else True
    frame = pd.DataFrame(
        {
            "symbol": spec.symbol,
            "timestamp": pd.date_range("2022-01-01", periods=hours, freq="h", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(wick[0]),
            "low": np.minimum(open_, close) * np.exp(-wick[1]),
            "close": close,
            "volume": volume,
            "market_cap": close * 1e7 if with_caps else np.nan,
        }
    )
    keep = (np.arange(hours) >= spec.start * hours) & (rng.random(hours) >= spec.gap_rate)
    keep[0] |= not keep.any()  # a coin has at least one candle
    return frame[keep]


def perturbed_after(panel: MarketPanel, cut: int, rng: np.random.Generator) -> MarketPanel:
    """The panel with every hour after row ``cut`` changed: candles rescaled by random
    factors (OHLC stays valid), some removed, missing ones added, volumes and caps redrawn."""
    later = np.arange(len(panel.hours)) > cut
    shape = (int(later.sum()), len(panel.symbols))
    frames = {field: getattr(panel, field).copy() for field in FIELDS}
    fill = frames["close"].ffill().bfill().loc[later].to_numpy()
    missing = np.isnan(frames["close"].loc[later].to_numpy()) & (rng.random(shape) < 0.5)
    factors = np.exp(rng.normal(0.0, 0.5, shape))
    removed = rng.random(shape) < 0.2
    for field in ("open", "high", "low", "close"):
        values = frames[field].loc[later].to_numpy()
        values = np.where(missing, fill, values) * factors
        frames[field].loc[later] = np.where(removed, np.nan, values)
    volume = rng.lognormal(5, 3, shape)
    frames["volume"].loc[later] = np.where(
        removed | np.isnan(frames["close"].loc[later]), np.nan, volume
    )
    caps = frames["market_cap"].loc[later].to_numpy() * factors
    frames["market_cap"].loc[later] = np.where(removed, np.nan, caps)
    return MarketPanel(**frames, sectors=panel.sectors)


def rows_until(frame: pd.DataFrame, moment: pd.Timestamp) -> pd.DataFrame:
    hours = frame.index.get_level_values("timestamp") if frame.index.nlevels > 1 else frame.index
    return frame.loc[hours <= moment]


@PROPERTY_SETTINGS
@given(panel=panels())
def test_every_feature_is_finite_or_missing(panel: MarketPanel) -> None:
    for name, function in {**FEATURE_FUNCTIONS, **BUILDING_BLOCKS}.items():
        values = function(panel).to_numpy(float)
        infinite = np.isinf(values)
        assert not infinite.any(), f"{name}: {int(infinite.sum())} infinite values"
        event(f"{name}: some values known" if np.isfinite(values).any() else f"{name}: all NaN")


@PROPERTY_SETTINGS
@given(panel=panels(), cut_share=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_a_feature_at_t_ignores_every_candle_after_t(
    panel: MarketPanel, cut_share: float, seed: int
) -> None:
    cut = min(int(cut_share * len(panel.hours)), len(panel.hours) - 1)
    moment = panel.hours[cut]
    changed = perturbed_after(panel, cut, np.random.default_rng(seed))
    for name, function in FEATURE_FUNCTIONS.items():
        original, after_change = function(panel), function(changed)
        pd.testing.assert_frame_equal(
            rows_until(original, moment), rows_until(after_change, moment), check_exact=True
        )
        if name == "asset":
            truncated = function(panel.until(moment))
            pd.testing.assert_frame_equal(truncated, rows_until(original, moment), check_exact=True)


@PROPERTY_SETTINGS
@given(panel=panels(max_coins=1))
def test_the_index_of_a_single_coin_moves_with_the_coin(panel: MarketPanel) -> None:
    """Crashes and spikes included: the index return is the coin's, wherever it has a weight."""
    coin = log_returns(panel, 1).iloc[:, 0]
    index = index_log_returns(panel)
    known = coin.notna() & (index_weights(panel).iloc[:, 0].shift(1) > 0)
    np.testing.assert_allclose(index[known], coin[known], rtol=1e-9, atol=1e-12)
    assert index[~known].isna().all()
