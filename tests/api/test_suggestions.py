"""AI suggestions over HTTP: who sees them, and a review that applies them to the watchlist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import builders
from accounts import Account
from db.schema import AiSuggestion, UserActivity, WatchlistAsset

SUGGESTIONS = "/api/v1/suggestions"
NOW = datetime.now(UTC)


def _review_url(suggestion_id: int) -> str:
    return f"{SUGGESTIONS}/{suggestion_id}/review"


def _review(
    client: TestClient, account: Account, suggestion_id: int, decision: str = "approve"
) -> Response:
    body = {"decision": decision, "notes": f"{decision}d by {account.email}"}
    return client.post(_review_url(suggestion_id), json=body, headers=account.headers)


def _suggest(engine: Engine, watchlist_id: int, crypto_id: int, kind: str, **fields: Any) -> int:
    with Session(engine) as session:
        suggestion = AiSuggestion(
            watchlist_id=watchlist_id,
            crypto_id=crypto_id,
            suggestion_type=kind,
            ai_layer=fields.pop("ai_layer", 3),
            confidence_score=Decimal("0.8"),
            reasoning={"summary": f"{kind} it"},
            expires_at=fields.pop("expires_at", NOW + timedelta(hours=4)),
            **fields,
        )
        session.add(suggestion)
        session.commit()
        return suggestion.id


def _assets(engine: Engine, watchlist_id: int) -> dict[int, tuple[int, float]]:
    """crypto_id -> (position, weight) of a watchlist's rows."""
    with Session(engine) as session:
        rows = session.execute(
            select(WatchlistAsset.crypto_id, WatchlistAsset.position, WatchlistAsset.weight).where(
                WatchlistAsset.watchlist_id == watchlist_id
            )
        )
        return {crypto: (position, float(weight or 0)) for crypto, position, weight in rows}


def _stored(engine: Engine, suggestion_id: int) -> AiSuggestion:
    with Session(engine) as session:
        suggestion = session.get(AiSuggestion, suggestion_id)
        assert suggestion is not None
        return suggestion


@pytest.fixture
def world(api_engine: Engine, alice: Account, bob: Account) -> dict[str, int]:
    """Coins, the default watchlist holding BTC and ETH, and a personal one each for alice and
    bob."""
    with api_engine.begin() as connection:
        ids = {symbol: builders.coin(connection, symbol) for symbol in ("BTC", "ETH", "SOL")}
        ids["default"] = builders.default_watchlist_id(connection)
        ids["alice"] = builders.watchlist(connection, alice.id, "alice's")
        ids["bob"] = builders.watchlist(connection, bob.id, "bob's")
        builders.asset(connection, ids["default"], ids["BTC"], 1, weight=0.6)
        builders.asset(connection, ids["default"], ids["ETH"], 2, weight=0.4)
    return ids


def test_list_shows_the_callers_suggestions_newest_first_and_filters(
    client: TestClient,
    api_engine: Engine,
    world: dict[str, int],
    admin: Account,
    alice: Account,
    bob: Account,
) -> None:
    on_default = _suggest(
        api_engine, world["default"], world["SOL"], "add", created_at=NOW - timedelta(hours=2)
    )
    on_alice = _suggest(
        api_engine,
        world["alice"],
        world["ETH"],
        "add",
        ai_layer=2,
        created_at=NOW - timedelta(hours=1),
    )
    on_bob = _suggest(
        api_engine, world["bob"], world["BTC"], "add", status="rejected", created_at=NOW
    )

    def ids(account: Account, query: str = "") -> list[int]:
        response = client.get(f"{SUGGESTIONS}{query}", headers=account.headers)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["items"]]

    assert ids(alice) == [on_alice, on_default]
    assert ids(bob) == [on_bob, on_default]
    assert ids(admin) == [on_bob, on_alice, on_default]
    assert ids(admin, "?status=rejected") == [on_bob]
    assert ids(admin, "?crypto=sol") == [on_default]
    assert ids(admin, f"?crypto={world['ETH']}") == [on_alice]
    assert ids(admin, "?ai_layer=2") == [on_alice]
    assert ids(admin, f"?watchlist_id={world['default']}") == [on_default]
    since = (NOW - timedelta(minutes=90)).isoformat().replace("+00:00", "Z")
    assert ids(alice, f"?since={since}") == [on_alice]
    assert ids(alice, "?suggestion_type=remove") == []
    first = client.get(SUGGESTIONS, headers=alice.headers).json()["items"][0]
    assert (first["symbol"], first["confidence_score"]) == ("ETH", 0.8)

    assert (
        client.get(f"{SUGGESTIONS}?watchlist_id={world['bob']}", headers=alice.headers).status_code
        == 403
    )
    assert (
        client.get(f"{SUGGESTIONS}?watchlist_id=1000000", headers=alice.headers).status_code == 404
    )
    assert client.get(f"{SUGGESTIONS}?crypto=NOPE", headers=alice.headers).status_code == 404
    for query in ("?ai_layer=9", "?status=done", "?since=yesterday"):
        assert client.get(f"{SUGGESTIONS}{query}", headers=alice.headers).status_code == 422
    assert client.get(SUGGESTIONS).status_code == 401


def test_approving_an_add_inserts_the_asset_at_its_position_once(
    client: TestClient, api_engine: Engine, world: dict[str, int], admin: Account
) -> None:
    suggestion = _suggest(
        api_engine,
        world["default"],
        world["SOL"],
        "add",
        target_position=2,
        target_weight=Decimal("0.2"),
    )
    response = _review(client, admin, suggestion)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["suggestion"]["status"] == "implemented"
    assert body["suggestion"]["reviewed_by"] == admin.id
    assert body["item"]["symbol"] == "SOL"
    # SOL takes rank 2; ETH moves down one.
    assert _assets(api_engine, world["default"]) == {
        world["BTC"]: (1, 0.6),
        world["SOL"]: (2, 0.2),
        world["ETH"]: (3, 0.4),
    }
    stored = _stored(api_engine, suggestion)
    assert stored.reviewed_at is not None and stored.implemented_at is not None
    with Session(api_engine) as session:
        activity = session.scalars(
            select(UserActivity).where(UserActivity.entity_type == "suggestion")
        ).one()
    assert (activity.user_id, activity.action, activity.entity_id) == (
        admin.id,
        "approve",
        suggestion,
    )
    assert (
        activity.details is not None and activity.details["notes"] == f"approved by {admin.email}"
    )

    twice = _review(client, admin, suggestion)
    assert twice.status_code == 409
    assert "implemented" in twice.json()["detail"]


def test_an_add_to_a_full_watchlist_is_refused_and_changes_nothing(
    client: TestClient, api_engine: Engine, world: dict[str, int], alice: Account
) -> None:
    with api_engine.begin() as connection:
        builders.asset(connection, world["alice"], world["BTC"], 1)
    client.put(
        f"/api/v1/watchlists/{world['alice']}", json={"max_assets": 1}, headers=alice.headers
    )
    suggestion = _suggest(api_engine, world["alice"], world["SOL"], "add", target_position=1)
    before = _assets(api_engine, world["alice"])

    full = _review(client, alice, suggestion)
    assert full.status_code == 409
    assert "full" in full.json()["detail"]
    assert _assets(api_engine, world["alice"]) == before
    assert _stored(api_engine, suggestion).status == "pending"
    assert _stored(api_engine, suggestion).reviewed_by is None


def test_an_add_of_a_held_asset_and_a_remove_of_a_missing_one_are_refused(
    client: TestClient, api_engine: Engine, world: dict[str, int], admin: Account
) -> None:
    held = _suggest(api_engine, world["default"], world["BTC"], "add")
    missing = _suggest(api_engine, world["default"], world["SOL"], "remove")
    for suggestion, message in ((held, "already"), (missing, "not in")):
        response = _review(client, admin, suggestion)
        assert response.status_code == 409
        assert message in response.json()["detail"]
        assert _stored(api_engine, suggestion).status == "pending"


def test_approving_a_remove_and_a_rebalance_changes_the_watchlist(
    client: TestClient, api_engine: Engine, world: dict[str, int], admin: Account
) -> None:
    remove = _suggest(api_engine, world["default"], world["BTC"], "remove")
    rebalance = _suggest(
        api_engine, world["default"], world["ETH"], "rebalance", target_weight=Decimal("0.75")
    )
    removed = _review(client, admin, remove)
    assert removed.status_code == 200
    assert removed.json()["item"] is None
    reweighted = _review(client, admin, rebalance)
    assert reweighted.status_code == 200
    assert reweighted.json()["item"]["weight"] == 0.75
    assert _assets(api_engine, world["default"]) == {world["ETH"]: (2, 0.75)}
    assert {_stored(api_engine, s).status for s in (remove, rebalance)} == {"implemented"}


def test_reject_marks_the_suggestion_and_leaves_the_watchlist(
    client: TestClient, api_engine: Engine, world: dict[str, int], alice: Account
) -> None:
    suggestion = _suggest(api_engine, world["alice"], world["SOL"], "add")
    response = _review(client, alice, suggestion, "reject")
    assert response.status_code == 200
    assert response.json()["item"] is None
    stored = _stored(api_engine, suggestion)
    assert (stored.status, stored.reviewed_by, stored.implemented_at) == (
        "rejected",
        alice.id,
        None,
    )
    assert stored.reviewed_at is not None
    assert _assets(api_engine, world["alice"]) == {}


def test_a_tier_change_is_approved_for_an_admin_to_carry_out(
    client: TestClient, api_engine: Engine, world: dict[str, int], admin: Account
) -> None:
    suggestion = _suggest(api_engine, world["default"], world["BTC"], "tier_change")
    response = _review(client, admin, suggestion)
    assert response.status_code == 200
    assert response.json()["suggestion"]["status"] == "approved"
    assert response.json()["suggestion"]["implemented_at"] is None


def test_only_a_pending_unexpired_suggestion_is_reviewed(
    client: TestClient, api_engine: Engine, world: dict[str, int], admin: Account
) -> None:
    expired = _suggest(
        api_engine, world["default"], world["SOL"], "add", expires_at=NOW - timedelta(minutes=1)
    )
    marked = _suggest(api_engine, world["default"], world["SOL"], "add", status="expired")
    for suggestion in (expired, marked):
        response = _review(client, admin, suggestion, "reject")
        assert response.status_code == 409
        assert "expired" in response.json()["detail"]
    assert _stored(api_engine, expired).status == "pending"


def test_who_may_review(
    client: TestClient,
    api_engine: Engine,
    world: dict[str, int],
    admin: Account,
    alice: Account,
    bob: Account,
) -> None:
    on_default = _suggest(api_engine, world["default"], world["SOL"], "add")
    on_bob = _suggest(api_engine, world["bob"], world["SOL"], "add")
    # The default watchlist is the administrators'; a personal one is its owner's alone.
    for suggestion, account in ((on_default, alice), (on_bob, alice), (on_bob, admin)):
        assert _review(client, account, suggestion, "reject").status_code == 403
    assert _stored(api_engine, on_bob).status == "pending"
    assert _review(client, bob, on_bob, "reject").status_code == 200

    assert _review(client, admin, 10**6, "reject").status_code == 404
    for body in ({"decision": "maybe"}, {}, {"decision": "approve", "notes": "x" * 3000}):
        assert (
            client.post(_review_url(on_default), json=body, headers=admin.headers).status_code
            == 422
        )
    assert client.post(_review_url(on_default), json={"decision": "reject"}).status_code == 401


def test_an_add_to_a_free_position_or_none_moves_nothing(
    client: TestClient, api_engine: Engine, world: dict[str, int], alice: Account
) -> None:
    with api_engine.begin() as connection:
        builders.asset(connection, world["alice"], world["BTC"], 3, weight=0.5)
    at_one = _suggest(api_engine, world["alice"], world["SOL"], "add", target_position=1)
    anywhere = _suggest(api_engine, world["alice"], world["ETH"], "add")
    assert _review(client, alice, at_one).status_code == 200
    assert _review(client, alice, anywhere).json()["item"]["position"] == 4
    assert _assets(api_engine, world["alice"]) == {
        world["SOL"]: (1, 0.0),
        world["BTC"]: (3, 0.5),
        world["ETH"]: (4, 0.0),
    }
