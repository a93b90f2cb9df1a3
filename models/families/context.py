"""Upper layers' outputs joined onto a lower layer's feature rows, by the hour they are known."""

from __future__ import annotations

import pandas as pd

from models.families.base import Upstream

REGIME_COLUMNS = ("p_bull", "p_bear", "p_sideways")


def with_regime(X: pd.DataFrame, upstream: Upstream) -> pd.DataFrame:
    """Add the macro layer's regime probabilities at each row's hour (NaN where unknown)."""
    hours = X.index.get_level_values("timestamp") if X.index.nlevels > 1 else X.index
    regime = upstream.regime
    if regime is None:
        regime = pd.DataFrame(columns=list(REGIME_COLUMNS), dtype=float)
    aligned = regime[list(REGIME_COLUMNS)].reindex(hours)
    aligned.index = X.index
    return X.join(aligned)


def with_sector_strength(X: pd.DataFrame, upstream: Upstream, sectors: pd.Series) -> pd.DataFrame:
    """Add the sector layer's strength of each coin's sector at the row's hour."""
    keys = pd.MultiIndex.from_arrays(
        [
            X.index.get_level_values("timestamp"),
            sectors.reindex(X.index.get_level_values("symbol")).to_numpy(),
        ],
        names=["timestamp", "sector"],
    )
    strength = upstream.sector_strength
    if strength is None:
        values = pd.Series(float("nan"), index=X.index)
    else:
        values = pd.Series(
            strength["sector_strength"].reindex(keys).to_numpy(), index=X.index, dtype=float
        )
    return X.assign(sector_strength=values)
