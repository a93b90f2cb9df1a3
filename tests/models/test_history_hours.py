"""A family's `history_hours` of candles give the features of the whole history, and its
features from an hour on are those rows of the whole frame.

Serving reads only that window before the hour it serves, so a shorter figure than the
family's windows need would serve features that differ from the ones its model was trained
on. The market is longer than every family's window; the 1,500 hours serving used to read
show that the check can fail (the macro climatology counts 2,160 hours of labels).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.families import FAMILIES, ModelFamily
from models.panel import MarketPanel
from training.presets import QUICK
from training.synthetic import generate_market

# Rolling sums restart their running totals where the window starts, and an exponential
# average forgets its seed only geometrically.
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def panel() -> MarketPanel:
    market = generate_market(5, 150, seed=4)
    return MarketPanel.from_candles(market.candles, market.coins)


def families() -> list[tuple[str, ModelFamily]]:
    default = [(f"{layer}-default", family()) for layer, family in FAMILIES.items()]
    quick = [(f"{layer}-quick", QUICK.family(layer)) for layer in FAMILIES]
    return default + quick


def last_hour_features(family: ModelFamily, panel: MarketPanel, hours: int) -> pd.DataFrame:
    as_of = panel.hours[-1]
    features = family.features(panel.between(as_of - pd.Timedelta(hours=hours), as_of))
    index = features.index
    at = (index.get_level_values("timestamp") if index.nlevels > 1 else index) == as_of
    return features.loc[at]


def largest_difference(found: pd.DataFrame, expected: pd.DataFrame) -> float:
    assert found.index.equals(expected.index)
    assert (found.isna() == expected.isna()).all().all()
    return float(np.nanmax(np.abs(found.to_numpy(float) - expected.to_numpy(float))))


@pytest.mark.parametrize(("name", "family"), families(), ids=lambda value: str(value))
def test_the_window_gives_the_features_of_the_whole_history(
    panel: MarketPanel, name: str, family: ModelFamily
) -> None:
    assert len(panel.hours) > family.history_hours + 24, "the market must be longer"
    whole = last_hour_features(family, panel, len(panel.hours))
    assert not whole.empty
    windowed = last_hour_features(family, panel, family.history_hours)
    assert largest_difference(windowed, whole) < TOLERANCE


def test_the_old_serving_window_is_too_short_for_the_macro_climatology(
    panel: MarketPanel,
) -> None:
    family = FAMILIES["macro"]()
    whole = last_hour_features(family, panel, len(panel.hours))
    windowed = last_hour_features(family, panel, 1500)
    assert largest_difference(windowed, whole) > 1e-3


@pytest.mark.parametrize(("name", "family"), families(), ids=lambda value: str(value))
def test_features_since_an_hour_are_the_rows_of_all_features_from_it(
    panel: MarketPanel, name: str, family: ModelFamily
) -> None:
    """Serving and the cluster's blocks ask for the rows of their own hours only; the hours
    before are read as history, so the rows asked for are exactly those of the whole frame."""
    since = panel.hours[len(panel.hours) // 2]
    whole = family.features(panel)
    hours = whole.index.get_level_values("timestamp") if whole.index.nlevels > 1 else whole.index
    expected = whole.loc[hours >= since]
    assert 0 < len(expected) < len(whole)
    pd.testing.assert_frame_equal(family.features(panel, since), expected)
