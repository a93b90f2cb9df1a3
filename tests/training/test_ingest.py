"""Candle files into price_data through the real ingest path, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, select, text

from db.schema import Cryptocurrency, PriceData
from training.candles import read_candle_file
from training.ingest import IngestRejected, ingest, write_candles
from training.price_store import UpsertCounts, ensure_cryptocurrencies

HEADER = "timestamp,open,high,low,close,volume"


def write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def hourly(start_hour: int, count: int, base: float = 100.0) -> list[str]:
    rows = []
    for hour in range(start_hour, start_hour + count):
        price = base + hour
        rows.append(
            f"2024-01-01T{hour:02d}:00:00Z,{price},{price + 2},{price - 1},{price + 1},{10 + hour}"
        )
    return rows


def stored(engine: Engine, symbol: str) -> pd.DataFrame:
    query = (
        select(
            PriceData.timestamp,
            PriceData.open_price,
            PriceData.high_price,
            PriceData.low_price,
            PriceData.close_price,
            PriceData.volume,
        )
        .join(Cryptocurrency)
        .where(Cryptocurrency.symbol == symbol)
        .order_by(PriceData.timestamp)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])


def candle_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM price_data")).scalar_one()


def test_ingest_loads_candles_and_creates_the_coin(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "SOL-USDT_1h.csv", hourly(0, 5))

    report = ingest(engine, path)

    assert report.totals.inserted == 5
    frame = stored(engine, "SOL")
    assert list(frame["timestamp"]) == [datetime(2024, 1, 1, hour, tzinfo=UTC) for hour in range(5)]
    assert [float(value) for value in frame["close"]] == [101.0, 102.0, 103.0, 104.0, 105.0]
    with engine.connect() as connection:
        row = connection.execute(
            select(Cryptocurrency.current_price, Cryptocurrency.last_data_update).where(
                Cryptocurrency.symbol == "SOL"
            )
        ).one()
    assert float(row.current_price) == 105.0
    assert row.last_data_update is not None


def test_reingesting_the_same_file_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "SOL-USDT_1h.csv", hourly(0, 5))
    ingest(engine, path)
    before = stored(engine, "SOL")

    report = ingest(engine, path)

    assert (report.totals.inserted, report.totals.updated, report.totals.unchanged) == (0, 0, 5)
    pd.testing.assert_frame_equal(stored(engine, "SOL"), before)


def test_ingest_upserts_overlapping_candles(engine: Engine, tmp_path: Path) -> None:
    ingest(engine, write(tmp_path / "SOL-USDT_1h.csv", hourly(0, 5)))
    revised = hourly(3, 4, base=200.0)

    report = ingest(engine, write(tmp_path / "SOL-USDT_1h.csv", revised))

    assert (report.totals.inserted, report.totals.updated) == (2, 2)
    frame = stored(engine, "SOL")
    assert len(frame) == 7
    assert float(frame["close"].iloc[3]) == 204.0


def test_one_bad_file_rejects_the_whole_directory(engine: Engine, tmp_path: Path) -> None:
    write(tmp_path / "AAA-USDT_1h.csv", hourly(0, 3))
    bad_rows = hourly(0, 4)
    bad_rows[1] = "2024-01-01T01:00:00Z,100,99,98,100.5,1"  # high below open and close
    bad_rows[3] = "2024-01-01T03:00:00Z,100,102,99,101,-5"  # negative volume
    write(tmp_path / "BBB-USDT_1h.csv", bad_rows)

    with pytest.raises(IngestRejected) as rejected:
        ingest(engine, tmp_path)

    [error] = rejected.value.errors
    assert [problem.line for problem in error.problems] == [3, 5]
    assert "BBB-USDT_1h.csv" in str(rejected.value)
    assert candle_count(engine) == 0


def test_five_minute_candles_are_stored_as_exact_hourly_bars(
    engine: Engine, tmp_path: Path
) -> None:
    rows = []
    for minute in range(0, 120, 5):
        price = 10.0 + minute / 5
        moment = f"2024-01-01T{minute // 60:02d}:{minute % 60:02d}:00Z"
        rows.append(f"{moment},{price},{price + 0.5},{price - 0.25},{price + 0.125},1.5")
    path = write(tmp_path / "DOT-USDT_5m.csv", rows)

    ingest(engine, path)

    frame = stored(engine, "DOT")
    assert len(frame) == 2
    first = frame.iloc[0]
    assert [float(first[c]) for c in ("open", "high", "low", "close", "volume")] == [
        10.0,
        21.5,
        9.75,
        21.125,
        18.0,
    ]


def test_coins_file_names_coins_and_maps_sectors(engine: Engine, tmp_path: Path) -> None:
    write(tmp_path / "AAVE-USDT_1h.csv", hourly(0, 2))
    write(tmp_path / "NEW-USDT_1h.csv", hourly(0, 2))
    coins = tmp_path / "coins.csv"
    coins.write_text("symbol,name,sector\nAAVE,Aave,DeFi\nBTC,Bitcoin,Bitcoin\n")

    ingest(engine, tmp_path, coins_file=coins)

    with engine.connect() as connection:
        mapped = connection.execute(
            text(
                "SELECT c.symbol, c.name, s.name FROM cryptocurrencies c"
                " LEFT JOIN crypto_sector_mapping m ON m.crypto_id = c.id"
                " LEFT JOIN crypto_sectors s ON s.id = m.sector_id ORDER BY c.symbol"
            )
        ).all()
    # NEW is not in the coins file: loaded, with no sector. BTC has no candles: not created.
    assert [tuple(row) for row in mapped] == [("AAVE", "Aave", "DeFi"), ("NEW", "NEW", None)]


def test_unknown_sector_in_coins_file_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    write(tmp_path / "AAVE-USDT_1h.csv", hourly(0, 2))
    coins = tmp_path / "coins.csv"
    coins.write_text("symbol,name,sector\nAAVE,Aave,Lending\n")

    with pytest.raises(ValueError, match="unknown sectors in coins file: Lending"):
        ingest(engine, tmp_path, coins_file=coins)

    assert candle_count(engine) == 0


def test_non_usd_quoted_file_is_refused_without_a_symbol(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "ETH-BTC_1h.csv", hourly(0, 2))

    with pytest.raises(IngestRejected, match="quoted in BTC"):
        ingest(engine, path)
    ingest(engine, path, symbol="ETHBTC")

    assert len(stored(engine, "ETHBTC")) == 2


def test_real_candles_ingest_cleanly_with_their_coins(
    engine: Engine, real_data: Path, tmp_path: Path
) -> None:
    sample = tmp_path / "sample"
    sample.mkdir()
    for name in ("BTC-USDT_1h.csv", "ETH-USDT_1h.csv", "LUNA-USDT_1h.csv"):
        (sample / name).symlink_to(real_data / "binance-2021-1h" / name)

    report = ingest(engine, sample, coins_file=real_data / "coins.csv")
    again = ingest(engine, sample, coins_file=real_data / "coins.csv")

    provenance = pd.read_csv(real_data / "PROVENANCE.csv").set_index("file")
    for file in report.files:
        expected = provenance.loc[f"binance-2021-1h/{file.path.name}", "rows"]
        assert file.counts.inserted == expected
    assert again.totals.inserted == again.totals.updated == 0
    assert candle_count(engine) == report.totals.inserted


def test_two_files_for_one_coin_are_refused_and_nothing_is_written(
    engine: Engine, tmp_path: Path
) -> None:
    write(tmp_path / "BTC-USD_1h.csv", hourly(0, 3))
    write(tmp_path / "BTC-USDT_1h.csv", hourly(0, 3))

    with pytest.raises(ValueError, match="several files give the same coin BTC"):
        ingest(engine, tmp_path)

    assert candle_count(engine) == 0


def test_later_candles_append_and_move_the_quote_to_the_newest(
    engine: Engine, tmp_path: Path
) -> None:
    ingest(engine, write(tmp_path / "SOL-USDT_1h.csv", hourly(0, 5)))

    report = ingest(engine, write(tmp_path / "SOL-USDT_1h.csv", hourly(5, 3)))

    assert (report.totals.inserted, report.totals.updated) == (3, 0)
    assert len(stored(engine, "SOL")) == 8
    assert current_prices(engine) == {"SOL": 108.0}


def test_older_history_keeps_each_coins_quote_at_its_newest_candle(
    engine: Engine, tmp_path: Path
) -> None:
    ingest(engine, write(tmp_path / "SOL-USDT_1h.csv", hourly(10, 2)))
    older = tmp_path / "older"
    older.mkdir()
    write(older / "SOL-USDT_1h.csv", hourly(0, 5))
    write(older / "ADA-USDT_1h.csv", hourly(0, 4, base=2.0))

    report = ingest(engine, older)

    assert report.totals.inserted == 9
    assert current_prices(engine) == {"SOL": 112.0, "ADA": 6.0}


def current_prices(engine: Engine) -> dict[str, float]:
    with engine.connect() as connection:
        rows = connection.execute(select(Cryptocurrency.symbol, Cryptocurrency.current_price))
        return {symbol: float(price) for symbol, price in rows if price is not None}


@pytest.mark.parametrize("coin_exists", [True, False], ids=["known coin", "new coin"])
def test_concurrent_ingests_of_one_coin_store_each_candle_once(
    pg_engine: Engine, tmp_path: Path, coin_exists: bool
) -> None:
    """The second ingest waits for the first to commit, then finds every candle stored."""
    path = write(tmp_path / "SOL-USDT_1h.csv", hourly(0, 5))
    candles = read_candle_file(path).candles
    if coin_exists:
        with pg_engine.begin() as connection:
            ensure_cryptocurrencies(connection, {"SOL": "Solana"})
    first_holds, release_first = threading.Event(), threading.Event()

    def first_then_hold() -> Iterator[tuple[str, pd.DataFrame]]:
        yield "SOL", candles
        first_holds.set()
        release_first.wait(timeout=30)  # the transaction stays open until released

    with ThreadPoolExecutor(max_workers=2) as workers:
        first = workers.submit(write_candles, pg_engine, first_then_hold())
        assert first_holds.wait(timeout=30)
        second = workers.submit(ingest, pg_engine, path)
        blocked = not wait([second], timeout=1).done
        release_first.set()
        first_counts, second_report = first.result(timeout=30), second.result(timeout=30)

    assert blocked
    assert first_counts["SOL"] == UpsertCounts(inserted=5)
    assert second_report.totals == UpsertCounts(unchanged=5)
    assert candle_count(pg_engine) == 5
