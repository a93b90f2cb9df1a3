"""Labels: what happened in the `horizon` hours after row t.

Labels look forward by design; features (`models.features`) never do. The label at row t
reads the candles of rows t+1 .. t+horizon and nothing after t+horizon; besides those it
uses only what is known at t (close_t, ATR_t, the index's trailing volatility). The last
`horizon` rows are NaN because their future is unknown, so walk-forward validation must
leave a gap of at least `horizon` hours between training and test rows.

The index, ATR and window returns are the very functions the features use, so a label and
the feature it is judged against cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import numpy as np
import pandas as pd

from models.features import (
    average_true_range,
    index_log_returns,
    log_ratio,
    realized_volatility,
    rolling_beta,
    sector_log_returns,
    stack_wide,
    trailing_log_return,
)
from models.panel import MarketPanel

REGIMES = ("bull", "bear", "sideways")  # class order used everywhere: 0=bull, 1=bear, 2=sideways
BULL, BEAR, SIDEWAYS = 0, 1, 2
REGIME_VOLATILITY_WINDOW = 168
REGIME_BAND = 0.5
BETA_WINDOW = 720  # hours of hourly returns a sector's beta to the market is estimated on

Prices = TypeVar("Prices", pd.DataFrame, pd.Series)


def forward_log_return(close: Prices, horizon: int) -> Prices:
    """log(close[t + horizon] / close[t]), from rows t and t + horizon only.

    NaN when either candle is missing (nothing is filled) and for the last `horizon` rows.
    """
    return log_ratio(close.shift(-horizon), close)


def regime_labels(panel: MarketPanel, horizon: int, k: float = REGIME_BAND) -> pd.Series:
    """Regime of the coming `horizon` hours from the cap-weighted index, coded as `REGIMES`.

    With F the index log return over (t, t + horizon] and sigma_t its trailing
    `REGIME_VOLATILITY_WINDOW`-hour realized hourly volatility (known at t): bull (0) if
    F > k * sigma_t * sqrt(horizon), bear (1) if F < -k * sigma_t * sqrt(horizon), else
    sideways (2). Float codes, NaN where F or sigma_t is unknown.
    """
    hourly = index_log_returns(panel)
    forward = trailing_log_return(hourly, horizon).shift(-horizon)
    band = k * realized_volatility(hourly, REGIME_VOLATILITY_WINDOW) * np.sqrt(horizon)
    codes = np.select([forward > band, forward < -band], [BULL, BEAR], SIDEWAYS)
    known = forward.notna() & band.notna()
    return pd.Series(codes, index=panel.hours, dtype=float, name="regime").where(known)


def sector_labels(panel: MarketPanel, horizon: int) -> pd.DataFrame:
    """Forward log return of each sector's index minus the market index's, over (t, t+h].

    Index (timestamp, sector), one column 'relative_return'. Coins without a sector are in
    the market index but in no sector.
    """
    forward_sectors = trailing_log_return(sector_log_returns(panel), horizon).shift(-horizon)
    forward_market = trailing_log_return(index_log_returns(panel), horizon).shift(-horizon)
    relative = forward_sectors.sub(forward_market, axis=0)
    return stack_wide({"relative_return": relative}, "sector")


def beta_adjusted_sector_labels(
    panel: MarketPanel, horizon: int, window: int = BETA_WINDOW
) -> pd.DataFrame:
    """Each sector's forward log return minus beta times the market's, over (t, t + h].

    beta is the sector's trailing beta to the market, cov / var of their hourly log returns
    over the `window` hours up to t (known at t). Without it a high-beta sector would look
    strong whenever the market rose, and a model of sector strength would be timing the
    market. Index (timestamp, sector), one column 'relative_return'; NaN until the window
    has `MIN_COVERAGE` of its hours.
    """
    sectors, market = sector_log_returns(panel), index_log_returns(panel)
    beta = rolling_beta(sectors, market, window)
    forward_sectors = trailing_log_return(sectors, horizon).shift(-horizon)
    forward_market = trailing_log_return(market, horizon).shift(-horizon)
    relative = forward_sectors - beta.mul(forward_market, axis=0)
    return stack_wide({"relative_return": relative}, "sector")


def asset_labels(panel: MarketPanel, horizon: int) -> pd.Series:
    """`forward_log_return` of each coin's close; index (timestamp, symbol)."""
    forward = forward_log_return(panel.close, horizon)
    return stack_wide({"forward_log_return": forward}, "symbol")["forward_log_return"]


@dataclass(frozen=True)
class BarrierSpec:
    """Triple-barrier set-up: barriers in multiples of ATR(14) at entry, horizon in hours."""

    horizon: int = 24
    target_atr: float = 2.0
    stop_atr: float = 1.0


def triple_barrier_labels(panel: MarketPanel, spec: BarrierSpec) -> pd.DataFrame:
    """Whether a long and a short entered at close_t reach their target before their stop.

    Entry is close_t; ATR is `average_true_range` at t (known at t). Long: target
    entry + target_atr * ATR, stop entry - stop_atr * ATR; short mirrored. Bars t+1 .. t+h
    are walked with their high and low: a side's hit is 1 if its target is touched before
    its stop, 0 if the stop comes first or neither within the horizon. A bar that touches
    both counts as the stop first (conservative: the order inside a bar is unknown). A
    missing bar inside the horizon touches nothing.

    The return of each side is the simple return of a unit position exited at the target
    or the stop (filled exactly at the barrier, even if a bar gaps through it) or else at
    close_{t+h}: exit / entry - 1 for the long, 1 - exit / entry for the short.

    Index (timestamp, symbol); columns long_hit, short_hit, long_return, short_return, atr.
    NaN where close_t or ATR_t is unknown, where t + h runs past the data, and where the
    candle at t + h is missing (the horizon exit is unknown).
    """
    entry = panel.close.to_numpy(float)
    atr = average_true_range(panel).to_numpy(float)
    bars = _Bars(
        high=panel.high.to_numpy(float),
        low=panel.low.to_numpy(float),
        exit_close=panel.close.shift(-spec.horizon).to_numpy(float),
    )
    known = (entry > 0) & ~np.isnan(atr) & ~np.isnan(bars.exit_close)
    long_hit, long_exit = _walk_side(bars, entry, atr, spec, long=True)
    short_hit, short_exit = _walk_side(bars, entry, atr, spec, long=False)
    columns = {
        "long_hit": long_hit.astype(float),
        "short_hit": short_hit.astype(float),
        "long_return": long_exit / entry - 1,
        "short_return": 1 - short_exit / entry,
        "atr": atr,
    }
    wide = {
        name: pd.DataFrame(np.where(known, values, np.nan), panel.close.index, panel.close.columns)
        for name, values in columns.items()
    }
    return stack_wide(wide, "symbol")


class _Bars(NamedTuple):
    """(hours, coins) arrays of the bars walked after each entry."""

    high: np.ndarray
    low: np.ndarray
    exit_close: np.ndarray  # close at t + horizon, aligned to row t


def _walk_side(
    bars: _Bars, entry: np.ndarray, atr: np.ndarray, spec: BarrierSpec, long: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Hit (target strictly before stop; a tie goes to the stop) and exit price of one side."""
    direction = 1.0 if long else -1.0
    target = entry + direction * spec.target_atr * atr
    stop = entry - direction * spec.stop_atr * atr
    favourable, adverse = (bars.high, bars.low) if long else (bars.low, bars.high)
    target_first = _first_touch(favourable, target, spec.horizon, above=long)
    stop_first = _first_touch(adverse, stop, spec.horizon, above=not long)
    hit = target_first < stop_first
    stopped = ~hit & (stop_first <= spec.horizon)
    return hit, np.where(hit, target, np.where(stopped, stop, bars.exit_close))


def _first_touch(path: np.ndarray, barrier: np.ndarray, horizon: int, above: bool) -> np.ndarray:
    """Per (t, coin), the first k in 1..horizon whose bar t+k reaches the barrier of row t.

    `path` is the high (`above`: touched when high >= barrier) or the low (touched when
    low <= barrier); horizon + 1 where no bar touches it.
    """
    first = np.full(barrier.shape, horizon + 1)
    for k in range(horizon, 0, -1):  # backwards, so the earliest touch is written last
        ahead = np.full(path.shape, np.nan)
        ahead[:-k] = path[k:]
        touched = ahead >= barrier if above else ahead <= barrier
        first[touched] = k
    return first
