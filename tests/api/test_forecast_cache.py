"""POST /predictions shares the market at an hour between requests, and notices new data."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from accounts import Account
from serving.api.app import create_app
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
    # Another horizon of the same hour: its own forecasts, from the same market.
    six = client.post(
        PREDICTIONS, headers=alice.headers, json={"crypto": "BTC", "horizon_hours": 6}
    )
    assert six.status_code == 201, six.text
    assert six.json()["prediction_horizon"] == 6
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


def test_coins_are_resolved_without_a_query_each_yet_a_renamed_coin_is_seen_at_once(
    app: FastAPI, client: TestClient, alice: Account, api_engine: Engine
) -> None:
    def status(reference: str | int) -> int:
        response = client.post(PREDICTIONS, headers=alice.headers, json={"crypto": reference})
        return response.status_code

    with api_engine.connect() as connection:
        btc_id = connection.scalar(text("SELECT id FROM cryptocurrencies WHERE symbol = 'BTC'"))
    assert [status("BTC"), status(" btc "), status(btc_id), status(str(btc_id))] == [201] * 4
    assert status("BTCX") == 404

    with api_engine.begin() as connection:
        connection.execute(
            text("UPDATE cryptocurrencies SET symbol = 'BTCX' WHERE id = :id"), {"id": btc_id}
        )
    assert status("BTC") == 404
    # The renamed coin keeps its candles and its place in the market.
    assert [status("btcx"), status(btc_id)] == [201, 201]


def _in_another_process(url: str, body: str) -> None:
    """Run `body` in a fresh Python process with `engine` bound to the database at `url`."""
    script = f"from db.engine import make_engine\nengine = make_engine({url!r})\n{body}\n"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_a_promotion_and_new_or_corrected_candles_from_another_process_reach_every_worker(
    app: FastAPI,
    client: TestClient,
    alice: Account,
    api_engine: Engine,
    trained_store: TrainedStore,
) -> None:
    """Two app instances stand for two worker processes; the writer is a third process."""
    settings = app.state.settings
    url = settings.resolved_database_url
    other = create_app(settings)
    workers = [(app, client), (other, TestClient(other))]

    def post_everywhere() -> list[dict[str, object]]:
        bodies = []
        for _, worker in workers:
            response = worker.post(PREDICTIONS, headers=alice.headers, json={"crypto": "BTC"})
            assert response.status_code == 201, response.text
            bodies.append(response.json())
        return bodies

    try:
        first = post_everywhere()
        assert [instance.state.forecasts.loads for instance, _ in workers] == [1, 1]
        original = first[0]["model_version"]

        # A second registered version of the asset family (the same artifact), promoted
        # elsewhere: both workers serve it on their next request.
        with api_engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO ai_models (name, version, model_type, status, configuration, "
                    "performance_metrics) SELECT name, 'copy-1', model_type, 'inactive', "
                    "configuration, performance_metrics FROM ai_models "
                    "WHERE name = 'asset_price' AND status = 'active'"
                )
            )
        _in_another_process(
            url,
            "from sqlalchemy.orm import Session\nfrom store.registry import promote\n"
            "with Session(engine) as session:\n"
            "    promote(session, 'asset_price', 'copy-1')\n    session.commit()",
        )
        promoted = post_everywhere()
        assert [body["model_version"] for body in promoted] == ["copy-1", "copy-1"]
        assert [instance.state.forecasts.loads for instance, _ in workers] == [2, 2]

        # ... and a rollback as well.
        _in_another_process(
            url,
            "from sqlalchemy.orm import Session\nfrom store.registry import rollback\n"
            "with Session(engine) as session:\n"
            "    rollback(session, 'asset_price')\n    session.commit()",
        )
        assert [body["model_version"] for body in post_everywhere()] == [original, original]

        # A corrected candle of the latest hour.
        last = trained_store.last_candle
        _in_another_process(
            url,
            "from sqlalchemy import text\nwith engine.begin() as connection:\n"
            '    connection.execute(text("UPDATE price_data SET close_price = close_price * 1.01 '
            "WHERE timestamp = (SELECT max(timestamp) FROM price_data) AND crypto_id = "
            "(SELECT id FROM cryptocurrencies WHERE symbol = 'BTC')\"))",
        )
        corrected = post_everywhere()
        for body in corrected:
            expected = float(str(first[0]["input_price"])) * 1.01
            assert float(str(body["input_price"])) == pytest.approx(expected)

        # A new candle hour for every coin, through the ingest's own writer.
        _in_another_process(
            url,
            "import pandas as pd\nfrom store.datasets import load_candles\n"
            "from training.ingest import write_candles\n"
            "candles = load_candles(engine)\n"
            "latest = candles[candles.timestamp == candles.timestamp.max()].copy()\n"
            "latest['timestamp'] += pd.Timedelta(hours=1)\n"
            "write_candles(engine, {s: f.drop(columns='symbol').reset_index(drop=True) "
            "for s, f in latest.groupby('symbol')})",
        )
        for body in post_everywhere():
            target = datetime.fromisoformat(str(body["target_datetime"]))
            assert target == last + timedelta(hours=1 + 24)
    finally:
        workers[1][1].close()
        other.state.engine.dispose()
