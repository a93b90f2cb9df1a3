"""Time-block partitions give the rows the whole history gives (`cluster.blocks`).

The market is longer than the warm-up plus a block, so the later blocks read a truncated
window of candles, as they would on a long history; a smaller warm-up than the windows need
shows that the check can fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from cluster.blocks import Block, Scope, block_rows, time_blocks
from db import migrate
from db.engine import make_engine
from models.families import ModelFamily
from models.panel import MarketPanel
from store.datasets import load_panel
from training.ingest import write_market
from training.presets import QUICK
from training.synthetic import generate_market

BLOCK_HOURS = 1000
# Features agree to rounding: rolling sums restart their running totals at a block's start,
# and an exponential average forgets its seed only geometrically.
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scope, MarketPanel]:
    url = f"sqlite:///{tmp_path_factory.mktemp('blocks') / 'market.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    synthetic = generate_market(5, 180, seed=3)
    write_market(engine, synthetic.candles, synthetic.coins)
    panel = load_panel(engine)
    engine.dispose()
    return Scope(url), panel


def joined(parts: Sequence[tuple[pd.DataFrame, pd.DataFrame]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The blocks' rows in time order, as one feature and one label frame."""
    filled = [part for part in parts if not part[0].empty]
    if not filled:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat([X for X, _ in filled]), pd.concat([y for _, y in filled])


def block_built(scope: Scope, family: ModelFamily, panel: MarketPanel) -> tuple[pd.DataFrame, ...]:
    parts = [
        block_rows(scope, family, block)
        for block in time_blocks(panel.hours[0], panel.hours[-1], BLOCK_HOURS)
    ]
    return joined(parts)


def differences(built: tuple[pd.DataFrame, ...], expected: pd.DataFrame, which: int) -> float:
    frame = built[which]
    assert frame.index.equals(expected.index)
    assert list(frame.columns) == list(expected.columns)
    assert (frame.isna() == expected.isna()).all().all()
    return float(np.nanmax(np.abs(frame.to_numpy(float) - expected.to_numpy(float))))


def test_blocks_cover_the_hours_once() -> None:
    first, last = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-05 07:00", tz="UTC")
    found = time_blocks(first, last, 24)
    assert found[0] == Block(first, first + pd.Timedelta(hours=23))
    assert found[-1].end == last and len(found) == 5
    assert all(b.start - a.end == pd.Timedelta(hours=1) for a, b in pairwise(found))


@pytest.mark.parametrize("layer", ["macro", "sector", "asset", "timing"])
def test_block_rows_equal_the_rows_of_the_whole_history(
    market: tuple[Scope, MarketPanel], layer: str
) -> None:
    scope, panel = market
    family = QUICK.family(layer)
    # The history is longer than a block and its warm-up: the last blocks read a window.
    assert len(panel.hours) > family.history_hours + BLOCK_HOURS
    expected = family.training_data(panel)
    built = block_built(scope, family, panel)
    assert differences(built, expected.X, 0) < TOLERANCE
    assert differences(built, expected.y, 1) < TOLERANCE


def test_a_warm_up_shorter_than_the_windows_changes_the_rows(
    market: tuple[Scope, MarketPanel], monkeypatch: pytest.MonkeyPatch
) -> None:
    scope, panel = market
    family = QUICK.family("macro")
    # Below its 720-hour z-score windows and its 2,160-hour climatology.
    monkeypatch.setattr(type(family), "history_hours", 200)
    expected = family.training_data(panel)
    X, _ = block_built(scope, family, panel)
    assert X.index.equals(expected.X.index)
    assert not np.allclose(X.to_numpy(float), expected.X.to_numpy(float), equal_nan=True)


def test_scope_limits_what_a_block_reads(market: tuple[Scope, MarketPanel]) -> None:
    scope, panel = market
    family = QUICK.family("asset")
    symbols = tuple(panel.symbols[:3])
    limited = replace(scope, symbols=symbols, until=panel.hours[-500].to_pydatetime())
    X, _ = block_rows(limited, family, Block(panel.hours[0], panel.hours[-1]))
    assert set(X.index.get_level_values("symbol")) == set(symbols)
    assert X.index.get_level_values("timestamp").max() <= panel.hours[-500]
