"""The one-line factors a quant tries first, as named baselines for cross-sectional models.

A model that ranks coins is only worth its complexity if it ranks them better than low
volatility, short-term reversal or momentum do. Each factor is a score per coin and hour,
higher meaning "expected to do better", built from the very point-in-time functions the
features use (`models.features`), so a score at hour t reads candles up to t only and is
NaN where the coin has no candle at t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast, get_args

import numpy as np
import pandas as pd

from models.features import log_returns, realized_volatility, stack_wide
from models.panel import MarketPanel
from models.skill import cross_sectional_rank_ic

FactorKind = Literal["low_volatility", "reversal", "momentum"]
FACTOR_KINDS: tuple[str, ...] = get_args(FactorKind)


@dataclass(frozen=True)
class Factor:
    """A factor kind over a trailing window of `window` hours."""

    kind: FactorKind
    window: int

    def __post_init__(self) -> None:
        if self.kind not in FACTOR_KINDS:
            raise ValueError(f"unknown factor kind {self.kind!r}; expected one of {FACTOR_KINDS}")
        if self.window < 1:
            raise ValueError(f"window must be at least 1 hour, got {self.window}")

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.window}h"

    @classmethod
    def from_name(cls, name: str) -> Factor:
        """The factor called `name` (e.g. "reversal_24h"), the inverse of `name`."""
        kind, _, window = name.rpartition("_")
        if kind not in FACTOR_KINDS or not window.endswith("h") or not window[:-1].isdigit():
            raise ValueError(f"not a factor name: {name!r}")
        return cls(cast(FactorKind, kind), int(window[:-1]))

    def scores(self, panel: MarketPanel) -> pd.DataFrame:
        """Score per hour (rows) and coin (columns); higher means expected to do better.

        low_volatility: minus the sd of hourly log returns over the window; reversal: minus
        the log return over the window; momentum: the log return over the window.
        """
        if self.kind == "low_volatility":
            score = -realized_volatility(log_returns(panel, 1), self.window)
        elif self.kind == "reversal":
            score = -log_returns(panel, self.window)
        else:
            score = log_returns(panel, self.window)
        return score.where(panel.close.notna())


DEFAULT_FACTORS: tuple[Factor, ...] = (
    Factor("low_volatility", 168),
    Factor("reversal", 24),
    Factor("reversal", 4),
    Factor("momentum", 168),
)


def factor_frame(panel: MarketPanel, factors: tuple[Factor, ...] = DEFAULT_FACTORS) -> pd.DataFrame:
    """Factor scores indexed (timestamp, symbol), one column per factor name."""
    return stack_wide({factor.name: factor.scores(panel) for factor in factors}, "symbol")


def best_factor(factors: pd.DataFrame, outcomes: pd.Series) -> str:
    """The column of `factors` with the highest mean per-hour cross-sectional rank IC.

    Pass only rows before the fold being judged, so the choice is out of fold. Ties go to
    the earlier column; a factor with no defined IC hour is never chosen.
    """
    means = [cross_sectional_rank_ic(factors[name], outcomes).mean() for name in factors]
    if np.all(np.isnan(means)):
        raise ValueError("no factor has a defined rank IC on these rows")
    return str(factors.columns[int(np.nanargmax(means))])
