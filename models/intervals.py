"""Central prediction intervals for log-return forecasts, and how well they cover.

Split-conformal, scaled by volatility: on out-of-fold rows, each error of the served forecast
is divided by the coin's recent hourly volatility times the square root of the horizon (the
size a random walk would give), and the interval's multipliers are the error quantiles at
(1 - level) / 2 and (1 + level) / 2. A calm coin gets a narrow interval, a wild one a wide
one, a long horizon a wider one; and whatever the random-walk scaling gets wrong (fat tails,
mean reversion, a forecast that is biased) is in the multipliers, measured, not assumed.

The naive interval a forecaster must beat is the persistence price plus or minus the normal
quantile of the same scale: what a trader who knows only the coin's recent volatility would
quote.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_LEVEL = 0.8
VOLATILITY_COLUMN = "realized_vol_168h"
LOWER, UPPER = "lower_return", "upper_return"


def check_level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"an interval level lies strictly between 0 and 1, got {level}")
    return float(level)


def volatility_scale(X: pd.DataFrame, horizon: int) -> np.ndarray:
    """The coin's hourly volatility times sqrt(horizon); a coin without one gets its hour's
    median (a newly listed coin), and an hour without any the median over all rows."""
    volatility = X[VOLATILITY_COLUMN]
    if volatility.index.nlevels > 1:
        hourly = volatility.groupby(level="timestamp").transform("median")
        volatility = volatility.fillna(hourly)
    volatility = volatility.fillna(volatility.median())
    return volatility.to_numpy(dtype=float) * np.sqrt(horizon)


@dataclass(frozen=True)
class ConformalInterval:
    """Multipliers of the volatility scale below and above the forecast."""

    level: float
    below: float
    above: float
    rows: int

    @classmethod
    def fit(cls, errors: np.ndarray, scale: np.ndarray, level: float) -> ConformalInterval:
        """From out-of-fold errors (actual minus forecast, log returns) and their scales.

        The quantiles are taken conservatively (the next order statistic outward), and the
        interval always holds the forecast itself.
        """
        check_level(level)
        usable = np.isfinite(errors) & np.isfinite(scale) & (scale > 0)
        normalised = errors[usable] / scale[usable]
        if normalised.size == 0:
            raise ValueError("no out-of-fold error with a volatility to scale it")
        tail = (1.0 - level) / 2.0
        below = float(np.quantile(normalised, tail, method="lower"))
        above = float(np.quantile(normalised, 1.0 - tail, method="higher"))
        return cls(level, min(below, 0.0), max(above, 0.0), int(normalised.size))

    def bounds(self, forecast: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return forecast + self.below * scale, forecast + self.above * scale


def naive_bounds(scale: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Persistence plus or minus the normal quantile of the volatility scale."""
    z = NormalDist().inv_cdf((1.0 + check_level(level)) / 2.0)
    return -z * scale, z * scale


def inside(lower: np.ndarray, upper: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Whether each actual value lies in its closed interval."""
    return (lower <= actual) & (actual <= upper)


def interval_report(
    lower: np.ndarray, upper: np.ndarray, actual: np.ndarray, level: float
) -> dict[str, Any]:
    """Coverage beside the nominal level, and the mean width as a percent of the price.

    Bounds are log returns; the width in price terms is exp(upper) - exp(lower).
    """
    known = np.isfinite(lower) & np.isfinite(upper) & np.isfinite(actual)
    if not known.any():
        return {}
    low, high, truth = lower[known], upper[known], actual[known]
    coverage = float(np.mean(inside(low, high, truth)))
    return {
        "interval_level": level,
        "interval_coverage": coverage,
        "interval_coverage_gap": coverage - level,
        "interval_width_pct": float(np.mean(np.exp(high) - np.exp(low)) * 100.0),
        "interval_rows": int(known.sum()),
    }
