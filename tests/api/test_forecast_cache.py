"""POST /predictions shares the market at an hour between requests, and notices new data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from accounts import Account
from small_training import TrainedStore

PREDICTIONS = "/api/v1/predictions"


@pytest.fixture
def app(trained_app: FastAPI) -> Iterator[FastAPI]:
    yield trained_app


def test_forecasts_of_an_hour_load_the_market_once_and_new_candles_reload_it(
    app: FastAPI,
    client: TestClient,
    alice: Account,
    api_engine: Engine,
    trained_store: TrainedStore,
) -> None:
    cache = app.state.forecasts

    def post(symbol: str) -> dict[str, object]:
        response = client.post(PREDICTIONS, headers=alice.headers, json={"crypto": symbol})
        assert response.status_code == 201, response.text
        body: dict[str, object] = response.json()
        return body

    first = post("BTC")
    again = post("BTC")
    post("ETH")
    assert cache.loads == 1
    assert again["predicted_price"] == first["predicted_price"]

    # A corrected candle of the same hour changes what the panel holds: it is reloaded.
    last = trained_store.last_candle
    with api_engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE price_data SET close_price = close_price * 1.01 WHERE timestamp = :last "
                "AND crypto_id = (SELECT id FROM cryptocurrencies WHERE symbol = 'BTC')"
            ),
            {"last": last},
        )
    corrected = post("BTC")
    assert cache.loads == 2
    assert corrected["input_price"] == pytest.approx(float(str(first["input_price"])) * 1.01)

    # A new candle hour for every coin: forecasts start from it.
    with api_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO price_data (crypto_id, timestamp, open_price, high_price, "
                "low_price, close_price, volume) SELECT crypto_id, timestamp + interval '1 hour', "
                "open_price, high_price, low_price, close_price, volume FROM price_data "
                "WHERE timestamp = :last"
            ),
            {"last": last},
        )
    later = post("BTC")
    assert cache.loads == 3
    target = datetime.fromisoformat(str(later["target_datetime"]))
    assert target == last + timedelta(hours=1 + 24)
