"""Tests of the synthetic market generator: shape, validity and the stylised facts it promises."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.synthetic import (
    MAX_COINS,
    REGIMES,
    SECTORS,
    PlantedSignal,
    SyntheticMarket,
    generate_market,
    generate_until,
    start_for,
    write_csv,
)

CANDLE_HEADER = "timestamp,open,high,low,close,volume,market_cap"


@pytest.fixture(scope="module")
def year_market() -> SyntheticMarket:
    return generate_market(n_coins=12, days=365, seed=7)


def _pivot(market: SyntheticMarket, column: str) -> pd.DataFrame:
    return market.candles.pivot(index="timestamp", columns="symbol", values=column)


def _log_returns(market: SyntheticMarket) -> pd.DataFrame:
    return np.log(_pivot(market, "close")).diff().iloc[1:]


def _risky_symbols(market: SyntheticMarket) -> list[str]:
    coins = market.coins
    return coins.loc[coins["sector"] != "Stablecoins", "symbol"].tolist()


def _alt_symbols(market: SyntheticMarket) -> list[str]:
    return [s for s in _risky_symbols(market) if s not in ("BTC", "ETH")]


def test_same_seed_gives_identical_market() -> None:
    first = generate_market(n_coins=5, days=10, seed=42)
    second = generate_market(n_coins=5, days=10, seed=42)
    pd.testing.assert_frame_equal(first.candles, second.candles)
    pd.testing.assert_frame_equal(first.coins, second.coins)
    pd.testing.assert_series_equal(first.regimes, second.regimes)


def test_plain_market_is_pinned() -> None:
    # Recorded when the randomness came to be drawn a day at a time (so a market can be
    # continued): a seed's plain market stays as it is, planted signals or not.
    last = generate_market(n_coins=12, days=30, seed=42).candles.groupby("symbol").last()
    assert last.loc["BTC", "close"] == pytest.approx(58465.53005475849, rel=1e-9)
    assert last.loc["ETH", "close"] == pytest.approx(2754.0317212618875, rel=1e-9)
    assert last.loc["USDX", "close"] == pytest.approx(1.0000411887623075, rel=1e-9)
    assert last.loc["ETH", "volume"] == pytest.approx(888530614.2566229, rel=1e-9)


@pytest.mark.parametrize("signal", [None, "momentum:0.2", "low_volatility:0.3", "none"])
def test_a_later_end_continues_the_market_exactly(signal: str | None) -> None:
    planted = None if signal is None else PlantedSignal.parse(signal)
    short = generate_market(n_coins=12, days=9, seed=3, signal=planted)
    # Ends mid-day, past the planted score's week-long window, in a later block of draws.
    longer = generate_until(12, 3, start="2024-01-01", until="2024-01-20T05:00", signal=planted)

    assert longer.candles["timestamp"].max() == pd.Timestamp("2024-01-20T05:00Z")
    assert len(longer.candles) == 12 * (19 * 24 + 6)
    shared = longer.candles["timestamp"] <= short.candles["timestamp"].max()
    pd.testing.assert_frame_equal(
        longer.candles[shared].reset_index(drop=True), short.candles, check_exact=True
    )
    pd.testing.assert_series_equal(
        longer.regimes.loc[short.regimes.index], short.regimes, check_exact=True
    )
    if short.signal_scores is not None:
        assert longer.signal_scores is not None
        pd.testing.assert_frame_equal(
            longer.signal_scores.loc[short.signal_scores.index],
            short.signal_scores,
            check_exact=True,
        )


def test_start_for_gives_days_that_end_on_the_hour() -> None:
    start = start_for("2024-03-10T17:00", days=2)
    market = generate_market(n_coins=3, days=2, seed=1, start=start)

    assert start == pd.Timestamp("2024-03-08T18:00Z")
    assert market.candles["timestamp"].max() == pd.Timestamp("2024-03-10T17:00Z")
    until = generate_until(3, 1, start=start, until="2024-03-10T17:00")
    pd.testing.assert_frame_equal(until.candles, market.candles, check_exact=True)


@pytest.mark.parametrize(
    ("until", "message"),
    [("2023-12-31T23:00Z", "must not be before start"), ("2024-01-02T10:15Z", "whole hour")],
)
def test_generate_until_refuses_a_bad_end(until: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_until(3, 0, start="2024-01-01", until=until)


def test_different_seed_gives_different_prices() -> None:
    first = generate_market(n_coins=5, days=10, seed=1)
    second = generate_market(n_coins=5, days=10, seed=2)
    assert not np.allclose(first.candles["close"], second.candles["close"])


def test_shape_and_hourly_utc_timestamps() -> None:
    market = generate_market(n_coins=4, days=3, seed=0, start="2024-02-01T00:00:00Z")
    candles = market.candles
    assert list(candles.columns) == [
        "symbol",
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "market_cap",
    ]
    assert len(candles) == 4 * 3 * 24
    assert str(candles["timestamp"].dt.tz) == "UTC"
    assert candles["timestamp"].min() == pd.Timestamp("2024-02-01T00:00:00Z")
    assert candles.equals(candles.sort_values(["symbol", "timestamp"]).reset_index(drop=True))
    for _, frame in candles.groupby("symbol"):
        assert len(frame) == 3 * 24
        assert (frame["timestamp"].diff().iloc[1:] == pd.Timedelta(hours=1)).all()
    assert market.regimes.index.equals(pd.DatetimeIndex(candles["timestamp"].unique()))


def test_naive_start_is_taken_as_utc() -> None:
    market = generate_market(n_coins=2, days=1, seed=0, start="2024-05-01 06:00")
    assert market.regimes.index[0] == pd.Timestamp("2024-05-01T06:00:00Z")


def test_every_candle_is_valid(year_market: SyntheticMarket) -> None:
    candles = year_market.candles
    prices = candles[["open", "high", "low", "close"]]
    assert (prices > 0).all().all()
    assert (candles["high"] >= candles[["open", "close"]].max(axis=1)).all()
    assert (candles["low"] <= candles[["open", "close"]].min(axis=1)).all()
    assert (candles["volume"] >= 0).all()
    supply = candles["market_cap"] / candles["close"]
    assert np.allclose(supply, supply.groupby(candles["symbol"]).transform("first"), rtol=1e-9)
    previous_close = candles.groupby("symbol")["close"].shift()
    gap = np.log(candles["open"] / previous_close).dropna()
    assert gap.abs().max() < 0.01


def test_btc_dominates_and_eth_is_second(year_market: SyntheticMarket) -> None:
    caps = _pivot(year_market, "market_cap")
    shares = caps.div(caps.sum(axis=1), axis=0)
    assert (shares.idxmax(axis=1) == "BTC").all()
    assert 0.35 <= shares["BTC"].mean() <= 0.65
    assert (shares.drop(columns="BTC").idxmax(axis=1).value_counts().idxmax()) == "ETH"
    assert 0.10 <= shares["ETH"].mean() <= 0.25


def test_coins_have_seeded_sectors_and_plausible_symbols(year_market: SyntheticMarket) -> None:
    coins = year_market.coins
    assert list(coins.columns) == ["symbol", "name", "sector"]
    assert coins["symbol"].iloc[:2].tolist() == ["BTC", "ETH"]
    assert coins.set_index("symbol").loc[["BTC", "ETH"], "sector"].tolist() == [
        "Bitcoin",
        "Ethereum & Smart Contracts",
    ]
    assert set(coins["sector"]) <= set(SECTORS)
    assert coins["symbol"].is_unique
    assert all(re.fullmatch(r"[A-Z]{2,6}", symbol) for symbol in coins["symbol"])
    assert coins["name"].str.len().gt(0).all()


def test_the_largest_market_has_a_unique_symbol_and_name_per_coin() -> None:
    coins = generate_market(MAX_COINS, 1, seed=0).coins
    assert len(coins) == MAX_COINS
    assert coins["symbol"].is_unique and coins["name"].is_unique
    assert all(re.fullmatch(r"[A-Z]{2,6}[0-9]?", symbol) for symbol in coins["symbol"])
    # The first 208 alts keep the names they had before markets grew past 200 coins.
    assert "ZOAN" in set(coins["symbol"]) and "ZOAN2" in set(coins["symbol"])


def test_stablecoin_only_in_larger_markets_and_stays_pegged(
    year_market: SyntheticMarket,
) -> None:
    assert "Stablecoins" not in set(generate_market(n_coins=11, days=1, seed=0).coins["sector"])
    close = _pivot(year_market, "close")["USDX"]
    assert (close - 1.0).abs().max() < 0.01


def test_hourly_volatility_is_realistic(year_market: SyntheticMarket) -> None:
    returns = _log_returns(year_market)
    assert 0.003 <= returns["BTC"].std() <= 0.008
    alt_vol = returns[_alt_symbols(year_market)].std()
    assert alt_vol.between(0.005, 0.015).all()
    assert (alt_vol > returns["BTC"].std()).all()


def test_regimes_are_persistent_and_all_appear(year_market: SyntheticMarket) -> None:
    regimes = year_market.regimes
    assert set(regimes) == set(REGIMES)
    run_lengths = regimes.groupby((regimes != regimes.shift()).cumsum()).size()
    assert run_lengths.mean() > 48


def test_bull_hours_beat_bear_hours(year_market: SyntheticMarket) -> None:
    market_return = _log_returns(year_market)[_risky_symbols(year_market)].mean(axis=1)
    by_regime = market_return.groupby(year_market.regimes.iloc[1:]).mean()
    assert by_regime["bull"] > by_regime["bear"]


def test_bear_hours_are_more_volatile_than_sideways(year_market: SyntheticMarket) -> None:
    market_return = _log_returns(year_market)[_risky_symbols(year_market)].mean(axis=1)
    by_regime = market_return.groupby(year_market.regimes.iloc[1:]).std()
    assert by_regime["bear"] > by_regime["bull"] > by_regime["sideways"]


def test_alt_returns_are_fat_tailed(year_market: SyntheticMarket) -> None:
    excess_kurtosis = _log_returns(year_market)[_alt_symbols(year_market)].kurt()
    assert (excess_kurtosis > 1).all()


def test_volatility_clusters(year_market: SyntheticMarket) -> None:
    squared = _log_returns(year_market)[_risky_symbols(year_market)] ** 2
    lag_one = squared.apply(lambda column: column.autocorr(lag=1))
    assert lag_one["BTC"] > 0.05
    assert lag_one.median() > 0.05


def test_volume_rises_with_absolute_return(year_market: SyntheticMarket) -> None:
    abs_returns = _log_returns(year_market).abs()
    volume = _pivot(year_market, "volume").iloc[1:]
    for symbol in _risky_symbols(year_market):
        assert volume[symbol].corr(abs_returns[symbol]) > 0.1


def test_write_csv_writes_readable_files(tmp_path: Path) -> None:
    market = generate_market(n_coins=3, days=2, seed=5)
    out_dir = tmp_path / "market"
    paths = write_csv(market, out_dir)

    symbols = market.coins["symbol"].tolist()
    expected = {f"{symbol}-USD_1h.csv" for symbol in symbols} | {"coins.csv"}
    assert {path.name for path in paths} == expected
    assert all(path.parent == out_dir and path.is_file() for path in paths)

    btc_path = out_dir / "BTC-USD_1h.csv"
    assert btc_path.read_text().splitlines()[0] == CANDLE_HEADER
    btc = pd.read_csv(btc_path)
    assert len(btc) == 2 * 24
    assert btc["timestamp"].iloc[0] == "2024-01-01T00:00:00Z"
    assert btc["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00:00Z").all()
    expected_close = market.candles.loc[market.candles["symbol"] == "BTC", "close"]
    assert np.allclose(btc["close"], expected_close, rtol=1e-9)

    coins = pd.read_csv(out_dir / "coins.csv")
    pd.testing.assert_frame_equal(coins, market.coins, check_dtype=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_coins": 1, "days": 5}, "n_coins"),
        ({"n_coins": MAX_COINS + 1, "days": 5}, "n_coins"),
        ({"n_coins": 3, "days": 0}, "days"),
        ({"n_coins": 3, "days": 1, "start": "2024-01-01T00:30:00Z"}, "whole hour"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_market(seed=0, **kwargs)  # type: ignore[arg-type]
