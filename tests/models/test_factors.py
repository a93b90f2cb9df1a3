"""Simple factors: point in time, the right signs, names that round-trip, and the choice of
the best one on synthetic data where one factor is planted."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from models.factors import DEFAULT_FACTORS, Factor, best_factor, factor_frame
from models.panel import MarketPanel
from training.synthetic import generate_market


def _hand_panel(close: dict[str, list[float]]) -> MarketPanel:
    """A panel from hand-written closes; open, high and low equal the close."""
    hours = pd.date_range(
        "2024-01-01", periods=len(next(iter(close.values()))), freq="h", tz="UTC"
    ).rename("timestamp")
    closes = pd.DataFrame(close, index=hours, dtype=float).rename_axis(columns="symbol")
    return MarketPanel(
        open=closes,
        high=closes,
        low=closes,
        close=closes,
        volume=closes * 0 + 1.0,
        market_cap=closes * np.nan,
        sectors=pd.Series(index=closes.columns, dtype=object, name="sector"),
    )


def _random_walk_panel(n_coins: int, n_hours: int, seed: int) -> MarketPanel:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.01, size=(n_hours, n_coins)) * rng.uniform(0.5, 3.0, n_coins)
    close = 100 * np.exp(np.cumsum(steps, axis=0))
    return _hand_panel({f"C{i:02d}": close[:, i].tolist() for i in range(n_coins)})


# --------------------------------------------------------------------------- point in time


def test_factor_scores_are_point_in_time() -> None:
    market = generate_market(n_coins=6, days=12, seed=1)
    panel = MarketPanel.from_candles(market.candles, market.coins)
    cut = panel.hours[200]
    later = panel.close.index > cut
    rng = np.random.default_rng(0)
    moved = panel.close.copy()
    moved.loc[later] = moved.loc[later].to_numpy() * np.exp(rng.normal(0, 0.05, moved[later].shape))
    perturbed = replace(panel, close=moved)
    before, after = factor_frame(panel), factor_frame(perturbed)
    hours = before.index.get_level_values("timestamp")
    pd.testing.assert_frame_equal(before[hours <= cut], after[hours <= cut])
    assert not before[hours > cut].equals(after[hours > cut])


def test_factor_scores_need_a_candle_at_the_hour() -> None:
    panel = _random_walk_panel(n_coins=3, n_hours=200, seed=2)
    gap = panel.close.copy()
    gap.iloc[190, 0] = np.nan
    scores = Factor("low_volatility", 24).scores(replace(panel, close=gap))
    assert math.isnan(scores.iloc[190, 0])
    assert not math.isnan(scores.iloc[191, 0])


# --------------------------------------------------------------------------- signs


def test_a_calm_coin_scores_higher_on_low_volatility() -> None:
    hours = np.arange(200)
    calm = 100 * np.exp(0.001 * (-1.0) ** hours)
    jumpy = 100 * np.exp(0.05 * (-1.0) ** hours)
    scores = Factor("low_volatility", 168).scores(
        _hand_panel({"CALM": calm.tolist(), "JUMPY": jumpy.tolist()})
    )
    last = scores.iloc[-1]
    assert last["CALM"] > last["JUMPY"]
    # Hourly log returns alternate +-0.002 and +-0.1.
    assert last["CALM"] == pytest.approx(-0.002 * math.sqrt(168 / 167), rel=1e-6)


def test_a_coin_that_fell_scores_higher_on_reversal_and_lower_on_momentum() -> None:
    flat = [100.0] * 200
    fell = flat[:-24] + list(np.linspace(100.0, 90.0, 24))
    rose = flat[:-24] + list(np.linspace(100.0, 110.0, 24))
    panel = _hand_panel({"FELL": fell, "ROSE": rose})
    reversal = Factor.from_name("reversal_24h").scores(panel).iloc[-1]
    assert reversal["FELL"] > reversal["ROSE"]
    assert reversal["FELL"] == pytest.approx(-math.log(0.9))
    momentum = Factor.from_name("momentum_168h").scores(panel).iloc[-1]
    assert momentum["FELL"] < momentum["ROSE"]
    assert momentum["ROSE"] == pytest.approx(math.log(1.1))


# --------------------------------------------------------------------------- names


def test_factor_names_round_trip() -> None:
    names = [factor.name for factor in DEFAULT_FACTORS]
    assert names == ["low_volatility_168h", "reversal_24h", "reversal_4h", "momentum_168h"]
    assert [Factor.from_name(name) for name in names] == list(DEFAULT_FACTORS)


@pytest.mark.parametrize("name", ["reversal_24", "size_24h", "reversal_h", "reversal_-4h", "x"])
def test_factor_from_name_rejects_other_names(name: str) -> None:
    with pytest.raises(ValueError, match="factor"):
        Factor.from_name(name)


def test_factor_rejects_a_bad_kind_or_window() -> None:
    with pytest.raises(ValueError, match="kind"):
        Factor("size", 24)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window"):
        Factor("reversal", 0)


def test_factor_frame_is_long_with_one_column_per_factor() -> None:
    panel = _random_walk_panel(n_coins=4, n_hours=50, seed=3)
    frame = factor_frame(panel)
    assert list(frame.columns) == [factor.name for factor in DEFAULT_FACTORS]
    assert frame.index.names == ["timestamp", "symbol"]
    assert len(frame) == 50 * 4
    wide = Factor("reversal", 4).scores(panel)
    assert frame["reversal_4h"].unstack("symbol").equals(wide.rename_axis(columns="symbol"))


# --------------------------------------------------------------------------- best factor


@pytest.mark.parametrize("planted", ["low_volatility_168h", "reversal_24h", "momentum_168h"])
def test_best_factor_finds_the_planted_one(planted: str) -> None:
    frame = factor_frame(_random_walk_panel(n_coins=30, n_hours=400, seed=4))
    rng = np.random.default_rng(5)
    signal = frame[planted]
    outcomes = signal + 0.5 * signal.std() * rng.normal(size=len(frame))
    assert best_factor(frame, outcomes) == planted


def test_best_factor_breaks_ties_by_column_order() -> None:
    frame = factor_frame(_random_walk_panel(n_coins=10, n_hours=200, seed=6))
    signal = frame["momentum_168h"]
    twins = pd.DataFrame({"a": signal, "b": signal})
    assert best_factor(twins, signal) == "a"
    assert best_factor(twins[["b", "a"]], signal) == "b"


def test_best_factor_needs_a_defined_rank_ic() -> None:
    frame = factor_frame(_random_walk_panel(n_coins=10, n_hours=20, seed=7))
    with pytest.raises(ValueError, match="rank IC"):
        best_factor(frame[["momentum_168h"]], frame["reversal_4h"])
