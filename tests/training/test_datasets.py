"""Panels loaded from price_data: the analysis window reads only its own hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import Engine

from store.datasets import latest_hour, load_panel, load_window
from training.ingest import write_candles
from training.synthetic import generate_market

START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 40
WINDOW_HOURS = 300


def _store_market(engine: Engine) -> None:
    market = generate_market(4, DAYS, seed=3, start=START)
    frames = {
        symbol: frame.drop(columns="symbol").reset_index(drop=True)
        for symbol, frame in market.candles.groupby("symbol")
    }
    write_candles(engine, frames, market.coins)


def test_load_window_is_the_trimmed_history_without_reading_it(engine: Engine) -> None:
    _store_market(engine)
    last = START + timedelta(hours=24 * DAYS - 1)
    assert latest_hour(engine) == last
    for until in (None, START + timedelta(days=30, minutes=30)):
        end = pd.Timestamp(latest_hour(engine, until))
        assert end == pd.Timestamp(until or last).floor("h")
        whole = load_panel(engine, until=until).between(end - pd.Timedelta(hours=WINDOW_HOURS), end)
        window = load_window(engine, WINDOW_HOURS, until=until)
        assert len(window.hours) == WINDOW_HOURS + 1
        pd.testing.assert_frame_equal(window.close, whole.close)
        pd.testing.assert_frame_equal(window.volume, whole.volume)
        pd.testing.assert_series_equal(window.sectors, whole.sectors)


def test_latest_hour_of_an_empty_store_is_none(engine: Engine) -> None:
    assert latest_hour(engine) is None
