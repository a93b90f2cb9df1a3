"""POST /predictions and friends, on a clone of a database with four trained families."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session

from accounts import Account
from db.schema import AiModel, Prediction, UserActivity
from small_training import TrainedStore
from training.evaluate import evaluate

PREDICTIONS = "/api/v1/predictions"


@pytest.fixture
def app(trained_app: FastAPI) -> Iterator[FastAPI]:
    """Every fixture of this module runs against the trained database."""
    yield trained_app


def _count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Prediction)) or 0)


def _close(engine: Engine, symbol: str, hours_back: int = 0) -> float:
    with engine.connect() as connection:
        return float(
            connection.execute(
                text(
                    "SELECT p.close_price FROM price_data p JOIN cryptocurrencies c "
                    "ON c.id = p.crypto_id WHERE c.symbol = :symbol "
                    "ORDER BY p.timestamp DESC OFFSET :back LIMIT 1"
                ),
                {"symbol": symbol, "back": hours_back},
            ).scalar_one()
        )


def test_post_prediction_persists_a_complete_row(
    client: TestClient, alice: Account, api_engine: Engine, trained_store: TrainedStore
) -> None:
    response = client.post(PREDICTIONS, headers=alice.headers, json={"crypto": "btc"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["symbol"] == "BTC"
    assert body["model_name"] == "asset_price"
    assert body["user_id"] == alice.id
    assert body["input_price"] == pytest.approx(_close(api_engine, "BTC"))
    last = trained_store.last_candle
    assert datetime.fromisoformat(body["target_datetime"]) == last + timedelta(hours=24)
    assert body["prediction_horizon"] == 24
    assert 0 <= body["confidence_score"] <= 1
    assert body["predicted_price"] > 0
    # JSONB keeps its own key order, so compare the names, not their order.
    assert sorted(body["features_used"]) == sorted(body["input_features"])
    # The features are the training code's: where BTC's 24-hour log return from the candles
    # ranks among the coins of the hour, scaled to [-0.5, 0.5].
    with Session(api_engine) as session:
        symbols = session.scalars(text("SELECT symbol FROM cryptocurrencies")).all()
    moves = {s: math.log(_close(api_engine, s) / _close(api_engine, s, 24)) for s in symbols}
    below = sum(move < moves["BTC"] for move in moves.values())
    expected = below / (len(moves) - 1) - 0.5
    assert body["input_features"]["xs_log_return_24h"] == pytest.approx(expected)
    assert "rank_score" in body["predicted_value"]
    assert body["context_data"]["regime"]["regime"] in {"bull", "bear", "sideways", "volatile"}
    assert set(body["context_data"]["model_versions"]) == {"macro", "sector"}
    assert body["market_conditions"] == body["context_data"]["regime"]["regime"]
    assert body["volatility_level"] in {"low", "medium", "high"}
    assert body["training_data_end"] is not None
    assert body["model_training_time"] > 0
    assert body["prediction_time"] >= 0
    assert body["model_parameters"]["n_estimators"] == 40
    assert body["is_realized"] is False
    # The answer is the stored row (NUMERIC rounding and server defaults included), as reading
    # it back gives it.
    assert client.get(f"{PREDICTIONS}/{body['id']}", headers=alice.headers).json() == body

    with Session(api_engine) as session:
        row = session.get(Prediction, body["id"])
        assert row is not None and row.user_id == alice.id
        activity = session.scalars(
            select(UserActivity).where(UserActivity.activity_type == "ai_interaction")
        ).one()
    assert activity.entity_id == body["id"]


def test_a_forecast_with_its_interval_for_every_trained_horizon_and_422_between_them(
    client: TestClient, alice: Account, api_engine: Engine, trained_store: TrainedStore
) -> None:
    """The store trains the asset family at 6 and 24 hours (`tests/api/conftest.py`)."""
    for horizon, name in ((6, "asset_price_6h"), (24, "asset_price")):
        made = client.post(
            PREDICTIONS, headers=alice.headers, json={"crypto": "ETH", "horizon_hours": horizon}
        )
        assert made.status_code == 201, made.text
        body = made.json()
        assert (body["prediction_horizon"], body["model_name"]) == (horizon, name)
        target = trained_store.last_candle + timedelta(hours=horizon)
        assert datetime.fromisoformat(body["target_datetime"]) == target
        interval = body["interval"]
        assert interval["lower"] <= body["predicted_price"] <= interval["upper"]
        assert interval["lower"] < interval["upper"]
        assert interval["level"] == 0.8
        assert {"lower", "upper", "level"} <= set(body["predicted_value"])
        assert body["within_interval"] is None  # not realised yet
    batch = client.post(
        f"{PREDICTIONS}/batch",
        headers=alice.headers,
        json={"cryptos": ["BTC", "ETH"], "horizon_hours": 6},
    )
    assert batch.status_code == 201, batch.text
    assert {item["prediction_horizon"] for item in batch.json()} == {6}
    before = _count(api_engine)
    for body in ({"crypto": "ETH", "horizon_hours": 12}, {"cryptos": ["ETH"], "horizon_hours": 12}):
        path = PREDICTIONS if "crypto" in body else f"{PREDICTIONS}/batch"
        between = client.post(path, headers=alice.headers, json=body)
        assert between.status_code == 422, between.text
        assert between.json()["trained_horizons"] == [6, 24]
    assert _count(api_engine) == before


def test_batch_is_written_whole_or_not_at_all(
    client: TestClient, alice: Account, api_engine: Engine
) -> None:
    made = client.post(
        f"{PREDICTIONS}/batch", headers=alice.headers, json={"cryptos": ["BTC", "ETH"]}
    )
    assert made.status_code == 201, made.text
    assert [item["symbol"] for item in made.json()] == ["BTC", "ETH"]
    for item in made.json():
        assert client.get(f"{PREDICTIONS}/{item['id']}", headers=alice.headers).json() == item
    before = _count(api_engine)
    unknown = client.post(
        f"{PREDICTIONS}/batch", headers=alice.headers, json={"cryptos": ["BTC", "NOPE"]}
    )
    assert unknown.status_code == 404
    assert "NOPE" in unknown.json()["detail"]
    twice = client.post(
        f"{PREDICTIONS}/batch", headers=alice.headers, json={"cryptos": ["BTC", "btc"]}
    )
    assert twice.status_code == 422
    assert _count(api_engine) == before


def test_request_errors(
    client: TestClient, alice: Account, bob: Account, api_engine: Engine
) -> None:
    assert client.post(PREDICTIONS, json={"crypto": "BTC"}).status_code == 401
    assert (
        client.post(PREDICTIONS, headers=alice.headers, json={"crypto": "XXX"}).status_code == 404
    )
    for horizon in (0, 721):
        out_of_range = client.post(
            PREDICTIONS, headers=alice.headers, json={"crypto": "BTC", "horizon_hours": horizon}
        )
        assert out_of_range.status_code == 422
    other = client.post(
        PREDICTIONS, headers=alice.headers, json={"crypto": "BTC", "horizon_hours": 48}
    )
    assert other.status_code == 422
    assert "trained horizons: 6, 24" in other.json()["detail"]
    assert other.json()["trained_horizons"] == [6, 24]
    assert client.post(PREDICTIONS, headers=alice.headers, json={}).status_code == 422
    with api_engine.begin() as connection:
        bobs = connection.execute(
            text(
                "INSERT INTO watchlists (name, type, user_id) VALUES ('b', 'personal', :u) "
                "RETURNING id"
            ),
            {"u": bob.id},
        ).scalar_one()
    foreign = client.post(
        PREDICTIONS, headers=alice.headers, json={"crypto": "BTC", "watchlist_id": bobs}
    )
    assert foreign.status_code == 403
    missing = client.post(
        PREDICTIONS, headers=alice.headers, json={"crypto": "BTC", "watchlist_id": 999999}
    )
    assert missing.status_code == 404
    assert _count(api_engine) == 0


def test_stale_candles_are_409_with_the_last_candle_time(
    client: TestClient, alice: Account, api_engine: Engine, trained_store: TrainedStore
) -> None:
    with api_engine.begin() as connection:
        connection.execute(
            text(
                "DELETE FROM price_data WHERE crypto_id = (SELECT id FROM cryptocurrencies "
                "WHERE symbol = 'ETH') AND timestamp > :cut"
            ),
            {"cut": trained_store.last_candle - timedelta(hours=10)},
        )
    stale = client.post(PREDICTIONS, headers=alice.headers, json={"crypto": "ETH"})
    assert stale.status_code == 409
    expected = (trained_store.last_candle - timedelta(hours=10)).isoformat()
    assert stale.json()["last_candle_time"] == expected
    assert expected in stale.json()["detail"]
    assert _count(api_engine) == 0


def test_no_active_model_is_503_and_a_promotion_needs_no_restart(
    client: TestClient, alice: Account, api_engine: Engine
) -> None:
    assert (
        client.post(PREDICTIONS, headers=alice.headers, json={"crypto": "BTC"}).status_code == 201
    )
    with Session(api_engine) as session, session.begin():
        session.execute(
            update(AiModel).where(AiModel.model_type == "asset").values(status="inactive")
        )
    down = client.post(PREDICTIONS, headers=alice.headers, json={"crypto": "BTC"})
    assert down.status_code == 503
    assert "no active asset model" in down.json()["detail"]
    with Session(api_engine) as session, session.begin():
        session.execute(
            update(AiModel).where(AiModel.model_type == "asset").values(status="active")
        )
    assert (
        client.post(PREDICTIONS, headers=alice.headers, json={"crypto": "BTC"}).status_code == 201
    )


def test_listing_reading_and_annotating_respect_ownership(
    client: TestClient, alice: Account, bob: Account, admin: Account
) -> None:
    mine = client.post(PREDICTIONS, headers=alice.headers, json={"crypto": "BTC"}).json()
    client.post(PREDICTIONS, headers=bob.headers, json={"crypto": "ETH"})

    listed = client.get(PREDICTIONS, headers=alice.headers)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [mine["id"]]
    assert client.get(PREDICTIONS, headers=admin.headers).json()["total"] == 2
    assert client.get(f"{PREDICTIONS}?crypto=ETH", headers=alice.headers).json()["total"] == 0
    assert client.get(f"{PREDICTIONS}?realized=true", headers=alice.headers).json()["total"] == 0
    assert client.get(f"{PREDICTIONS}?layer=9", headers=alice.headers).status_code == 422
    assert client.get(PREDICTIONS).status_code == 401

    assert client.get(f"{PREDICTIONS}/{mine['id']}", headers=alice.headers).status_code == 200
    assert client.get(f"{PREDICTIONS}/{mine['id']}", headers=bob.headers).status_code == 403
    assert client.get(f"{PREDICTIONS}/999999", headers=alice.headers).status_code == 404

    noted = client.put(
        f"{PREDICTIONS}/{mine['id']}", headers=alice.headers, json={"notes": "watch the funding"}
    )
    assert noted.status_code == 200
    assert noted.json()["notes"] == "watch the funding"
    assert noted.json()["predicted_price"] == mine["predicted_price"]
    refused = client.put(f"{PREDICTIONS}/{mine['id']}", headers=bob.headers, json={"notes": "x"})
    assert refused.status_code == 403
    too_long = client.put(
        f"{PREDICTIONS}/{mine['id']}", headers=alice.headers, json={"notes": "x" * 5001}
    )
    assert too_long.status_code == 422


def test_accuracy_follows_the_evaluation(
    client: TestClient,
    alice: Account,
    bob: Account,
    api_engine: Engine,
    trained_store: TrainedStore,
) -> None:
    made = client.post(PREDICTIONS, headers=alice.headers, json={"crypto": "BTC"}).json()
    pending = client.get(f"{PREDICTIONS}/{made['id']}/accuracy", headers=alice.headers)
    assert pending.status_code == 200
    assert pending.json()["state"] == "pending"
    assert pending.json()["actual_price"] is None

    # Move the forecast back a day so that its target candle exists, then evaluate.
    with Session(api_engine) as session, session.begin():
        session.execute(
            update(Prediction)
            .where(Prediction.id == made["id"])
            .values(target_datetime=trained_store.last_candle - timedelta(hours=1))
        )
    evaluate(api_engine, as_of=trained_store.last_candle)
    realized = client.get(f"{PREDICTIONS}/{made['id']}/accuracy", headers=alice.headers).json()
    actual = _close(api_engine, "BTC", 1)
    assert realized["state"] == "realized"
    assert realized["actual_price"] == pytest.approx(actual)
    error = abs(made["predicted_price"] - actual)
    assert realized["absolute_error"] == pytest.approx(error, abs=1e-6)
    assert realized["is_accurate"] == (error / actual * 100 <= made["accuracy_threshold"])
    up = made["predicted_price"] >= made["input_price"]
    assert realized["direction_correct"] == (up == (actual >= made["input_price"]))
    interval = made["interval"]
    assert realized["interval"] == interval
    assert realized["within_interval"] == (interval["lower"] <= actual <= interval["upper"])
    assert pending.json()["within_interval"] is None
    assert (
        client.get(f"{PREDICTIONS}/{made['id']}/accuracy", headers=bob.headers).status_code == 403
    )
