"""No family's features mark the era: a column's missingness must not tell the early history
from the late one (upstream outputs that existed only for the validated hours did, and the
asset model's top feature was the NaN pattern of the regime probabilities)."""

from __future__ import annotations

import pandas as pd
import pytest

from models.families import FAMILIES
from models.panel import MarketPanel
from training.synthetic import generate_market

WARM_UP_HOURS = 24 * 60  # the longest trailing windows (720 h z-scores) and then some
HORIZONS = {"macro": 48, "sector": 48, "asset": 24, "timing": 12}


@pytest.fixture(scope="module")
def panel() -> MarketPanel:
    market = generate_market(8, 240, seed=3)
    return MarketPanel.from_candles(market.candles, market.coins)


@pytest.mark.parametrize("layer", list(FAMILIES))
def test_no_feature_is_missing_in_one_era_and_present_in_another(
    layer: str, panel: MarketPanel
) -> None:
    family = FAMILIES[layer](horizon=HORIZONS[layer])
    data = family.training_data(panel)
    warm = data.X.loc[data.timestamps >= panel.hours[0] + pd.Timedelta(hours=WARM_UP_HOURS)]
    hours = warm.index.get_level_values("timestamp") if warm.index.nlevels > 1 else warm.index
    middle = hours.unique().sort_values()[len(hours.unique()) // 2]

    early = warm.loc[hours < middle].isna().mean()
    late = warm.loc[hours >= middle].isna().mean()

    gaps = (early - late).abs()
    assert gaps.max() < 0.05, gaps.sort_values().tail(3)
