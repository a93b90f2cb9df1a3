"""The one candle frame: `validate_candles` refuses every kind of bad candle, passes good ones
unchanged, and is the gate of every source (CSV files, the synthetic market, `synth`)."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text

import training.candles
from cryptopredict.commands import data
from db.engine import make_engine
from store.candles import (
    CANDLE_COLUMNS,
    MARKET_COLUMNS,
    STORED_AS,
    CandlesRejected,
    problems_by_row,
    validate_candles,
)
from training import synthetic
from training.candles import BadRow, CandleFileError, read_candle_file
from training.ingest import write_market
from training.synthetic import SyntheticMarket, generate_market, write_csv

START = pd.Timestamp("2024-01-01T00:00Z")
BAD = 2  # the position of the corrupted candle

# Overrides that make candle BAD of `good_candles()` bad, and the reason given.
BAD_CANDLES = [
    pytest.param({"timestamp": pd.NaT}, "timestamp is missing", id="no-timestamp"),
    pytest.param({"open": np.nan}, "open is missing", id="no-open"),
    pytest.param({"volume": np.nan}, "volume is missing", id="no-volume"),
    pytest.param({"open": 0.0}, "open 0.0 is not positive", id="zero-open"),
    pytest.param({"close": -11.0}, "close -11.0 is not positive", id="negative-close"),
    pytest.param({"high": 10.5}, "high 10.5 is below max(open, close) 11.0", id="high-below"),
    pytest.param({"low": 10.5}, "low 10.5 is above min(open, close) 10.0", id="low-above"),
    pytest.param({"volume": -1.0}, "volume -1.0 is negative", id="negative-volume"),
    pytest.param({"market_cap": -5.0}, "market_cap -5.0 is negative", id="negative-cap"),
    pytest.param(
        {"volume": 1e22},
        "volume 1e+22 is too large to store (the limit is 1e+22)",
        id="volume-too-large",
    ),
    pytest.param(
        {"market_cap": 1e28},
        "market_cap 1e+28 is too large to store (the limit is 1e+28)",
        id="cap-too-large",
    ),
    pytest.param(
        {"timestamp": START + pd.Timedelta(hours=1)},
        "duplicate timestamp 2024-01-01T01:00:00+00:00 (first on row 1)",
        id="duplicate",
    ),
    pytest.param(
        {"timestamp": START + pd.Timedelta(hours=2, minutes=30)},
        "timestamp 2024-01-01T02:30:00+00:00 is not on the 1h grid",
        id="off-the-hour",
    ),
]


def good_candles(rows: int = 5) -> pd.DataFrame:
    """Hourly candles of one coin in the canonical form."""
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(START, periods=rows, freq="h").as_unit("ns"),
            "open": 10.0,
            "high": 12.0,
            "low": 9.0,
            "close": 11.0,
            "volume": 100.0,
            "market_cap": 5000.0,
        }
    )


def corrupted(frame: pd.DataFrame, overrides: dict[str, Any], position: int = BAD) -> pd.DataFrame:
    bad = frame.copy()
    for column, value in overrides.items():
        bad.loc[bad.index[position], column] = value
    return bad


def rejection(frame: pd.DataFrame, **kwargs: Any) -> CandlesRejected:
    with pytest.raises(CandlesRejected) as caught:
        validate_candles(frame, **kwargs)
    return caught.value


def small_market() -> SyntheticMarket:
    return generate_market(n_coins=3, days=2, seed=5)


def corrupt_market(market: SyntheticMarket) -> tuple[SyntheticMarket, int]:
    """The market with one ETH candle's high under its close, and that candle's position."""
    candles = market.candles.copy()
    position = int(np.flatnonzero(candles["symbol"] == "ETH")[10])
    candles.loc[position, "high"] = candles.loc[position, "close"] / 2
    return SyntheticMarket(candles=candles, coins=market.coins, regimes=market.regimes), position


def stored_rows(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        candles = connection.execute(text("SELECT count(*) FROM price_data")).scalar_one()
        coins = connection.execute(text("SELECT count(*) FROM cryptocurrencies")).scalar_one()
    return candles, coins


# --- the frame -----------------------------------------------------------------------------


def test_a_good_frame_passes_unchanged() -> None:
    frame = good_candles()

    assert validate_candles(frame) is frame


def test_a_good_market_frame_passes_unchanged() -> None:
    frame = good_candles().assign(symbol="BTC")[list(MARKET_COLUMNS)]
    other = frame.assign(symbol="ETH")
    market = pd.concat([frame, other], ignore_index=True)  # same hours, other coin

    assert validate_candles(market) is market


def test_a_frame_is_conformed_to_the_candle_frame() -> None:
    canonical = good_candles().assign(market_cap=np.nan)
    loose = canonical.drop(columns="market_cap").assign(
        timestamp=canonical["timestamp"].dt.tz_convert("Asia/Kolkata").dt.as_unit("us"),
        volume=canonical["volume"].astype("int64"),
        exchange="binance",
    )

    conformed = validate_candles(loose)

    assert list(conformed.columns) == list(CANDLE_COLUMNS)
    pd.testing.assert_frame_equal(conformed, canonical)


def test_a_generated_market_passes_with_its_values_kept() -> None:
    market = small_market()

    candles = validate_candles(market.candles)

    assert list(candles.columns) == list(MARKET_COLUMNS)
    assert str(candles["timestamp"].dtype) == "datetime64[ns, UTC]"
    pd.testing.assert_frame_equal(candles, market.candles, check_dtype=False)


def test_the_storable_limits_are_those_of_price_data() -> None:
    stored = {name: (column.name, column.limit) for name, column in STORED_AS.items()}

    assert stored == {
        "open": ("open_price", 10**12),  # NUMERIC(20, 8)
        "high": ("high_price", 10**12),
        "low": ("low_price", 10**12),
        "close": ("close_price", 10**12),
        "volume": ("volume", 10**22),  # NUMERIC(30, 8)
        "market_cap": ("market_cap", 10**28),  # NUMERIC(30, 2)
    }


# --- bad candles ---------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "reason"), BAD_CANDLES)
def test_each_kind_of_bad_candle_is_refused(overrides: dict[str, Any], reason: str) -> None:
    error = rejection(corrupted(good_candles(), overrides))

    assert error.positions == [BAD]
    assert reason in [problem.describe() for problem in error.problems]
    assert f"row {BAD}: " in str(error)
    assert error.message == "1 bad candle(s)"


def test_a_non_finite_value_is_refused() -> None:
    error = rejection(corrupted(good_candles(), {"close": np.inf}))

    assert [problem.reason for problem in error.problems] == ["close inf is not a finite number"]


def test_every_problem_of_every_bad_row_is_reported_in_order() -> None:
    frame = corrupted(good_candles(), {"open": -1.0, "volume": -3.0}, position=1)
    frame = corrupted(frame, {"timestamp": START}, position=4)

    error = rejection(frame)

    assert error.positions == [1, 4]
    assert problems_by_row(error.problems) == [
        (
            1,
            "open -1.0 is not positive; low 9.0 is above min(open, close) -1.0; "
            "volume -3.0 is negative",
        ),
        (4, "duplicate timestamp 2024-01-01T00:00:00+00:00 (first on row 0)"),
    ]
    assert str(error).splitlines()[0] == "2 bad candle(s)"


def test_a_repeat_is_a_duplicate_only_for_the_same_coin() -> None:
    frame = good_candles(3).assign(symbol="BTC")[list(MARKET_COLUMNS)]
    market = pd.concat([frame, frame.assign(symbol="ETH"), frame.iloc[[1]]], ignore_index=True)

    error = rejection(market)

    assert [problem.describe() for problem in error.problems] == [
        "duplicate timestamp 2024-01-01T01:00:00+00:00 of BTC (first on row 1)"
    ]


def test_the_grid_is_the_interval_s() -> None:
    five_minutes = good_candles().assign(
        timestamp=pd.date_range(START, periods=5, freq="5min").as_unit("ns")
    )

    assert validate_candles(five_minutes, interval=pd.Timedelta(minutes=5)) is five_minutes
    assert validate_candles(five_minutes, interval=None) is five_minutes
    assert rejection(five_minutes).positions == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (good_candles().drop(columns="volume"), "missing required column(s) volume"),
        (
            good_candles().assign(timestamp=pd.date_range("2024", periods=5, freq="h")),
            "timestamp must be time-zone aware",
        ),
        (good_candles().assign(open="10"), "open must be numbers"),
    ],
    ids=["no-volume-column", "naive-timestamps", "text-prices"],
)
def test_an_unusable_frame_is_refused_whole(frame: pd.DataFrame, message: str) -> None:
    error = rejection(frame)

    assert message in error.message
    assert error.problems == []


def test_a_rejection_survives_pickling() -> None:
    error = rejection(corrupted(good_candles(), {"timestamp": START}))

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.message, copy.problems, str(copy)) == (error.message, error.problems, str(error))


# --- every source goes through it ----------------------------------------------------------


@pytest.mark.parametrize(("overrides", "reason"), BAD_CANDLES)
def test_a_csv_file_with_the_same_defect_names_its_line(
    tmp_path: Path, overrides: dict[str, Any], reason: str
) -> None:
    frame = corrupted(good_candles(), overrides)
    path = tmp_path / "BTC-USD_1h.csv"
    frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")

    with pytest.raises(CandleFileError) as caught:
        read_candle_file(path)

    # The header is line 1, so the candle at position p is on line p + 2.
    expected = problems_by_row(rejection(frame).problems, lambda p: f"line {p + 2}")
    assert caught.value.problems == [BadRow(line=p + 2, reason=text) for p, text in expected]
    assert caught.value.problems[0].line == BAD + 2


def test_the_csv_reader_calls_validate_candles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[pd.DataFrame] = []

    def spy(frame: pd.DataFrame, interval: pd.Timedelta | None) -> pd.DataFrame:
        seen.append(frame)
        return validate_candles(frame, interval)

    monkeypatch.setattr(training.candles, "validate_candles", spy)
    path = tmp_path / "BTC-USD_1h.csv"
    good_candles().to_csv(path, index=False)

    read_candle_file(path)

    assert len(seen) == 1


def test_a_corrupted_synthetic_market_is_refused_before_any_file_is_written(
    tmp_path: Path,
) -> None:
    market, position = corrupt_market(small_market())
    out = tmp_path / "market"

    with pytest.raises(CandlesRejected) as caught:
        write_csv(market, out)

    assert caught.value.positions == [position]
    assert not out.exists()


def test_a_corrupted_synthetic_market_is_refused_before_anything_is_stored(
    engine: Engine,
) -> None:
    market, position = corrupt_market(small_market())
    before = stored_rows(engine)

    with pytest.raises(CandlesRejected) as caught:
        write_market(engine, market.candles, market.coins)

    assert caught.value.positions == [position]
    assert stored_rows(engine) == before


def test_write_market_stores_a_good_market(engine: Engine) -> None:
    market = small_market()

    counts = write_market(engine, market.candles, market.coins)

    assert sum(count.inserted for count in counts.values()) == len(market.candles)
    assert stored_rows(engine)[0] == len(market.candles)


def test_the_synth_command_refuses_a_corrupted_market(
    configured_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    market, position = corrupt_market(small_market())
    monkeypatch.setattr(synthetic, "generate_market", lambda *args, **kwargs: market)

    with pytest.raises(CandlesRejected) as caught:
        data.synth(
            coins=3, days=2, end=datetime(2024, 1, 2, 23, tzinfo=UTC), seed=5, out=None, signal=None
        )

    assert caught.value.positions == [position]
    engine = make_engine(configured_database)
    try:
        assert stored_rows(engine)[0] == 0
    finally:
        engine.dispose()
