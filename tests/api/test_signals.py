"""Layer 4 over HTTP: signals, executing one under the risk limits, risk profiles, alerts."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session

from accounts import Account
from builders import asset, coin, default_watchlist_id, insert, user, watchlist
from db.schema import Notification, RiskManagement, SignalExecution, TradingSignal, UserActivity
from serving.services.signal_alerts import notify_watchers

API = "/api/v1"
NOW = datetime.now(UTC)


def _signal(connection: Connection, crypto_id: int, **values: Any) -> int:
    """A long signal entering at 100 with its stop 5 % below (a position loses 5 % at it)."""
    row: dict[str, Any] = {
        "crypto_id": crypto_id,
        "signal_type": "long",
        "entry_price": 100,
        "target_price": 110,
        "stop_loss": 95,
        "confidence_score": 0.7,
        "risk_level": "medium",
        "risk_reward_ratio": 2,
        "ai_analysis": json.dumps({"p_long": 0.7}),
        "generated_at": NOW - timedelta(hours=1),
        "expires_at": NOW + timedelta(hours=23),
        **values,
    }
    return insert(connection, "trading_signals", **row)


@pytest.fixture
def coins(api_engine: Engine) -> dict[str, int]:
    with api_engine.begin() as connection:
        return {symbol: coin(connection, symbol) for symbol in ("BTC", "ETH", "SOL")}


Execute = Callable[..., Any]


@pytest.fixture
def execute(client: TestClient) -> Execute:
    def post(account: Account, signal_id: int, **body: Any) -> Any:
        return client.post(
            f"{API}/signals/{signal_id}/execute",
            json={"portfolio_value": 10_000, **body},
            headers=account.headers,
        )

    return post


# ------------------------------------------------------------------------- reading


def test_signal_routes_need_a_token(client: TestClient) -> None:
    for method, path in (
        ("get", "/signals"),
        ("get", "/signals/1"),
        ("post", "/signals/1/execute"),
        ("get", "/user/1/risk-profile"),
        ("put", "/user/1/risk-profile"),
    ):
        assert client.request(method, API + path).status_code == 401


def test_signals_list_newest_first_with_filters(
    client: TestClient, api_engine: Engine, coins: dict[str, int], alice: Account
) -> None:
    with api_engine.begin() as connection:
        old = _signal(connection, coins["BTC"], generated_at=NOW - timedelta(hours=5))
        short = _signal(
            connection,
            coins["ETH"],
            signal_type="short",
            entry_price=100,
            target_price=90,
            stop_loss=105,
            risk_level="high",
            generated_at=NOW - timedelta(hours=3),
        )
        expired = _signal(
            connection, coins["BTC"], status="expired", generated_at=NOW - timedelta(hours=2)
        )
    response = client.get(f"{API}/signals", headers=alice.headers)
    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["items"]] == [expired, short, old]
    assert body["total"] == 3
    assert body["items"][1]["symbol"] == "ETH" and body["items"][1]["stop_loss"] == 105.0

    def ids(query: str) -> list[int]:
        page = client.get(f"{API}/signals?{query}", headers=alice.headers)
        assert page.status_code == 200, page.text
        return [item["id"] for item in page.json()["items"]]

    assert ids("crypto=btc") == [expired, old]
    assert ids(f"crypto={coins['ETH']}") == [short]
    assert ids("status=active") == [short, old]
    assert ids("signal_type=short") == [short]
    assert ids("risk_level=medium&crypto=BTC&status=active") == [old]
    assert ids(f"since={(NOW - timedelta(hours=4)).isoformat().replace('+00:00', 'Z')}") == [
        expired,
        short,
    ]
    assert ids("crypto=SOL") == []
    unknown = client.get(f"{API}/signals?crypto=NOPE", headers=alice.headers)
    assert unknown.status_code == 404 and "NOPE" in unknown.json()["detail"]
    for bad in ("status=open", "signal_type=up", "risk_level=none", "limit=0"):
        assert client.get(f"{API}/signals?{bad}", headers=alice.headers).status_code == 422


def test_signal_detail(
    client: TestClient, api_engine: Engine, coins: dict[str, int], alice: Account
) -> None:
    with api_engine.begin() as connection:
        signal_id = _signal(connection, coins["SOL"])
    found = client.get(f"{API}/signals/{signal_id}", headers=alice.headers)
    assert found.status_code == 200
    assert found.json()["symbol"] == "SOL" and found.json()["confidence_score"] == 0.7
    assert found.json()["ai_analysis"] == {"p_long": 0.7}
    missing = client.get(f"{API}/signals/999999", headers=alice.headers)
    assert missing.status_code == 404 and missing.json()["detail"] == "signal 999999 not found"
    assert client.get(f"{API}/signals/first", headers=alice.headers).status_code == 422


# ------------------------------------------------------------------------- executing


def test_execute_records_the_trade_and_the_exposure(
    api_engine: Engine, coins: dict[str, int], alice: Account, execute: Execute
) -> None:
    with api_engine.begin() as connection:
        signal_id = _signal(connection, coins["BTC"])
    response = execute(alice, signal_id, position_size=400)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["signal_id"] == signal_id and body["user_id"] == alice.id
    assert body["execution_price"] == 100.0  # the signal's entry
    assert body["position_size"] == 400.0 and body["portfolio_percentage"] == 4.0
    assert body["execution_type"] == "manual" and body["status"] == "filled"
    assert body["execution_details"]["loss_at_stop"] == 20.0

    with Session(api_engine) as session:
        signal = session.get(TradingSignal, signal_id)
        profile = session.scalars(select(RiskManagement)).one()
        activity = session.scalars(
            select(UserActivity).where(UserActivity.activity_type == "signal_execution")
        ).one()
    assert signal is not None and signal.status == "active"  # shared: unchanged
    assert profile.user_id == alice.id
    assert profile.max_position_size == 1000 and float(profile.max_portfolio_risk or 0) == 0.02
    exposure = profile.current_exposure or {}
    assert exposure["open_executions"] == 1 and exposure["total_position"] == 400.0
    assert exposure["total_risk"] == 20.0 and exposure["risk_fraction"] == 0.002
    assert exposure["by_crypto"][0]["symbol"] == "BTC"
    assert activity.user_id == alice.id and activity.entity_id == body["id"]
    assert activity.action == "create" and activity.entity_type == "signal_execution"


def test_execute_at_a_given_price_of_a_short(
    api_engine: Engine, coins: dict[str, int], alice: Account, execute: Execute
) -> None:
    with api_engine.begin() as connection:
        signal_id = _signal(
            connection, coins["ETH"], signal_type="short", target_price=90, stop_loss=104
        )
    response = execute(alice, signal_id, position_size=500, execution_price=98)
    assert response.status_code == 201, response.text
    assert response.json()["execution_price"] == 98.0
    # 500 * |98 - 104| / 98
    assert response.json()["execution_details"]["loss_at_stop"] == pytest.approx(30.612244898)


@pytest.mark.parametrize(
    "body",
    [
        {"position_size": 0},
        {"position_size": -5},
        {"position_size": "lots"},
        {"position_size": 100, "portfolio_value": 0},
        {"position_size": 100, "portfolio_value": None},
        {"position_size": 100, "execution_price": 0},
        {"position_size": 100, "execution_price": 1e13},
        {"position_size": 1e16},
        {"position_size": 100, "execution_type": "automatic"},
    ],
)
def test_execute_refuses_malformed_input(
    api_engine: Engine, coins: dict[str, int], alice: Account, execute: Execute, body: dict
) -> None:
    with api_engine.begin() as connection:
        signal_id = _signal(connection, coins["BTC"])
    assert execute(alice, signal_id, **body).status_code == 422


def test_execute_a_missing_signal_is_404(alice: Account, execute: Execute) -> None:
    response = execute(alice, 999999, position_size=100)
    assert response.status_code == 404 and response.json()["detail"] == "signal 999999 not found"


@pytest.mark.parametrize(
    ("values", "price", "message"),
    [
        ({"status": "expired"}, None, "is expired: only an active signal"),
        ({"status": "executed"}, None, "is executed: only an active signal"),
        ({"expires_at": NOW - timedelta(minutes=1)}, None, "expired at"),
        ({}, 95, "at or beyond the stop loss 95 of this long signal"),
        ({}, 111.5, "at or beyond the target 110 of this long signal"),
    ],
)
def test_execute_refuses_a_signal_that_cannot_be_traded(
    api_engine: Engine,
    coins: dict[str, int],
    alice: Account,
    execute: Execute,
    values: dict,
    price: float | None,
    message: str,
) -> None:
    with api_engine.begin() as connection:
        signal_id = _signal(connection, coins["BTC"], **values)
    response = execute(alice, signal_id, position_size=100, execution_price=price)
    assert response.status_code == 409
    assert message in response.json()["detail"]
    with Session(api_engine) as session:
        assert session.scalars(select(SignalExecution)).all() == []


def test_execute_refuses_a_position_above_the_limit_or_the_portfolio(
    api_engine: Engine, coins: dict[str, int], alice: Account, execute: Execute
) -> None:
    with api_engine.begin() as connection:
        signal_id = _signal(connection, coins["BTC"])
    too_big = execute(alice, signal_id, position_size=1500)
    assert too_big.status_code == 409
    assert too_big.json() == {
        "detail": "position_size 1,500.00 exceeds your max_position_size 1,000.00",
        "limit": "max_position_size",
        "limit_value": 1000.0,
        "value": 1500.0,
    }
    leveraged = execute(alice, signal_id, position_size=600, portfolio_value=500)
    assert leveraged.status_code == 409 and leveraged.json()["limit"] == "portfolio_value"
    assert execute(alice, signal_id, position_size=1000).status_code == 201


def test_portfolio_risk_counts_the_open_executions(
    client: TestClient,
    api_engine: Engine,
    coins: dict[str, int],
    alice: Account,
    bob: Account,
    execute: Execute,
) -> None:
    with api_engine.begin() as connection:
        btc, eth, sol = (_signal(connection, coins[symbol]) for symbol in ("BTC", "ETH", "SOL"))
    # Each position loses 5 % at its stop; the limit is 2 % of a 1000 portfolio, i.e. 20.
    assert execute(alice, btc, position_size=300, portfolio_value=1000).status_code == 201
    refused = execute(alice, eth, position_size=200, portfolio_value=1000)
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "lose 25.00, 2.50% of the portfolio 1,000.00" in detail
    assert "10.00 from this position, 15.00 from 1 open executions" in detail
    assert "max_portfolio_risk 2.00%" in detail
    assert refused.json()["limit"] == "max_portfolio_risk"
    assert refused.json()["value"] == 0.025
    # Bob's exposure is his own.
    assert execute(bob, eth, position_size=200, portfolio_value=1000).status_code == 201
    # Exactly at the limit is allowed.
    assert execute(alice, eth, position_size=100, portfolio_value=1000).status_code == 201
    again = execute(alice, btc, position_size=1, portfolio_value=1000)
    assert again.status_code == 409
    assert again.json()["detail"] == f"you already hold an open execution of signal {btc}"

    # A settled signal no longer counts, nor does a cancelled execution.
    with api_engine.begin() as connection:
        connection.execute(
            text("UPDATE trading_signals SET status = 'executed' WHERE id = :id"), {"id": btc}
        )
        connection.execute(
            text(
                "UPDATE signal_executions SET status = 'cancelled'"
                " WHERE signal_id = :id AND user_id = :user"
            ),
            {"id": eth, "user": alice.id},
        )
    profile = client.get(f"{API}/user/{alice.id}/risk-profile", headers=alice.headers).json()
    assert profile["current_exposure"]["open_executions"] == 0
    assert execute(alice, sol, position_size=400, portfolio_value=1000).status_code == 201


def test_raised_limits_let_a_larger_trade_through(
    client: TestClient, api_engine: Engine, coins: dict[str, int], alice: Account, execute: Execute
) -> None:
    with api_engine.begin() as connection:
        signal_id = _signal(connection, coins["BTC"])
    assert execute(alice, signal_id, position_size=5000, portfolio_value=20_000).status_code == 409
    raised = client.put(
        f"{API}/user/{alice.id}/risk-profile",
        json={"max_position_size": 5000, "max_portfolio_risk": 0.05},
        headers=alice.headers,
    )
    assert raised.status_code == 200, raised.text
    assert raised.json()["max_position_size"] == 5000.0
    assert raised.json()["max_portfolio_risk"] == 0.05
    assert execute(alice, signal_id, position_size=5000, portfolio_value=20_000).status_code == 201


# ------------------------------------------------------------------------- risk profile


def test_risk_profile_defaults_and_exposure(
    client: TestClient, api_engine: Engine, coins: dict[str, int], alice: Account, execute: Execute
) -> None:
    fresh = client.get(f"{API}/user/{alice.id}/risk-profile", headers=alice.headers)
    assert fresh.status_code == 200
    assert fresh.json() == {
        "user_id": alice.id,
        "max_position_size": 1000.0,
        "max_portfolio_risk": 0.02,
        "risk_rules": {},
        "risk_metrics": {},
        "last_calculated": None,
        "updated_at": None,
        "current_exposure": {
            "open_executions": 0,
            "total_position": 0.0,
            "total_risk": 0.0,
            "by_crypto": [],
        },
    }
    with api_engine.begin() as connection:
        first, second = _signal(connection, coins["BTC"]), _signal(connection, coins["BTC"])
    execute(alice, first, position_size=200)
    execute(alice, second, position_size=100, execution_price=99)
    profile = client.get(f"{API}/user/{alice.id}/risk-profile", headers=alice.headers).json()
    assert profile["last_calculated"] is not None
    exposure = profile["current_exposure"]
    assert exposure["open_executions"] == 2 and exposure["total_position"] == 300.0
    # 200 * 5 / 100 + 100 * 4 / 99
    assert exposure["total_risk"] == pytest.approx(10 + 400 / 99)
    assert exposure["by_crypto"] == [
        {
            "crypto_id": coins["BTC"],
            "symbol": "BTC",
            "executions": 2,
            "position": 300.0,
            "risk": pytest.approx(10 + 400 / 99),
        }
    ]


def test_risk_profile_is_private_to_its_user_and_admins(
    client: TestClient, alice: Account, bob: Account, admin: Account
) -> None:
    other = client.get(f"{API}/user/{bob.id}/risk-profile", headers=alice.headers)
    assert other.status_code == 403
    change = client.put(
        f"{API}/user/{bob.id}/risk-profile", json={"max_portfolio_risk": 1}, headers=alice.headers
    )
    assert change.status_code == 403
    seen = client.get(f"{API}/user/{bob.id}/risk-profile", headers=admin.headers)
    assert seen.status_code == 200 and seen.json()["user_id"] == bob.id
    assert client.get(f"{API}/user/999999/risk-profile", headers=admin.headers).status_code == 404
    assert client.get(f"{API}/user/me/risk-profile", headers=alice.headers).status_code == 422


def test_risk_profile_update_validates_and_is_recorded(
    client: TestClient, api_engine: Engine, alice: Account, admin: Account
) -> None:
    url = f"{API}/user/{alice.id}/risk-profile"
    for bad in (
        {},
        {"max_portfolio_risk": 1.5},
        {"max_portfolio_risk": -0.1},
        {"max_position_size": 0},
        {"risk_rules": "strict"},
    ):
        assert client.put(url, json=bad, headers=alice.headers).status_code == 422, bad
    own = client.put(url, json={"risk_rules": {"no_meme": True}}, headers=alice.headers)
    assert own.status_code == 200
    assert own.json()["risk_rules"] == {"no_meme": True}
    assert own.json()["max_position_size"] == 1000.0
    by_admin = client.put(url, json={"max_position_size": 250.5}, headers=admin.headers)
    assert by_admin.status_code == 200
    assert by_admin.json()["max_position_size"] == 250.5
    assert by_admin.json()["risk_rules"] == {"no_meme": True}
    with Session(api_engine) as session:
        activities = session.scalars(
            select(UserActivity.user_id).where(UserActivity.activity_type == "risk_profile")
        ).all()
        rows = session.scalars(select(RiskManagement)).all()
    assert sorted(activities) == sorted([alice.id, admin.id])
    assert [row.user_id for row in rows] == [alice.id]


# ------------------------------------------------------------------------- alerts


def test_new_signals_notify_each_watcher_once(engine: Engine) -> None:
    with engine.begin() as connection:
        btc, eth = coin(connection, "BTC"), coin(connection, "ETH")
        twice, inactive_item, off_list, eth_fan, asleep, nobody = (
            user(connection, f"{name}@example.com")
            for name in ("twice", "item", "list", "eth", "asleep", "nobody")
        )
        for owner in (twice, twice):
            asset(connection, watchlist(connection, owner), btc, 1)
        item = asset(connection, watchlist(connection, inactive_item), btc, 1)
        connection.execute(
            text("UPDATE watchlist_assets SET is_active = false WHERE id = :id"), {"id": item}
        )
        hidden = watchlist(connection, off_list)
        asset(connection, hidden, btc, 1)
        connection.execute(
            text("UPDATE watchlists SET is_active = false WHERE id = :id"), {"id": hidden}
        )
        asset(connection, watchlist(connection, eth_fan), eth, 1)
        asset(connection, watchlist(connection, asleep), btc, 1)
        connection.execute(
            text("UPDATE users SET is_active = false WHERE id = :id"), {"id": asleep}
        )
        asset(connection, default_watchlist_id(connection), btc, 1)
        asset(connection, watchlist(connection, nobody), eth, 1)
        long_btc = _signal(
            connection, btc, entry_price=50000, target_price=52000, stop_loss=49250.5
        )
        short_eth = _signal(
            connection,
            eth,
            signal_type="short",
            entry_price=3000,
            target_price=2900,
            stop_loss=3050,
            confidence_score=0.65,
            expires_at=None,
        )
        _signal(connection, eth)  # not new: nobody hears of it
    with Session(engine) as session, session.begin():
        assert notify_watchers(session, []) == 0
        written = notify_watchers(session, [long_btc, short_eth])
    with Session(engine) as session:
        rows = session.scalars(select(Notification)).all()
    assert written == 3
    assert sorted((row.user_id, row.data["signal_id"]) for row in rows) == sorted(
        [(twice, long_btc), (eth_fan, short_eth), (nobody, short_eth)]
    )
    btc_alert = next(row for row in rows if row.user_id == twice)
    assert btc_alert.notification_type == "signal" and btc_alert.status == "unread"
    assert btc_alert.title == "New BTC long signal, confidence 70%"
    assert btc_alert.message.startswith(
        "Long BTC at 50000: target 52000, stop 49250.5, medium risk"
    )
    assert btc_alert.data == {
        "signal_id": long_btc,
        "crypto_id": btc,
        "symbol": "BTC",
        "signal_type": "long",
        "entry_price": 50000.0,
        "target_price": 52000.0,
        "stop_loss": 49250.5,
        "confidence_score": 0.7,
        "risk_level": "medium",
        "expires_at": btc_alert.expires_at.isoformat() if btc_alert.expires_at else "missing",
    }
    assert btc_alert.expires_at is not None
    assert abs(btc_alert.expires_at - (NOW + timedelta(hours=23))) < timedelta(seconds=1)
    eth_alert = next(row for row in rows if row.user_id == eth_fan)
    assert eth_alert.title == "New ETH short signal, confidence 65%"
    assert eth_alert.expires_at is not None  # the table's default, 30 days on
    assert eth_alert.expires_at > datetime.now(UTC) + timedelta(days=29)


def test_a_watcher_reads_the_signal_alert(
    client: TestClient, api_engine: Engine, coins: dict[str, int], alice: Account, bob: Account
) -> None:
    with api_engine.begin() as connection:
        asset(connection, watchlist(connection, alice.id), coins["SOL"], 1)
        signal_id = _signal(connection, coins["SOL"])
    with Session(api_engine) as session, session.begin():
        notify_watchers(session, [signal_id])
    mine = client.get(f"{API}/users/notifications", headers=alice.headers).json()
    assert [item["data"]["signal_id"] for item in mine["items"]] == [signal_id]
    assert mine["items"][0]["notification_type"] == "signal"
    assert client.get(f"{API}/users/notifications", headers=bob.headers).json()["total"] == 0
