"""Dashboards: the right numbers from a realistic database, each user seeing only their own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

import builders
from accounts import Account
from db.schema import (
    AiModel,
    AiSuggestion,
    CryptoSector,
    DominanceData,
    MarketRegimeAnalysis,
    MarketSentimentData,
    Prediction,
    SectorPerformance,
    SectorRotationAnalysis,
    SystemHealth,
    TradingSignal,
)

ADMIN = "/api/v1/dashboard/admin"
PROFESSIONAL = "/api/v1/dashboard/professional"
CASUAL = "/api/v1/dashboard/casual"
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class World:
    admin: Account
    alice: Account
    bob: Account
    carol: Account  # no watchlist of her own: sees the default one
    coins: dict[str, int]
    watchlists: dict[str, int]
    suggestions: dict[str, int]
    signals: dict[str, int]
    predictions: dict[str, int]


def predict(session: Session, crypto_id: int, user_id: int | None, **values: Any) -> int:
    """A price prediction; `realized=(actual, accurate, accuracy %)` backfills it."""
    made = values.pop("made", NOW - timedelta(hours=1))
    input_price = Decimal(values.pop("input_price", "100"))
    realized = values.pop("realized", None)
    row = Prediction(
        crypto_id=crypto_id,
        user_id=user_id,
        model_name="asset_price",
        model_version=values.pop("version", "2"),
        predicted_price=Decimal(values.pop("predicted", "102")),
        confidence_score=Decimal(values.pop("confidence", "0.7")),
        prediction_horizon=24,
        target_datetime=made + timedelta(hours=24),
        input_price=input_price,
        prediction_type="price",
        created_at=made,
    )
    if realized is not None:
        actual, accurate, accuracy = realized
        row.actual_price = Decimal(actual)
        row.absolute_error = abs(row.predicted_price - Decimal(actual))
        row.is_realized = True
        row.is_accurate = accurate
        row.accuracy_percentage = Decimal(accuracy)
        row.evaluated_at = made + timedelta(hours=25)
    session.add(row)
    session.flush()
    return row.id


def suggest(session: Session, watchlist_id: int, crypto_id: int, **values: Any) -> int:
    row = AiSuggestion(
        watchlist_id=watchlist_id,
        crypto_id=crypto_id,
        suggestion_type=values.pop("kind", "add"),
        ai_layer=3,
        confidence_score=Decimal(values.pop("confidence")),
        reasoning={"why": "test"},
        status=values.pop("status", "pending"),
        expires_at=values.pop("expires_at", NOW + timedelta(days=1)),
    )
    session.add(row)
    session.flush()
    return row.id


def signal(session: Session, crypto_id: int, confidence: str, **values: Any) -> int:
    row = TradingSignal(
        crypto_id=crypto_id,
        signal_type="long",
        entry_price=Decimal("100"),
        target_price=Decimal("105"),
        stop_loss=Decimal("98"),
        confidence_score=Decimal(confidence),
        risk_level="medium",
        risk_reward_ratio=Decimal("2.5"),
        time_horizon_hours=24,
        status=values.pop("status", "active"),
        expires_at=values.pop("expires_at", NOW + timedelta(days=1)),
    )
    session.add(row)
    session.flush()
    return row.id


def market(session: Session) -> None:
    """Two regime analyses, sentiment, dominance, two rounds of sector figures."""
    session.add_all(
        [
            MarketRegimeAnalysis(
                regime="bear", confidence_score=Decimal("0.6"), analysis_time=NOW - timedelta(1)
            ),
            MarketRegimeAnalysis(
                regime="bull", confidence_score=Decimal("0.72"), analysis_time=NOW
            ),
            MarketSentimentData(fear_greed_index=Decimal("80"), timestamp=NOW),
            DominanceData(
                btc_dominance=Decimal("52.5"),
                eth_dominance=Decimal("17.1"),
                alt_dominance=Decimal("30.4"),
                timestamp=NOW,
            ),
        ]
    )
    sectors = {row.name: row.id for row in session.scalars(select(CryptoSector).limit(3)).all()}
    names = list(sectors)
    for days_ago, figures in ((1, (9.0, -9.0, 0.0)), (0, (1.0, 5.0, 3.0))):
        for name, figure in zip(names, figures, strict=True):
            session.add(
                SectorPerformance(
                    sector_id=sectors[name],
                    performance_7d=Decimal(str(figure)),
                    analysis_time=NOW - timedelta(days=days_ago),
                )
            )
    for days_ago, strength in ((1, "0.9"), (0, "0.4"), (0, "0.8")):
        session.add(
            SectorRotationAnalysis(
                from_sector_id=sectors[names[0]],
                to_sector_id=sectors[names[1]],
                rotation_strength=Decimal(strength),
                confidence_score=Decimal("0.5"),
                analysis_time=NOW - timedelta(days=days_ago),
            )
        )


@pytest.fixture
def world(api_engine: Engine, account: Callable[..., Account]) -> World:
    admin = account("admin", "root@example.com")
    alice = account("public", "alice@example.com")
    bob = account("public", "bob@example.com")
    carol = account("public", "carol@example.com")
    with api_engine.begin() as connection:
        coins = {
            symbol: builders.coin(connection, symbol) for symbol in ("BTC", "ETH", "SOL", "ADA")
        }
        default = builders.default_watchlist_id(connection)
        watchlists = {
            "alice_core": builders.watchlist(connection, alice.id, "Core"),
            "alice_alts": builders.watchlist(connection, alice.id, "Alts"),
            "bob": builders.watchlist(connection, bob.id, "Bob's"),
            "default": default,
        }
        for name, symbols in {
            "alice_core": ("BTC", "ETH"),
            "alice_alts": ("SOL",),
            "bob": ("ETH", "ADA"),
            "default": ("BTC", "ADA"),
        }.items():
            for position, symbol in enumerate(symbols, start=1):
                builders.asset(connection, watchlists[name], coins[symbol], position)
    with Session(api_engine) as session:
        market(session)
        btc, eth, sol, ada = (coins[symbol] for symbol in ("BTC", "ETH", "SOL", "ADA"))
        suggestions = {
            "alice_best": suggest(session, watchlists["alice_alts"], ada, confidence="0.9"),
            "alice_next": suggest(
                session, watchlists["alice_core"], btc, confidence="0.6", kind="remove"
            ),
            "alice_rejected": suggest(
                session, watchlists["alice_core"], sol, confidence="0.95", status="rejected"
            ),
            "alice_expired": suggest(
                session,
                watchlists["alice_core"],
                ada,
                confidence="0.97",
                expires_at=NOW - timedelta(hours=1),
            ),
            "bob": suggest(session, watchlists["bob"], sol, confidence="0.99"),
            "default": suggest(session, watchlists["default"], eth, confidence="0.8"),
        }
        signals = {
            "btc": signal(session, btc, "0.8"),
            "sol": signal(session, sol, "0.7"),
            "eth_expired": signal(session, eth, "0.99", expires_at=NOW - timedelta(hours=1)),
            "ada": signal(session, ada, "0.9"),
        }
        predictions = {
            # BTC: three realized system predictions (two accurate) and a newer open one.
            "btc_1": predict(
                session, btc, None, made=NOW - timedelta(days=3), realized=("100", True, "98")
            ),
            "btc_2": predict(
                session, btc, None, made=NOW - timedelta(days=2), realized=("104", True, "96")
            ),
            "btc_3": predict(
                session,
                btc,
                None,
                made=NOW - timedelta(days=2, hours=1),
                realized=("90", False, "80"),
                version="1",
            ),
            "btc_old": predict(
                session, btc, None, made=NOW - timedelta(days=60), realized=("50", False, "1")
            ),
            "btc_latest": predict(
                session, btc, None, made=NOW - timedelta(hours=2), predicted="103"
            ),
            # ETH: alice's own, then a newer one of bob's that alice must not see.
            "eth_alice": predict(
                session,
                eth,
                alice.id,
                made=NOW - timedelta(hours=3),
                predicted="95",
                realized=("96", True, "99"),
            ),
            "eth_bob": predict(
                session,
                eth,
                bob.id,
                made=NOW - timedelta(hours=1),
                predicted="120",
                realized=("100", False, "80"),
            ),
            "ada_system": predict(
                session, ada, None, made=NOW - timedelta(hours=1), predicted="99.8"
            ),
        }
        session.add_all(
            [
                AiModel(name="asset_price", version="1", model_type="asset", status="inactive"),
                AiModel(
                    name="asset_price",
                    version="2",
                    model_type="asset",
                    status="active",
                    performance_metrics={
                        "primary_metric": "mae",
                        "validation": {"mae": 1.5},
                        "baseline": {"mae": 2.0},
                        "live": {"n_evaluated": 40, "accuracy_rate": 0.6, "ece": 0.05},
                    },
                ),
                AiModel(name="macro_regime", version="1", model_type="macro", status="error"),
                SystemHealth(overall_health_score=Decimal("75"), check_time=NOW),
            ]
        )
        session.commit()
    return World(admin, alice, bob, carol, coins, watchlists, suggestions, signals, predictions)


def assets_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        asset["symbol"]: asset for watchlist in body["watchlists"] for asset in watchlist["assets"]
    }


def test_professional_dashboard_shows_the_callers_watchlists(
    client: TestClient, world: World
) -> None:
    response = client.get(PROFESSIONAL, headers=world.alice.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["regime"]["regime"] == "bull"
    assert body["regime"]["confidence_score"] == pytest.approx(0.72)
    assert body["sentiment"]["fear_greed_index"] == 80
    assert body["dominance"]["btc_dominance"] == pytest.approx(52.5)
    # Latest figures of each sector, strongest over 7 days first; the latest rotations only.
    assert [sector["performance_7d"] for sector in body["sectors"]] == [5.0, 3.0, 1.0]
    assert [rotation["rotation_strength"] for rotation in body["rotations"]] == [0.8, 0.4]
    assert body["using_default_watchlist"] is False
    assert [(w["name"], [a["symbol"] for a in w["assets"]]) for w in body["watchlists"]] == [
        ("Core", ["BTC", "ETH"]),
        ("Alts", ["SOL"]),
    ]
    # Pending, unexpired suggestions of her watchlists only, most confident first.
    assert [row["id"] for row in body["suggestions"]] == [
        world.suggestions["alice_best"],
        world.suggestions["alice_next"],
    ]
    assert body["suggestions"][0]["watchlist_name"] == "Alts"
    # Active signals on her coins (BTC, ETH, SOL): not ADA's, not the expired one.
    assert [row["id"] for row in body["signals"]] == [world.signals["btc"], world.signals["sol"]]
    assets = assets_of(body)
    assert assets["BTC"]["latest_prediction"]["id"] == world.predictions["btc_latest"]
    assert assets["BTC"]["latest_prediction"]["expected_change_pct"] == pytest.approx(3.0)
    # Bob's newer ETH prediction is not hers to see.
    assert assets["ETH"]["latest_prediction"]["id"] == world.predictions["eth_alice"]
    assert assets["SOL"]["latest_prediction"] is None
    btc = assets["BTC"]["accuracy"]
    assert (btc["evaluated"], btc["accurate"]) == (3, 2)  # the 60-day-old one is out
    assert btc["hit_rate"] == pytest.approx(2 / 3)
    assert btc["mean_accuracy_percentage"] == pytest.approx((98 + 96 + 80) / 3)
    # |predicted - actual| / actual: 2/100, 2/104, 12/90.
    assert btc["mean_abs_pct_error"] == pytest.approx((2 + 200 / 104 + 1200 / 90) / 3)
    assert assets["ETH"]["accuracy"]["evaluated"] == 1
    overall = body["accuracy"]
    assert (overall["evaluated"], overall["accurate"]) == (4, 3)
    assert overall["mean_accuracy_percentage"] == pytest.approx((98 + 96 + 80 + 99) / 4)


def test_each_user_sees_only_their_own(client: TestClient, world: World) -> None:
    bob = client.get(PROFESSIONAL, headers=world.bob.headers).json()
    carol = client.get(PROFESSIONAL, headers=world.carol.headers).json()

    assert [w["name"] for w in bob["watchlists"]] == ["Bob's"]
    assert [row["id"] for row in bob["suggestions"]] == [world.suggestions["bob"]]
    assert [row["id"] for row in bob["signals"]] == [world.signals["ada"]]
    bob_assets = assets_of(bob)
    assert bob_assets["ETH"]["latest_prediction"]["id"] == world.predictions["eth_bob"]
    assert bob_assets["ETH"]["accuracy"]["evaluated"] == 1
    assert bob_assets["ETH"]["accuracy"]["accurate"] == 0
    # Carol has no watchlist: the default one, with its suggestions and signals.
    assert carol["using_default_watchlist"] is True
    assert [w["type"] for w in carol["watchlists"]] == ["default"]
    assert list(assets_of(carol)) == ["BTC", "ADA"]
    assert [row["id"] for row in carol["suggestions"]] == [world.suggestions["default"]]
    assert [row["id"] for row in carol["signals"]] == [world.signals["ada"], world.signals["btc"]]
    assert carol["accuracy"]["evaluated"] == 3


def test_casual_dashboard_is_short_and_plain(client: TestClient, world: World) -> None:
    response = client.get(CASUAL, headers=world.alice.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["market"] == "The market looks rising (bullish) (72% confidence)."
    assert body["mood"] == "extreme greed"
    assert body["watchlists"] == ["Core", "Alts"]
    coins = {coin["symbol"]: coin for coin in body["coins"]}
    assert coins["BTC"]["outlook"] == "up"
    assert coins["BTC"]["summary"] == (
        "BTC: expected to rise about 3.0% in the next 24 hours (70% confidence)."
    )
    assert coins["ETH"]["outlook"] == "down"
    assert coins["SOL"]["outlook"] is None
    assert [idea["kind"] for idea in body["ideas"]] == [
        "suggestion",
        "suggestion",
        "signal",
        "signal",
    ]
    assert body["ideas"][0]["summary"] == "Consider adding ADA to Alts (90% confidence)."
    assert body["ideas"][2]["summary"].startswith("BTC: a buying opportunity aiming for 5.0%")
    assert body["track_record"] == (
        "3 of 4 predictions for your coins in the last 30 days were accurate."
    )
    assert body["hit_rate"] == pytest.approx(0.75)


def test_admin_dashboard_figures(client: TestClient, world: World) -> None:
    response = client.get(ADMIN, headers=world.admin.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["users"] == {
        "total": 4,
        "admins": 1,
        "active": 4,
        "new_7d": 4,
        "logged_in_24h": 4,
        "active_sessions": 4,
        "users_with_sessions": 4,
    }
    layers = {layer["layer"]: layer for layer in body["models"]}
    assert layers["asset"]["versions_by_status"] == {"active": 1, "inactive": 1}
    assert layers["asset"]["active"]["version"] == "2"
    assert layers["asset"]["active"]["validation"] == 1.5
    assert layers["asset"]["active"]["live_accuracy_rate"] == 0.6
    assert layers["macro"] == {"layer": "macro", "versions_by_status": {"error": 1}, "active": None}
    assert layers["timing"]["active"] is None
    assert body["latest_health"]["overall_health_score"] == 75
    assert body["latest_health"]["status"] == "degraded"
    queue = body["suggestions"]
    assert queue["pending"] == 5  # every pending one, the expired included, across users
    assert queue["pending_by_layer"] == {"3": 5}
    assert len(queue["newest"]) == 5
    assert {row["email"] for row in body["recent_activities"]} >= {"alice@example.com"}
    versions = {
        (row["model_name"], row["model_version"]): row for row in body["accuracy_by_version"]
    }
    v2, v1 = versions[("asset_price", "2")], versions[("asset_price", "1")]
    # Version 2 made six predictions in 30 days; four came due, three accurate.
    assert (v2["predictions"], v2["evaluated"], v2["accurate"]) == (6, 4, 3)
    assert v2["hit_rate"] == pytest.approx(0.75)
    assert v2["mean_accuracy_percentage"] == pytest.approx((98 + 96 + 99 + 80) / 4)
    assert (v1["predictions"], v1["evaluated"], v1["accurate"]) == (1, 1, 0)
    wide = client.get(ADMIN, params={"days": 90}, headers=world.admin.headers).json()
    wide_v2 = {(r["model_name"], r["model_version"]): r for r in wide["accuracy_by_version"]}
    assert wide_v2[("asset_price", "2")]["evaluated"] == 5


def test_dashboards_answer_in_a_few_queries(
    client: TestClient, api_engine: Engine, world: World
) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(api_engine, "before_cursor_execute", count)
    try:
        for url, who in ((PROFESSIONAL, world.alice), (CASUAL, world.alice), (ADMIN, world.admin)):
            statements.clear()
            assert client.get(url, headers=who.headers).status_code == 200
            # Authentication (one) plus a fixed number, whatever the number of rows.
            assert len(statements) <= 14, (url, len(statements))
    finally:
        event.remove(api_engine, "before_cursor_execute", count)


def test_dashboards_need_the_right_caller(
    client: TestClient, admin: Account, alice: Account
) -> None:
    for url in (ADMIN, PROFESSIONAL, CASUAL):
        assert client.get(url).status_code == 401
    assert client.get(ADMIN, headers=alice.headers).status_code == 403
    assert client.get(ADMIN, params={"days": 0}, headers=admin.headers).status_code == 422
    # An empty database: nothing to show, but every dashboard answers.
    assert client.get(ADMIN, headers=admin.headers).status_code == 200
    empty = client.get(CASUAL, headers=alice.headers).json()
    assert empty["market"] == "No market analysis yet."
    assert empty["coins"] == []
    assert empty["using_default_watchlist"] is True
    assert client.get(PROFESSIONAL, headers=alice.headers).json()["regime"] is None
