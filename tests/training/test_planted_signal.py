"""Tests of the planted signals: a known signal comes out at its strength, a null market holds
nothing a model could predict, and `cryptopredict synth --signal` reaches the generator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.synthetic import (
    MAX_SIGNAL_STRENGTH,
    SIGNAL_HORIZON_HOURS,
    PlantedSignal,
    SyntheticMarket,
    generate_market,
)

WEEK = 168
IC_TOLERANCE = 0.03


@pytest.fixture(scope="module")
def null_market() -> SyntheticMarket:
    return generate_market(n_coins=20, days=365, seed=3, signal=PlantedSignal("none"))


def _log_closes(market: SyntheticMarket) -> pd.DataFrame:
    """Log close per hour (rows) and risky coin (columns); the stablecoin is left out."""
    closes = market.candles.pivot(index="timestamp", columns="symbol", values="close")
    risky = market.coins.loc[market.coins["sector"] != "Stablecoins", "symbol"]
    return np.log(closes[risky])


def _forward_return(log_closes: pd.DataFrame) -> pd.DataFrame:
    return log_closes.shift(-SIGNAL_HORIZON_HOURS) - log_closes


def _mean_rank_ic(score: pd.DataFrame, forward: pd.DataFrame) -> float:
    """Mean over hours of the cross-sectional Spearman correlation of score and forward return."""
    both = score.notna() & forward.notna()
    score_ranks = score.where(both).rank(axis=1)
    forward_ranks = forward.where(both).rank(axis=1)
    per_hour = score_ranks.corrwith(forward_ranks, axis=1).dropna()
    return float(per_hour.mean())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("momentum:0.1", PlantedSignal("momentum", 0.1)),
        ("low_volatility:0.5", PlantedSignal("low_volatility", 0.5)),
        (" momentum : 0 ", PlantedSignal("momentum", 0.0)),
        ("none", PlantedSignal("none")),
    ],
)
def test_parse_reads_kind_and_strength(text: str, expected: PlantedSignal) -> None:
    parsed = PlantedSignal.parse(text)

    assert parsed == expected
    assert PlantedSignal.parse(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("magic:0.1", "unknown signal kind 'magic'; known kinds: none, momentum, low_volatility"),
        ("", "unknown signal kind ''"),
        ("momentum:strong", "signal strength must be a number, got 'strong'"),
        ("momentum:0.6", f"between 0 and {MAX_SIGNAL_STRENGTH}, got 0.6"),
        ("low_volatility:-0.1", "between 0 and"),
        ("momentum:nan", "between 0 and"),
        ("none:0.1", "signal none takes no strength"),
        ("momentum", "signal momentum needs a strength, like momentum:0.1"),
        ("momentum:", "needs a strength"),
    ],
)
def test_parse_rejects_bad_input(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        PlantedSignal.parse(text)


def test_only_a_planted_signal_records_scores() -> None:
    plain = generate_market(n_coins=3, days=2, seed=0)
    null = generate_market(n_coins=3, days=2, seed=0, signal=PlantedSignal("none"))

    assert plain.signal is None and plain.signal_scores is None
    assert null.signal == PlantedSignal("none") and null.signal_scores is None


def test_planted_market_is_deterministic() -> None:
    signal = PlantedSignal("momentum", 0.2)
    first = generate_market(n_coins=5, days=10, seed=4, signal=signal)
    second = generate_market(n_coins=5, days=10, seed=4, signal=signal)

    pd.testing.assert_frame_equal(first.candles, second.candles)
    assert first.signal_scores is not None and second.signal_scores is not None
    pd.testing.assert_frame_equal(first.signal_scores, second.signal_scores)


def test_planted_scores_are_read_from_past_closes() -> None:
    momentum = generate_market(n_coins=12, days=30, seed=1, signal=PlantedSignal("momentum", 0.2))
    low_vol = generate_market(
        n_coins=12, days=30, seed=1, signal=PlantedSignal("low_volatility", 0.2)
    )
    momentum_closes, low_vol_closes = _log_closes(momentum), _log_closes(low_vol)
    trailing_vol = np.sqrt((low_vol_closes.diff() ** 2).rolling(WEEK).mean())

    assert momentum.signal_scores is not None and low_vol.signal_scores is not None
    assert list(momentum.signal_scores.columns) == list(momentum_closes.columns)
    assert "USDX" not in momentum.signal_scores.columns
    assert momentum.signal_scores.iloc[:WEEK].isna().all().all()
    pd.testing.assert_frame_equal(
        momentum.signal_scores.iloc[WEEK:],
        (momentum_closes - momentum_closes.shift(WEEK)).iloc[WEEK:],
        check_names=False,
        check_freq=False,
        rtol=1e-9,
    )
    pd.testing.assert_frame_equal(
        low_vol.signal_scores.iloc[WEEK:],
        -trailing_vol.iloc[WEEK:],
        check_names=False,
        check_freq=False,
        rtol=1e-6,
    )


@pytest.mark.parametrize("kind", ["momentum", "low_volatility"])
def test_planted_drift_leaves_the_market_factor_alone(kind: str) -> None:
    planted = generate_market(n_coins=12, days=60, seed=2, signal=PlantedSignal(kind, 0.3))
    unplanted = generate_market(n_coins=12, days=60, seed=2, signal=PlantedSignal(kind, 0.0))

    planted_closes, unplanted_closes = _log_closes(planted), _log_closes(unplanted)
    assert not np.allclose(planted_closes, unplanted_closes)
    assert np.allclose(planted_closes.mean(axis=1), unplanted_closes.mean(axis=1), atol=1e-9)
    pd.testing.assert_series_equal(planted.regimes, unplanted.regimes)


@pytest.mark.parametrize(
    ("kind", "strength"),
    [("momentum", 0.1), ("momentum", 0.3), ("low_volatility", 0.1), ("low_volatility", 0.3)],
)
def test_planted_signal_has_its_target_rank_ic(kind: str, strength: float) -> None:
    market = generate_market(n_coins=20, days=365, seed=0, signal=PlantedSignal(kind, strength))
    assert market.signal_scores is not None

    ic = _mean_rank_ic(market.signal_scores, _forward_return(_log_closes(market)))

    assert ic == pytest.approx(strength, abs=IC_TOLERANCE)


def test_null_market_coins_are_unpredictable_from_their_past(
    null_market: SyntheticMarket,
) -> None:
    log_closes = _log_closes(null_market)
    forward = _forward_return(log_closes)
    trailing_vol = np.sqrt((log_closes.diff() ** 2).rolling(WEEK).mean())
    scores = {
        "day return": log_closes - log_closes.shift(SIGNAL_HORIZON_HOURS),
        "week return": log_closes - log_closes.shift(WEEK),
        "low volatility": -trailing_vol,
    }

    ics = {name: _mean_rank_ic(score, forward) for name, score in scores.items()}

    assert all(abs(ic) < IC_TOLERANCE for ic in ics.values()), ics


def test_null_market_keeps_volatility_clustering(null_market: SyntheticMarket) -> None:
    squared = _log_closes(null_market).diff() ** 2
    assert squared.apply(lambda column: column.autocorr(lag=1)).median() > 0.05


def test_null_market_direction_is_unpredictable() -> None:
    # Eight years, because one year holds only 52 independent weeks of the market's direction.
    market = generate_market(n_coins=3, days=8 * 365, seed=1, signal=PlantedSignal("none"))
    index = _log_closes(market).mean(axis=1)
    trailing, forward = index - index.shift(WEEK), index.shift(-WEEK) - index
    hourly = index.diff()
    by_regime = hourly.groupby(market.regimes).agg(["mean", "std", "count"])
    drift_t = by_regime["mean"] / (by_regime["std"] / np.sqrt(by_regime["count"]))

    assert abs(forward.corr(trailing)) < 0.1
    assert (drift_t.abs() < 3).all(), drift_t.to_dict()


def _synth(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}",
        "DATA_DIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "-m", "cryptopredict", "synth", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_synth_command_plants_the_signal_it_is_given(tmp_path: Path) -> None:
    out = tmp_path / "market"
    args = ["--coins", "3", "--days", "10", "--signal", "momentum:0.2", "--out", str(out)]

    result = _synth(*args, tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "signal momentum:0.2" in " ".join(result.stdout.split())
    written = pd.read_csv(out / "BTC-USD_1h.csv")["close"].to_numpy()
    planted = generate_market(3, 10, seed=7, signal=PlantedSignal("momentum", 0.2)).candles
    plain = generate_market(3, 10, seed=7).candles
    assert np.allclose(written, planted.loc[planted["symbol"] == "BTC", "close"], rtol=1e-9)
    assert not np.allclose(written, plain.loc[plain["symbol"] == "BTC", "close"], rtol=1e-9)


def test_synth_command_refuses_a_bad_signal(tmp_path: Path) -> None:
    out = tmp_path / "market"
    args = ["--coins", "3", "--days", "2", "--signal", "momentum:2", "--out", str(out)]

    result = _synth(*args, tmp_path=tmp_path)

    assert result.returncode == 1
    assert result.stderr.startswith("error: signal strength must be between 0 and 0.5, got 2.0")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()
