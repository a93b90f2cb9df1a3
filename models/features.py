"""Point-in-time features of a `MarketPanel`: per coin, market-wide and per sector.

Row t of every output uses only candles stamped t or earlier. A candle is stamped with its
open time, so row t describes the market once the bar opened at t has closed; labels
(`models.labels`) use the same convention, so row t of features and labels line up.

Gap policy, the same in every function here:

* A missing candle stays NaN, and a coin's own features at an hour without its candle are
  NaN.
* The earlier (reference) price of a return may be the last close up to `MAX_FILL_HOURS`
  before it when that candle is missing, so a short outage does not blank every window
  that starts inside it; the move across the gap is booked at the hour trading resumes.
  A market cap is carried over the same few hours (see `index_weights`). Nothing else is
  filled, and the current price never is.
* Rolling windows need `MIN_COVERAGE` of their hours; the exponential averages (MACD,
  Wilder's RSI and ATR) need as many observations as their span and let older values
  decay across a gap.
* A division by zero (flat prices, constant volume, no weight) gives NaN, never inf.

Every window and average runs forward in time, so a value at row t is bit-for-bit the same
whatever happens after t.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TypeVar

import numpy as np
import pandas as pd

from models.panel import MarketPanel

MAX_FILL_HOURS = 3
MIN_COVERAGE = 0.8
ATR_WINDOW = 14
RSI_WINDOW = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
TREND_WINDOW = 168  # drawdown and SMA distance of a coin, breadth above SMA
DOLLAR_VOLUME_WINDOW = 24
INDEX_DRAWDOWN_WINDOW = 720
SENTIMENT_WINDOW = 720
DOMINANCE_CHANGE_HOURS = 168
# Hours after which an exponential average (MACD's spans, Wilder's RSI and ATR, alpha >= 1/26)
# has forgotten its seed below float precision: (25/27)^600 < 1e-19.
EMA_SETTLE_HOURS = 600
# The weights of the market and sector indexes look back a day (dollar volume) and a few
# filled hours.
INDEX_WEIGHT_HOURS = DOLLAR_VOLUME_WINDOW + 24
# Hours of candles before an hour that `market_features` read: fear & greed z-scores the
# index's 720-hour drawdown over 720 hours.
MARKET_FEATURE_HOURS = SENTIMENT_WINDOW + INDEX_DRAWDOWN_WINDOW + INDEX_WEIGHT_HOURS
BTC, ETH = "BTC", "ETH"

Frame = TypeVar("Frame", pd.DataFrame, pd.Series)

COIN_FEATURES: tuple[str, ...] = (
    "log_return_1h",
    "log_return_4h",
    "log_return_24h",
    "log_return_72h",
    "log_return_168h",
    "realized_vol_24h",
    "realized_vol_168h",
    "atr_14_rel",
    "rsi_14",
    "macd_rel",
    "macd_signal_rel",
    "volume_z_24h",
    "volume_z_168h",
    "drawdown_168h",
    "sma_168_distance",
)
MARKET_FEATURES: tuple[str, ...] = (
    "index_return_1h",
    "index_return_24h",
    "index_return_168h",
    "index_vol_24h",
    "index_vol_168h",
    "breadth_positive_24h",
    "breadth_above_sma_168h",
    "btc_dominance",
    "eth_dominance",
    "btc_dominance_change_168h",
    "eth_dominance_change_168h",
    "index_drawdown_720h",
    "fear_greed",
)
SECTOR_FEATURES: tuple[str, ...] = (
    "sector_return_24h",
    "sector_return_168h",
    "sector_relative_24h",
    "sector_relative_168h",
    "sector_vol_168h",
    "sector_breadth_24h",
    "sector_coins",
)


# Shared building blocks (also used by models.labels) ------------------------------------


def log_ratio(numerator: Frame, denominator: Frame) -> Frame:
    """log(numerator / denominator), NaN unless both are positive."""
    return np.log(numerator.where(numerator > 0) / denominator.where(denominator > 0))


def log_returns(panel: MarketPanel, hours: int) -> pd.DataFrame:
    """log(close_t / close_{t-hours}) per coin; NaN without a candle at t.

    The reference close may be the last one up to `MAX_FILL_HOURS` before t - hours.
    """
    reference = panel.close.ffill(limit=MAX_FILL_HOURS).shift(hours)
    return log_ratio(panel.close, reference)


def trailing_log_return(hourly: Frame, hours: int) -> Frame:
    """Sum of hourly log returns over the `hours` rows ending at t (NaN below coverage).

    Shifted by -hours it is the forward return over (t, t + hours], which is how the labels
    use it, so a window return is defined once.
    """
    return _rolling(hourly, hours).sum()


def realized_volatility(hourly: Frame, window: int) -> Frame:
    """Standard deviation of hourly log returns over the trailing window (not annualised)."""
    return _rolling(hourly, window).std()


def average_true_range(panel: MarketPanel, window: int = ATR_WINDOW) -> pd.DataFrame:
    """Wilder's ATR in price units; NaN at an hour without a candle.

    Wilder's smoothing is an EMA with alpha 1 / window; it is seeded with the first true
    range (not a simple mean of the first `window`) and reported once `window` bars are in.
    """
    previous = panel.close.ffill(limit=MAX_FILL_HOURS).shift(1)
    true_range = np.fmax(
        panel.high - panel.low,
        np.fmax((panel.high - previous).abs(), (panel.low - previous).abs()),
    ).where(panel.high.notna() & panel.low.notna())
    return _wilder_mean(true_range, window).where(true_range.notna())


def index_weights(panel: MarketPanel) -> pd.DataFrame:
    """Each coin's index weight known at t: its market cap, else a dollar-volume proxy.

    A market cap is carried over at most `MAX_FILL_HOURS` missing hours, so a coin that
    resumes after a short outage keeps its weight. Without a cap (exchange candles carry
    none) the weight is the trailing `DOLLAR_VOLUME_WINDOW`-hour mean of close * volume,
    volume being in base units as in exchange data. Caps and dollar volumes are on
    different scales (a cap is typically a hundred days' volume or more), so a panel should
    have caps for every coin or for none: mixing them underweights the proxied coins.
    """
    cap = panel.market_cap.ffill(limit=MAX_FILL_HOURS)
    proxy = _rolling(panel.close * panel.volume, DOLLAR_VOLUME_WINDOW).mean()
    return cap.fillna(proxy)


def index_log_returns(panel: MarketPanel) -> pd.Series:
    """Hourly log return of the cap-weighted index of all coins (see `_weighted_log_return`)."""
    hourly = _weighted_log_return(log_returns(panel, 1), index_weights(panel))
    return hourly.rename("index_log_return")


def sector_members(panel: MarketPanel) -> dict[str, list[str]]:
    """Sector -> its coins, sectors in sorted order; coins without a sector are left out."""
    sectors = panel.sectors.dropna()
    return {sector: sorted(group.index) for sector, group in sectors.groupby(sectors)}


def sector_log_returns(panel: MarketPanel) -> pd.DataFrame:
    """Hourly log return of each sector's cap-weighted index; one column per sector."""
    hourly = log_returns(panel, 1)
    weights = index_weights(panel)
    return _by_sector(panel, lambda coins: _weighted_log_return(hourly[coins], weights[coins]))


def stack_wide(frames: Mapping[str, pd.DataFrame], level: str) -> pd.DataFrame:
    """Wide frames (hours x keys) as one long frame indexed (timestamp, `level`).

    One column per frame, in the mapping's order; every (hour, key) pair is a row, NaN
    included, so features and labels of the same panel share one index.
    """
    first = next(iter(frames.values()))
    hours, keys = first.index, first.columns
    index = pd.MultiIndex.from_product([hours, keys], names=["timestamp", level])
    values = np.stack(
        [frame.reindex(index=hours, columns=keys).to_numpy(float) for frame in frames.values()],
        axis=-1,
    )
    return pd.DataFrame(values.reshape(len(index), len(frames)), index=index, columns=list(frames))


# Public feature frames -------------------------------------------------------------------


def coin_features(panel: MarketPanel) -> pd.DataFrame:
    """Per-coin technical indicators; index (timestamp, symbol), columns `COIN_FEATURES`."""
    close = panel.close
    hourly = log_returns(panel, 1)
    macd = _ema(close, MACD_FAST) - _ema(close, MACD_SLOW)
    log_volume = np.log1p(panel.volume)
    trend = _rolling(close, TREND_WINDOW)
    wide = {
        "log_return_1h": hourly,
        "log_return_4h": log_returns(panel, 4),
        "log_return_24h": log_returns(panel, 24),
        "log_return_72h": log_returns(panel, 72),
        "log_return_168h": log_returns(panel, 168),
        "realized_vol_24h": realized_volatility(hourly, 24),
        "realized_vol_168h": realized_volatility(hourly, 168),
        "atr_14_rel": _divide(average_true_range(panel), close),
        "rsi_14": _rsi(close, RSI_WINDOW),
        "macd_rel": _divide(macd, close),
        "macd_signal_rel": _divide(_ema(macd, MACD_SIGNAL), close),
        "volume_z_24h": _zscore(log_volume, 24),
        "volume_z_168h": _zscore(log_volume, 168),
        "drawdown_168h": _divide(close, trend.max()) - 1,
        "sma_168_distance": _divide(close, trend.mean()) - 1,
    }
    has_candle = close.notna()
    return stack_wide({name: wide[name].where(has_candle) for name in COIN_FEATURES}, "symbol")


def market_features(panel: MarketPanel) -> pd.DataFrame:
    """Market-wide aggregates; index timestamp, columns `MARKET_FEATURES`.

    Dominance is a coin's share of the total index weight in percent, its change in
    percentage points. Breadth counts only coins with the value known at t.
    """
    hourly = index_log_returns(panel)
    weights = index_weights(panel)
    return_24h = log_returns(panel, 24)
    sma = _rolling(panel.close, TREND_WINDOW).mean()
    btc_dominance, eth_dominance = _dominance(weights, BTC), _dominance(weights, ETH)
    level = hourly.fillna(0).cumsum()  # flat over hours in which no coin traded
    frame = pd.DataFrame(
        {
            "index_return_1h": trailing_log_return(hourly, 1),
            "index_return_24h": trailing_log_return(hourly, 24),
            "index_return_168h": trailing_log_return(hourly, 168),
            "index_vol_24h": realized_volatility(hourly, 24),
            "index_vol_168h": realized_volatility(hourly, 168),
            "breadth_positive_24h": _share(return_24h > 0, return_24h.notna()),
            "breadth_above_sma_168h": _share(panel.close > sma, panel.close.notna() & sma.notna()),
            "btc_dominance": btc_dominance,
            "eth_dominance": eth_dominance,
            "btc_dominance_change_168h": btc_dominance.diff(DOMINANCE_CHANGE_HOURS),
            "eth_dominance_change_168h": eth_dominance.diff(DOMINANCE_CHANGE_HOURS),
            "index_drawdown_720h": np.expm1(level - _rolling(level, INDEX_DRAWDOWN_WINDOW).max()),
        },
        index=panel.hours,
    )
    frame["fear_greed"] = _fear_greed(
        momentum=frame["index_return_168h"],
        volatility=frame["index_vol_24h"],
        breadth=frame["breadth_above_sma_168h"],
        drawdown=frame["index_drawdown_720h"],
    )
    return frame[list(MARKET_FEATURES)]


def sector_features(panel: MarketPanel) -> pd.DataFrame:
    """Per-sector aggregates; index (timestamp, sector), columns `SECTOR_FEATURES`.

    Sector returns are of the sector's cap-weighted index (same weights as the market
    index); "relative" is that minus the market index return over the same window.
    `sector_coins` counts the sector's coins with a candle at t.
    """
    hourly = sector_log_returns(panel)
    market = index_log_returns(panel)
    return_24h = log_returns(panel, 24)
    sector_24h = trailing_log_return(hourly, 24)
    sector_168h = trailing_log_return(hourly, 168)
    wide = {
        "sector_return_24h": sector_24h,
        "sector_return_168h": sector_168h,
        "sector_relative_24h": sector_24h.sub(trailing_log_return(market, 24), axis=0),
        "sector_relative_168h": sector_168h.sub(trailing_log_return(market, 168), axis=0),
        "sector_vol_168h": realized_volatility(hourly, 168),
        "sector_breadth_24h": _by_sector(
            panel, lambda coins: _share(return_24h[coins] > 0, return_24h[coins].notna())
        ),
        "sector_coins": _by_sector(
            panel, lambda coins: panel.close[coins].notna().sum(axis=1).astype(float)
        ),
    }
    return stack_wide(wide, "sector")


def rolling_beta(returns: pd.DataFrame, market: pd.Series, window: int) -> pd.DataFrame:
    """Each column's beta to `market` over the trailing `window` rows: cov / var, NaN until
    `MIN_COVERAGE` of the window holds both (an hour either misses drops out of both)."""
    both = returns.notna() & market.notna().to_numpy()[:, None]
    x = pd.DataFrame(np.where(both, market.to_numpy()[:, None], np.nan), returns.index)
    x.columns = returns.columns
    y = returns.where(both)
    mean_x, mean_y = _rolling(x, window).mean(), _rolling(y, window).mean()
    covariance = _rolling(x * y, window).mean() - mean_x * mean_y
    variance = _rolling(x * x, window).mean() - mean_x * mean_x
    return _divide(covariance, variance.where(variance > 0))


def cross_sectional_ranks(frame: pd.DataFrame) -> pd.DataFrame:
    """Each column ranked across the entities of every hour, scaled to [-0.5, 0.5].

    `frame` is indexed (timestamp, entity); without a timestamp level (a plain frame given
    to the MLflow model, say) its rows are taken as one hour. A rank says where a coin stands
    among the coins of the same hour, whatever the market as a whole did, so a model fitted
    on ranks learns the cross-section rather than the era. NaN stays NaN; an hour with one
    known value gives it 0 (the middle).
    """
    if "timestamp" in frame.index.names:
        grouped = frame.groupby(level="timestamp")
    else:
        grouped = frame.groupby(np.zeros(len(frame)))
    counts = grouped.transform("count")
    ranks = grouped.rank(method="average")
    spread = (counts - 1).where(counts > 1)
    return ((ranks - 1) / spread - 0.5).fillna(0.0).where(frame.notna())


# Private helpers -------------------------------------------------------------------------


def _rolling(data: Frame, window: int) -> pd.api.typing.Rolling:
    return data.rolling(window, min_periods=max(1, math.ceil(MIN_COVERAGE * window)))


def _divide(numerator: Frame, denominator: Frame) -> Frame:
    """numerator / denominator, NaN where the denominator is zero."""
    return numerator / denominator.where(denominator != 0)


def _ema(frame: pd.DataFrame, span: int) -> pd.DataFrame:
    return frame.ewm(span=span, adjust=False, min_periods=span).mean()


def _wilder_mean(frame: pd.DataFrame, window: int) -> pd.DataFrame:
    return frame.ewm(alpha=1 / window, adjust=False, min_periods=window).mean()


def _rsi(close: pd.DataFrame, window: int) -> pd.DataFrame:
    """Wilder's RSI, 100 * avg gain / (avg gain + avg loss); NaN when prices are flat."""
    change = close - close.ffill(limit=MAX_FILL_HOURS).shift(1)
    gain = _wilder_mean(change.clip(lower=0), window)
    loss = _wilder_mean((-change).clip(lower=0), window)
    return 100 * _divide(gain, gain + loss)


def _zscore(data: Frame, window: int) -> Frame:
    """(x - trailing mean) / trailing sd, the window ending at (and including) t."""
    rolling = _rolling(data, window)
    return _divide(data - rolling.mean(), rolling.std())


def _weighted_log_return(log_return: pd.DataFrame, weights: pd.DataFrame) -> pd.Series:
    """log(1 + sum_i w_i R_i / sum_i w_i) per hour: the log return of a cap-weighted index.

    w_i is coin i's weight known at the previous hour, R_i = exp(r_i) - 1 its simple return
    over this hour; coins lacking either drop out and the rest are renormalised. NaN when
    none has both.

    log1p of the weighted simple return keeps the digits of small moves. Near a total loss
    (a log return below about -37) R_i rounds to -1 and log1p would give -inf, so there the
    index return is taken from the price relatives exp(r_i) instead, shifted by the largest
    r_i so that they cannot underflow.
    """
    lagged = weights.shift(1).where(log_return.notna())
    total = lagged.sum(axis=1)
    simple = _divide((lagged * np.expm1(log_return)).sum(axis=1), total)
    shift = log_return.where(lagged > 0).max(axis=1)
    relative = _divide((lagged * np.exp(log_return.sub(shift, axis=0))).sum(axis=1), total)
    return np.log1p(simple.where(simple > -0.5)).fillna(shift + np.log(relative))


def _share(condition: pd.DataFrame, known: pd.DataFrame) -> pd.Series:
    """Per hour, the share of coins meeting `condition` among those where it is `known`."""
    hits = (condition & known).sum(axis=1).astype(float)
    return _divide(hits, known.sum(axis=1).astype(float))


def _dominance(weights: pd.DataFrame, symbol: str) -> pd.Series:
    """A coin's share of the total index weight in percent; NaN if it is not in the panel."""
    if symbol not in weights.columns:
        return pd.Series(np.nan, index=weights.index)
    return 100 * _divide(weights[symbol], weights.sum(axis=1))


def _by_sector(panel: MarketPanel, compute: Callable[[list[str]], pd.Series]) -> pd.DataFrame:
    """One column per sector: `compute` applied to the sector's coins."""
    columns = {sector: compute(coins) for sector, coins in sector_members(panel).items()}
    return pd.DataFrame(columns, index=panel.hours, dtype=float).rename_axis(columns="sector")


def _fear_greed(
    momentum: pd.Series, volatility: pd.Series, breadth: pd.Series, drawdown: pd.Series
) -> pd.Series:
    """A price-derived fear & greed proxy in [0, 100]; 50 is neutral.

    Each input is standardised by its own trailing `SENTIMENT_WINDOW`-hour mean and sd (never
    full-sample statistics, which would leak the future), volatility with its sign flipped
    (calm is greed); the mean of the four z-scores is mapped to 50 * (1 + tanh(mean)).
    NaN until all four are known.
    """
    scores = pd.concat(
        [
            _zscore(momentum, SENTIMENT_WINDOW),
            -_zscore(volatility, SENTIMENT_WINDOW),
            _zscore(breadth, SENTIMENT_WINDOW),
            _zscore(drawdown, SENTIMENT_WINDOW),
        ],
        axis=1,
    )
    return 50 * (1 + np.tanh(scores.mean(axis=1, skipna=False)))
