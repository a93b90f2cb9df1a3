"""Tests of candle CSV reading, validation and hourly normalisation."""

import gzip
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from store.candles import MAX_LISTED_PROBLEMS
from training.candles import (
    CANDLE_COLUMNS,
    HOUR,
    BadRow,
    CandleFile,
    CandleFileError,
    discover_candle_files,
    read_candle_file,
    read_coins_file,
    symbol_from_filename,
)

HEADER = "timestamp,open,high,low,close,volume"


def write_csv(directory: Path, name: str, rows: list[str], header: str = HEADER) -> Path:
    path = directory / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def hourly_rows(count: int, start: str = "2021-01-01T00:00:00Z") -> list[str]:
    """``count`` valid hourly rows, one an hour from ``start``."""
    stamps = pd.date_range(start, periods=count, freq="h")
    return [f"{stamp:%Y-%m-%dT%H:%M:%SZ},10,12,9,11,100" for stamp in stamps]


PRICE_NAMES = ("open", "high", "low", "close")


def rejection(path: Path) -> CandleFileError:
    with pytest.raises(CandleFileError) as caught:
        read_candle_file(path)
    return caught.value


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# --- real data ---------------------------------------------------------------------------


def assert_normalised(candles: pd.DataFrame) -> None:
    assert list(candles.columns) == list(CANDLE_COLUMNS)
    assert str(candles["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert all(candles[name].dtype == np.float64 for name in CANDLE_COLUMNS[1:])
    assert candles["timestamp"].is_monotonic_increasing
    assert candles["timestamp"].is_unique
    assert (candles["timestamp"].dt.floor("h") == candles["timestamp"]).all()


@pytest.mark.parametrize(
    ("name", "rows", "missing_hours", "zero_volume_rows"),
    [
        # As listed in the data's PROVENANCE.csv.
        ("BTC-USDT_1h.csv", 5482, 11, 2),
        ("ETH-USDT_1h.csv", 5482, 11, 2),
        ("LUNA-USDT_1h.csv", 5482, 11, 2),
        ("ATM-USDT_1h.csv", 4784, 7, 2),
    ],
)
def test_real_binance_files_load_hourly_with_gaps_kept(
    real_data: Path, name: str, rows: int, missing_hours: int, zero_volume_rows: int
) -> None:
    loaded = read_candle_file(real_data / "binance-2021-1h" / name)

    candles = loaded.candles
    assert loaded.symbol == name.split("-")[0]
    assert loaded.source_interval == HOUR
    assert loaded.source_rows == len(candles) == rows
    assert_normalised(candles)
    span_hours = (candles["timestamp"].iloc[-1] - candles["timestamp"].iloc[0]) // HOUR + 1
    assert span_hours - rows == missing_hours  # maintenance gaps are kept, not filled
    assert (candles["volume"] == 0).sum() == zero_volume_rows  # flat placeholders are valid
    assert candles["market_cap"].isna().all()


def test_real_btc_usd_file_loads(real_data: Path) -> None:
    loaded = read_candle_file(real_data / "BTC-USD_1h.csv")

    assert loaded.symbol == "BTC"
    assert loaded.source_interval == HOUR
    assert loaded.source_rows == len(loaded.candles) == 4584
    assert loaded.candles["timestamp"].iloc[0] == utc("2025-05-13T00:00:00")
    assert loaded.candles.iloc[0]["open"] == 102802.44
    assert_normalised(loaded.candles)


def test_every_real_candle_file_loads(real_data: Path) -> None:
    files = [*discover_candle_files(real_data / "binance-2021-1h"), real_data / "BTC-USD_1h.csv"]
    edge_cases = discover_candle_files(real_data / "edge-cases")

    loaded = [read_candle_file(path) for path in files]
    # Not USD-quoted, or a derivative: only under a symbol of their own.
    renamed = [read_candle_file(path, symbol=f"EDGE{i}") for i, path in enumerate(edge_cases)]

    assert len(loaded) == len(files)
    assert all(candle_file.source_interval <= HOUR for candle_file in [*loaded, *renamed])


def test_real_edge_case_files_without_symbol_are_refused(real_data: Path) -> None:
    for path in discover_candle_files(real_data / "edge-cases"):
        with pytest.raises(CandleFileError, match="pass --symbol"):
            read_candle_file(path)


def test_real_5m_file_aggregates_to_hourly(real_data: Path) -> None:
    path = real_data / "edge-cases" / "ETH-BTC_5m.csv"
    source = pd.read_csv(path)

    loaded = read_candle_file(path, symbol="ETHBTC")

    assert loaded.symbol == "ETHBTC"
    assert loaded.source_interval == pd.Timedelta(minutes=5)
    assert_normalised(loaded.candles)
    assert loaded.source_rows == len(source)
    assert loaded.candles["volume"].sum() == pytest.approx(source["volume"].sum(), rel=1e-12)
    # The file opens at 04:55, so its first hour holds a single 5-minute candle.
    first = loaded.candles.iloc[0]
    assert first["timestamp"] == utc("2018-01-10T04:00:00")
    assert first["open"] == source["open"].iloc[0]
    assert first["close"] == source["close"].iloc[0]
    second_hour = source.iloc[1:13]
    second = loaded.candles.iloc[1]
    assert second["open"] == second_hour["open"].iloc[0]
    assert second["high"] == second_hour["high"].max()
    assert second["low"] == second_hour["low"].min()
    assert second["close"] == second_hour["close"].iloc[-1]


def test_real_sparse_1m_file_matches_its_5m_sibling(real_data: Path) -> None:
    minutes = read_candle_file(real_data / "edge-cases" / "XRP-ETH_1m.csv", symbol="XRPETH")
    five_minutes = read_candle_file(real_data / "edge-cases" / "XRP-ETH_5m.csv", symbol="XRPETH")

    assert minutes.source_interval == pd.Timedelta(minutes=1)
    assert minutes.source_rows < len(minutes.candles) * 60  # minutes are missing
    assert_normalised(minutes.candles)
    pd.testing.assert_frame_equal(minutes.candles, five_minutes.candles, rtol=1e-9)


def test_real_coins_file(real_data: Path) -> None:
    coins = read_coins_file(real_data / "coins.csv")

    assert list(coins.columns) == ["symbol", "name", "sector"]
    assert len(coins) == 126
    assert coins["symbol"].is_unique
    assert coins.set_index("symbol").loc["BTC", "name"] == "Bitcoin"


# --- aggregation -------------------------------------------------------------------------


def test_five_minute_candles_aggregate_exactly(tmp_path: Path) -> None:
    rows = [
        # timestamp, open, high, low, close, volume, market_cap
        "2021-01-01T10:00:00Z,100,101,99,100.5,1.5,1000",
        "2021-01-01T10:05:00Z,100.5,103,100,102,2.25,1010",
        "2021-01-01T10:10:00Z,102,102.5,98.5,99,0,",
        "2021-01-01T10:15:00Z,99,100,97,99.5,4,1020",
        "2021-01-01T10:20:00Z,99.5,104.25,99.5,104,1,",
        "2021-01-01T10:25:00Z,104,104,103,103.5,0.5,",
        "2021-01-01T10:30:00Z,103.5,103.75,102,102.5,3,",
        "2021-01-01T10:35:00Z,102.5,103,101,101.5,2,",
        "2021-01-01T10:40:00Z,101.5,102,100.5,101,1,",
        "2021-01-01T10:45:00Z,101,101.5,100,100.25,0.25,",
        "2021-01-01T10:50:00Z,100.25,101,99.75,100.75,1.5,",
        "2021-01-01T10:55:00Z,100.75,101.25,100.5,101.125,2,",
        "2021-01-01T11:00:00Z,101.125,102,101,101.5,5,",
        "2021-01-01T11:05:00Z,101.5,101.75,100.875,101.25,0.5,",
    ]
    path = write_csv(tmp_path, "ETH-USDT_5m.csv", rows, header=f"{HEADER},market_cap")

    loaded = read_candle_file(path)

    assert loaded.source_interval == pd.Timedelta(minutes=5)
    assert loaded.source_rows == 14
    assert_normalised(loaded.candles)
    ten, eleven = loaded.candles.to_dict("records")
    assert ten == {
        "timestamp": utc("2021-01-01T10:00:00"),
        "open": 100.0,
        "high": 104.25,
        "low": 97.0,
        "close": 101.125,
        "volume": 19.0,
        "market_cap": 1020.0,  # the last one given, though later candles have none
    }
    assert eleven["timestamp"] == utc("2021-01-01T11:00:00")
    assert (eleven["open"], eleven["high"], eleven["low"], eleven["close"]) == (
        101.125,
        102.0,
        100.875,
        101.25,
    )
    assert eleven["volume"] == 5.5
    assert np.isnan(eleven["market_cap"])


def test_sparse_minutes_aggregate_over_the_minutes_present(tmp_path: Path) -> None:
    rows = [
        "2021-01-01T10:03:00Z,5,6,4.5,5.5,1",
        "2021-01-01T10:04:00Z,5.5,5.75,5.25,5.25,2",
        "2021-01-01T10:17:00Z,5.25,7,5,6,3",
        "2021-01-01T10:59:00Z,6,6.5,5.75,6.25,4",
        "2021-01-01T12:30:00Z,6.5,6.5,6.5,6.5,0",
        "2021-01-01T12:31:00Z,6.5,6.75,6.25,6.75,10",
    ]
    path = write_csv(tmp_path, "XRP-USDT_1m.csv", rows)

    loaded = read_candle_file(path)

    assert loaded.source_interval == pd.Timedelta(minutes=1)
    assert loaded.candles.drop(columns="market_cap").to_dict("records") == [
        {
            "timestamp": utc("2021-01-01T10:00"),
            "open": 5.0,
            "high": 7.0,
            "low": 4.5,
            "close": 6.25,
            "volume": 10.0,
        },
        {
            "timestamp": utc("2021-01-01T12:00"),
            "open": 6.5,
            "high": 6.75,
            "low": 6.25,
            "close": 6.75,
            "volume": 10.0,
        },
    ]


def test_hourly_file_with_gaps_stays_hourly_without_filling(tmp_path: Path) -> None:
    rows = hourly_rows(2) + hourly_rows(3, start="2021-01-01T05:00:00Z")
    path = write_csv(tmp_path, "BTC-USDT_1h.csv", rows)

    loaded = read_candle_file(path)

    assert loaded.source_interval == HOUR
    assert list(loaded.candles["timestamp"].dt.hour) == [0, 1, 5, 6, 7]


def test_unsorted_rows_are_sorted(tmp_path: Path) -> None:
    rows = hourly_rows(4)
    path = write_csv(tmp_path, "BTC-USDT_1h.csv", [rows[2], rows[0], rows[3], rows[1]])

    loaded = read_candle_file(path)

    assert list(loaded.candles["timestamp"].dt.hour) == [0, 1, 2, 3]


@pytest.mark.parametrize(("frequency", "shown"), [("4h", "4h"), ("1D", "1d"), ("2h", "2h")])
def test_coarser_intervals_are_rejected(tmp_path: Path, frequency: str, shown: str) -> None:
    stamps = pd.date_range("2021-01-01", periods=6, freq=frequency)
    rows = [f"{stamp:%Y-%m-%dT%H:%M:%SZ},10,12,9,11,100" for stamp in stamps]
    path = write_csv(tmp_path, "BTC-USDT_x.csv", rows)

    error = rejection(path)

    assert error.problems == []
    assert f"the candle interval is {shown}, coarser than 1h" in str(error)
    assert str(path) in str(error)


def test_interval_that_does_not_divide_an_hour_is_rejected(tmp_path: Path) -> None:
    stamps = pd.date_range("2021-01-01", periods=6, freq="7min")
    rows = [f"{stamp:%Y-%m-%dT%H:%M:%SZ},10,12,9,11,100" for stamp in stamps]

    error = rejection(write_csv(tmp_path, "BTC-USDT_7m.csv", rows))

    assert "7m, which does not divide 1h" in str(error)


def test_interval_is_the_most_common_step(tmp_path: Path) -> None:
    """A file that opens with a gap is still read as hourly."""
    rows = hourly_rows(1) + hourly_rows(5, start="2021-01-01T03:00:00Z")

    loaded = read_candle_file(write_csv(tmp_path, "BTC-USDT_1h.csv", rows))

    assert loaded.source_interval == HOUR


def test_a_single_row_is_not_enough_to_detect_the_interval(tmp_path: Path) -> None:
    error = rejection(write_csv(tmp_path, "BTC-USDT_1h.csv", hourly_rows(1)))

    assert "at least two distinct timestamps" in str(error)


# --- bad rows ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        ("yesterday,10,12,9,11,100", "timestamp 'yesterday' is not ISO 8601"),
        (",10,12,9,11,100", "timestamp is missing"),
        ("2021-01-01T03:00:00Z,0,12,9,11,100", "open 0.0 is not positive"),
        ("2021-01-01T03:00:00Z,10,12,9,-11,100", "close -11.0 is not positive"),
        ("2021-01-01T03:00:00Z,10,12,9,ten,100", "close 'ten' is not a finite number"),
        ("2021-01-01T03:00:00Z,10,10.5,9,11,100", "high 10.5 is below max(open, close) 11.0"),
        ("2021-01-01T03:00:00Z,13,12,9,11,100", "high 12.0 is below max(open, close) 13.0"),
        ("2021-01-01T03:00:00Z,10,12,10.5,11,100", "low 10.5 is above min(open, close) 10.0"),
        ("2021-01-01T03:00:00Z,10,12,9,8.5,100", "low 9.0 is above min(open, close) 8.5"),
        ("2021-01-01T03:00:00Z,10,12,9,11,-1", "volume -1.0 is negative"),
        (
            "2021-01-01T03:00:00Z,10,12,9,11,1e22",
            "volume 1e+22 is too large to store (the limit is 1e+22)",
        ),
        ("2021-01-01T03:00:00Z,10,12,9,11,", "volume is missing"),
        ("2021-01-01T03:00:00Z,10,12,9,11", "volume is missing"),
        (
            "2021-01-01T02:00:00Z,10,12,9,11,100",
            "duplicate timestamp 2021-01-01T02:00:00+00:00 (first on line 4)",
        ),
        (
            "2021-01-01T03:30:00Z,10,12,9,11,100",
            "timestamp 2021-01-01T03:30:00+00:00 is not on the 1h grid",
        ),
    ],
)
def test_each_kind_of_bad_row_is_reported_with_its_line(
    tmp_path: Path, bad_row: str, reason: str
) -> None:
    rows = hourly_rows(3)
    rows.insert(3, bad_row)  # line 5: header, then three good rows
    rows += hourly_rows(4, start="2021-01-01T04:00:00Z")
    path = write_csv(tmp_path, "BTC-USDT_1h.csv", rows)

    error = rejection(path)

    assert len(error.problems) == 1
    assert error.problems[0].line == 5
    assert reason in error.problems[0].reason
    assert f"line 5: {error.problems[0].reason}" in str(error)


def test_market_cap_may_be_empty_but_not_negative(tmp_path: Path) -> None:
    rows = [
        "2021-01-01T00:00:00Z,10,12,9,11,100,",
        "2021-01-01T01:00:00Z,10,12,9,11,100,-5",
        "2021-01-01T02:00:00Z,10,12,9,11,100,7",
    ]
    path = write_csv(tmp_path, "BTC-USDT_1h.csv", rows, header=f"{HEADER},market_cap")

    error = rejection(path)

    assert error.problems == [BadRow(line=3, reason="market_cap -5.0 is negative")]


def test_prices_beyond_price_data_numeric_range_are_refused(tmp_path: Path) -> None:
    rows = [
        "2021-01-01T00:00:00Z,10,12,9,11,100,5",
        "2021-01-01T01:00:00Z,999999999999,999999999999.5,9,11,100,5",
        "2021-01-01T02:00:00Z,1000000000000,1000000000000,1000000000000,1000000000000,100,5",
        "2021-01-01T03:00:00Z,10,12,9,11,100,1e28",
    ]
    path = write_csv(tmp_path, "BTC-USDT_1h.csv", rows, header=f"{HEADER},market_cap")

    error = rejection(path)

    limit = "is too large to store (the limit is 1e+12)"
    assert error.problems == [
        BadRow(
            line=4,
            reason="; ".join(f"{name} 1000000000000.0 {limit}" for name in PRICE_NAMES),
        ),
        BadRow(line=5, reason="market_cap 1e+28 is too large to store (the limit is 1e+28)"),
    ]


def test_every_bad_row_is_reported_with_all_its_reasons(tmp_path: Path) -> None:
    rows = [
        *hourly_rows(2),
        "2021-01-01T02:00:00Z,-1,12,9,11,-3",
        "2021-01-01T03:00:00Z,10,12,9,11,100",
        "2021-01-01T04:00:00Z,10,10,10,10,bad",
        "2021-01-01T03:00:00Z,10,12,9,11,100",
        *hourly_rows(3, start="2021-01-01T05:00:00Z"),
    ]
    path = write_csv(tmp_path, "BTC-USDT_1h.csv", rows)

    error = rejection(path)

    assert error.problems == [
        BadRow(
            line=4,
            reason="open -1.0 is not positive; low 9.0 is above min(open, close) -1.0; "
            "volume -3.0 is negative",
        ),
        BadRow(line=6, reason="volume 'bad' is not a finite number"),
        BadRow(line=7, reason="duplicate timestamp 2021-01-01T03:00:00+00:00 (first on line 5)"),
    ]
    assert error.message == "3 bad row(s)"
    assert str(error).splitlines() == [
        f"{path}: 3 bad row(s)",
        "  line 4: open -1.0 is not positive; low 9.0 is above min(open, close) -1.0; "
        "volume -3.0 is negative",
        "  line 6: volume 'bad' is not a finite number",
        "  line 7: duplicate timestamp 2021-01-01T03:00:00+00:00 (first on line 5)",
    ]


def test_errors_survive_pickling(tmp_path: Path) -> None:
    error = rejection(write_csv(tmp_path, "BTC-USDT_1h.csv", ["nonsense,1,1,1,1,1"]))

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.path, copy.problems, str(copy)) == (error.path, error.problems, str(error))


def test_long_reports_are_capped_in_the_message(tmp_path: Path) -> None:
    rows = [row.replace(",100", ",-1") for row in hourly_rows(30)]

    error = rejection(write_csv(tmp_path, "BTC-USDT_1h.csv", rows))

    assert len(error.problems) == 30
    text = str(error).splitlines()
    assert len(text) == 1 + MAX_LISTED_PROBLEMS + 1
    assert text[-1] == f"  and {30 - MAX_LISTED_PROBLEMS} more"


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    rows = [
        *hourly_rows(3),
        "",
        "2021-01-01T03:00:00Z,10,12,9,11,-1",
        *hourly_rows(2, "2021-01-01T04:00Z"),
    ]

    error = rejection(write_csv(tmp_path, "BTC-USDT_1h.csv", rows))

    assert [problem.line for problem in error.problems] == [6]


def test_nearly_equal_high_is_within_tolerance_and_kept(tmp_path: Path) -> None:
    rows = [
        "2021-01-01T00:00:00Z,5.330000000000001e-05,5.33e-05,5.2e-05,5.3e-05,10",
        "2021-01-01T01:00:00Z,5.3e-05,5.4e-05,5.2e-05,5.2e-05,10",
        "2021-01-01T02:00:00Z,5.2e-05,5.3e-05,5.199999999999999e-05,5.2000000000000004e-05,1",
    ]

    loaded = read_candle_file(write_csv(tmp_path, "ADA-USDT_1h.csv", rows))

    assert loaded.candles["open"].iloc[0] == 5.330000000000001e-05
    assert loaded.candles["high"].iloc[0] == 5.33e-05
    assert loaded.candles["close"].iloc[2] == 5.2000000000000004e-05


def test_a_real_shortfall_is_beyond_tolerance(tmp_path: Path) -> None:
    rows = [*hourly_rows(2), "2021-01-01T02:00:00Z,5.34e-05,5.33e-05,5.2e-05,5.3e-05,1"]

    error = rejection(write_csv(tmp_path, "ADA-USDT_1h.csv", rows))

    assert error.problems[0].line == 4
    assert error.problems[0].reason.startswith("high 5.33e-05 is below")


# --- timestamps --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stamps",
    [
        ["2021-03-01T00:00:00Z", "2021-03-01T01:00:00Z", "2021-03-01T02:00:00Z"],
        ["2021-03-01T00:00:00", "2021-03-01 01:00:00", "2021-03-01T02:00:00.000"],
        ["2021-03-01T02:00:00+02:00", "2021-02-28T20:00:00-05:00", "2021-03-01T07:30:00+05:30"],
        ["1614556800", "1614560400", "1614564000"],
        ["1614556800000", "1614560400000", "1614564000000"],
        ["1614556800.0", "2021-03-01T01:00:00Z", "1614564000000"],
    ],
    ids=["iso-z", "iso-naive", "iso-offsets", "epoch-s", "epoch-ms", "mixed"],
)
def test_timestamp_formats_give_the_same_utc_times(tmp_path: Path, stamps: list[str]) -> None:
    rows = [f"{stamp},10,12,9,11,100" for stamp in stamps]

    loaded = read_candle_file(write_csv(tmp_path, "BTC-USDT_1h.csv", rows))

    assert list(loaded.candles["timestamp"]) == [
        utc("2021-03-01T00:00"),
        utc("2021-03-01T01:00"),
        utc("2021-03-01T02:00"),
    ]
    assert str(loaded.candles["timestamp"].dtype) == "datetime64[ns, UTC]"


# --- files, columns and symbols ----------------------------------------------------------


def test_gzipped_csv_is_read(tmp_path: Path) -> None:
    path = tmp_path / "BTC-USD_1h.csv.gz"
    with gzip.open(path, "wt") as stream:
        stream.write("\n".join([HEADER, *hourly_rows(5)]) + "\n")

    loaded = read_candle_file(path)

    assert loaded.symbol == "BTC"
    assert len(loaded.candles) == 5


def test_column_names_are_case_insensitive_and_extras_ignored(tmp_path: Path) -> None:
    header = "Exchange,TIMESTAMP, Open ,High,low,Close,Volume,Market_Cap,trades"
    rows = [
        "binance,2021-01-01T00:00:00Z,10,12,9,11,100,5000,7",
        "binance,2021-01-01T01:00:00Z,11,13,10,12,50,,3",
    ]

    loaded = read_candle_file(write_csv(tmp_path, "BTC-USDT_1h.csv", rows, header=header))

    assert list(loaded.candles.columns) == list(CANDLE_COLUMNS)
    assert loaded.candles["market_cap"].iloc[0] == 5000
    assert np.isnan(loaded.candles["market_cap"].iloc[1])
    assert list(loaded.candles["close"]) == [11, 12]


def test_trailing_commas_do_not_shift_columns(tmp_path: Path) -> None:
    rows = [f"{row}," for row in hourly_rows(3)]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = read_candle_file(write_csv(tmp_path, "BTC-USDT_1h.csv", rows))

    assert list(loaded.candles["open"]) == [10, 10, 10]
    assert loaded.candles["timestamp"].iloc[0] == utc("2021-01-01T00:00")


def test_missing_column_is_a_file_level_error(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "BTC-USDT_1h.csv",
        ["2021-01-01T00:00:00Z,10,12,9,11"],
        header="timestamp,open,high,low,close",
    )

    error = rejection(path)

    assert error.problems == []
    assert "missing required column(s) volume" in str(error)
    assert str(path) in str(error)


def test_ambiguous_columns_are_a_file_level_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "BTC-USDT_1h.csv", [], header=f"{HEADER},Close")

    assert "are the same column" in str(rejection(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        (HEADER + "\n", "no data rows"),
        (HEADER + "\n\n\n", "no data rows"),
    ],
    ids=["no-bytes", "header-only", "blank-lines"],
)
def test_empty_files_are_rejected(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "BTC-USDT_1h.csv"
    path.write_text(content)

    error = rejection(path)

    assert message in str(error)
    assert error.problems == []


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("BTC-USDT_1h.csv", "BTC"),
        ("BTC-USD_1h.csv.gz", "BTC"),
        ("eth_usdt.csv", "ETH"),
        ("1INCH-USDT_1h.CSV", "1INCH"),
        ("ada.csv", "ADA"),
    ],
)
def test_symbol_from_filename(name: str, symbol: str) -> None:
    assert symbol_from_filename(Path("/data") / name) == symbol


@pytest.mark.parametrize("name", ["-USDT_1h.csv", "_1h.csv", "BTC.USDT_1h.csv", ".csv"])
def test_symbol_from_unusable_filename_is_an_error(name: str) -> None:
    with pytest.raises(CandleFileError, match="cannot derive a symbol"):
        symbol_from_filename(Path(name))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ETH-BTC_5m.csv", "quoted in BTC"),
        ("XRP-ETH_1m.csv.gz", "quoted in ETH"),
        ("XRP-USDT-PERP_1h.csv", "marks PERP"),
    ],
)
def test_symbol_from_non_usd_or_derivative_filename_is_refused(name: str, message: str) -> None:
    with pytest.raises(CandleFileError, match=message):
        symbol_from_filename(Path(name))


def test_explicit_symbol_wins_over_the_file_name(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "prices.csv", hourly_rows(2))

    loaded = read_candle_file(path, symbol=" sol ")

    assert isinstance(loaded, CandleFile)
    assert loaded.symbol == "SOL"


def test_discover_candle_files(tmp_path: Path) -> None:
    for name in ["b-USDT_1h.csv", "A-USDT_1h.csv.gz", "coins.csv", "notes.txt", "c.csv.bak"]:
        (tmp_path / name).write_text("")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "D-USDT_1h.csv").write_text("")

    found = discover_candle_files(tmp_path)

    assert [path.name for path in found] == ["A-USDT_1h.csv.gz", "b-USDT_1h.csv"]
    assert discover_candle_files(found[1]) == [found[1]]


def test_discover_without_candle_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "coins.csv").write_text("")

    with pytest.raises(FileNotFoundError, match=r"no \*\.csv or \*\.csv\.gz candle files"):
        discover_candle_files(tmp_path)
    with pytest.raises(FileNotFoundError):
        discover_candle_files(tmp_path / "missing")


# --- coins -------------------------------------------------------------------------------


def test_read_coins_file(tmp_path: Path) -> None:
    path = tmp_path / "coins.csv"
    path.write_text("Symbol,Name,Sector,rank\nbtc,Bitcoin,Bitcoin,1\n eth ,Ethereum,,2\n")

    coins = read_coins_file(path)

    assert coins.to_dict("records") == [
        {"symbol": "BTC", "name": "Bitcoin", "sector": "Bitcoin"},
        {"symbol": "ETH", "name": "Ethereum", "sector": None},
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("symbol,name,sector\nBTC,Bitcoin,\nbtc,Bitcoin again,\n", "duplicate symbol(s) BTC"),
        ("symbol,name\nBTC,Bitcoin\n", "lacks column(s) sector"),
        ("symbol,name,sector\n,Bitcoin,\n", "no symbol on line(s) 2"),
        ("symbol,name,sector\nBTC,,\n", "no name on line(s) 2"),
        ("symbol,name,sector\nBTC USD,Bitcoin,\n", "letters and digits"),
        ("", "is empty"),
    ],
)
def test_bad_coins_files_are_rejected(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "coins.csv"
    path.write_text(content)

    with pytest.raises(ValueError, match="coins file") as caught:
        read_coins_file(path)

    assert message in str(caught.value)
