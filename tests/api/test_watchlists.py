"""Watchlists and their items over HTTP: who may read and change them, and their limits."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import builders
from accounts import Account
from db.schema import UserActivity, WatchlistAsset

WATCHLISTS = "/api/v1/watchlists"


def _items_url(watchlist_id: int) -> str:
    return f"{WATCHLISTS}/{watchlist_id}/items"


def _item_url(item_id: int) -> str:
    return f"/api/v1/watchlist-items/{item_id}"


def _coins(engine: Engine, *symbols: str) -> dict[str, int]:
    with engine.begin() as connection:
        return {symbol: builders.coin(connection, symbol) for symbol in symbols}


def _default_id(engine: Engine) -> int:
    with engine.begin() as connection:
        return builders.default_watchlist_id(connection)


def _create(client: TestClient, owner: Account, **fields: object) -> dict:
    response = client.post(WATCHLISTS, json={"name": "mine", **fields}, headers=owner.headers)
    assert response.status_code == 201, response.text
    body: dict = response.json()
    return body


def _add(client: TestClient, owner: Account, watchlist_id: int, **fields: object) -> dict:
    response = client.post(_items_url(watchlist_id), json=fields, headers=owner.headers)
    assert response.status_code == 201, response.text
    body: dict = response.json()
    return body


def _listed(client: TestClient, account: Account, query: str = "") -> dict[int, dict]:
    response = client.get(f"{WATCHLISTS}{query}", headers=account.headers)
    assert response.status_code == 200, response.text
    return {watchlist["id"]: watchlist for watchlist in response.json()["items"]}


def test_list_shows_own_and_default_with_counts_and_ai_context(
    client: TestClient, api_engine: Engine, admin: Account, alice: Account, bob: Account
) -> None:
    default = _default_id(api_engine)
    coins = _coins(api_engine, "BTC", "ETH")
    # Without a personal watchlist, the AI works from the default one.
    assert _listed(client, alice)[default]["in_ai_context"] is True

    mine = _create(client, alice, name="Majors")
    _add(client, alice, mine["id"], crypto="BTC")
    _add(client, alice, mine["id"], crypto=coins["ETH"], is_active=False)
    bobs = _create(client, bob)

    seen = _listed(client, alice)
    assert set(seen) == {default, mine["id"]}
    assert seen[mine["id"]]["item_count"] == 1  # active items only
    assert seen[mine["id"]]["in_ai_context"] is True
    assert seen[default]["in_ai_context"] is False
    assert seen[default]["user_id"] is None
    assert set(_listed(client, alice, "?type=personal")) == {mine["id"]}

    assert {default, mine["id"], bobs["id"]} <= set(_listed(client, admin))
    assert set(_listed(client, admin, f"?user_id={bob.id}")) == {bobs["id"]}
    assert client.get(f"{WATCHLISTS}?user_id={bob.id}", headers=alice.headers).status_code == 403
    assert client.get(f"{WATCHLISTS}?type=shared", headers=alice.headers).status_code == 422
    assert client.get(WATCHLISTS).status_code == 401


def test_create_update_and_delete_a_personal_watchlist(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    created = _create(client, alice, name="Alts", description="small caps", max_assets=5)
    assert created["user_id"] == alice.id
    assert created["type"] == "personal"
    assert (created["max_assets"], created["item_count"]) == (5, 0)

    url = f"{WATCHLISTS}/{created['id']}"
    updated = client.put(url, json={"name": "Alt coins", "sort_order": 2}, headers=alice.headers)
    assert updated.status_code == 200
    assert (updated.json()["name"], updated.json()["sort_order"]) == ("Alt coins", 2)
    assert updated.json()["description"] == "small caps"  # left out, left alone

    assert client.delete(url, headers=alice.headers).status_code == 204
    assert client.get(_items_url(created["id"]), headers=alice.headers).status_code == 404
    assert client.put(url, json={"name": "x"}, headers=alice.headers).status_code == 404
    assert client.delete(url, headers=alice.headers).status_code == 404
    with Session(api_engine) as session:
        actions = session.scalars(
            select(UserActivity.action)
            .where(UserActivity.entity_type == "watchlist", UserActivity.user_id == alice.id)
            .order_by(UserActivity.id)
        ).all()
    assert actions == ["create", "update", "delete"]


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "x", "max_assets": 0}, {"name": "x", "type": "shared"}],
)
def test_create_refuses_invalid_input(client: TestClient, alice: Account, body: dict) -> None:
    assert client.post(WATCHLISTS, json=body, headers=alice.headers).status_code == 422


@pytest.mark.parametrize("body", [{"name": None}, {"is_active": None}, {"max_assets": -1}])
def test_update_refuses_invalid_input(client: TestClient, alice: Account, body: dict) -> None:
    mine = _create(client, alice)
    response = client.put(f"{WATCHLISTS}/{mine['id']}", json=body, headers=alice.headers)
    assert response.status_code == 422


def test_only_one_default_watchlist_and_only_admins_create_it(
    client: TestClient, admin: Account, alice: Account
) -> None:
    body = {"name": "Another default", "type": "default"}
    assert client.post(WATCHLISTS, json=body, headers=alice.headers).status_code == 403
    second = client.post(WATCHLISTS, json=body, headers=admin.headers)
    assert second.status_code == 409
    assert "only one" in second.json()["detail"]


def test_default_watchlist_is_read_only_to_alice_and_managed_by_admins(
    client: TestClient, api_engine: Engine, admin: Account, alice: Account
) -> None:
    default = _default_id(api_engine)
    _coins(api_engine, "BTC")
    url = f"{WATCHLISTS}/{default}"
    refused = client.put(url, json={"name": "Mine now"}, headers=alice.headers)
    assert refused.status_code == 403
    assert "administrators" in refused.json()["detail"]
    assert client.delete(url, headers=alice.headers).status_code == 403
    assert (
        client.post(_items_url(default), json={"crypto": "BTC"}, headers=alice.headers).status_code
        == 403
    )

    item = _add(client, admin, default, crypto="btc", weight=0.5)
    assert (item["symbol"], item["position"], item["added_by"]) == ("BTC", 1, admin.id)
    listed = client.get(_items_url(default), headers=alice.headers)
    assert [i["id"] for i in listed.json()["items"]] == [item["id"]]
    assert (
        client.put(_item_url(item["id"]), json={"weight": 0.1}, headers=alice.headers).status_code
        == 403
    )
    assert client.delete(_item_url(item["id"]), headers=alice.headers).status_code == 403
    renamed = client.put(url, json={"description": "curated"}, headers=admin.headers)
    assert renamed.status_code == 200


def test_alice_cannot_see_or_change_bobs_watchlist(
    client: TestClient, api_engine: Engine, alice: Account, bob: Account
) -> None:
    _coins(api_engine, "BTC")
    bobs = _create(client, bob)
    item = _add(client, bob, bobs["id"], crypto="BTC")
    url = f"{WATCHLISTS}/{bobs['id']}"
    for response in (
        client.get(_items_url(bobs["id"]), headers=alice.headers),
        client.put(url, json={"name": "taken"}, headers=alice.headers),
        client.delete(url, headers=alice.headers),
        client.post(_items_url(bobs["id"]), json={"crypto": "BTC"}, headers=alice.headers),
        client.put(_item_url(item["id"]), json={"weight": 1}, headers=alice.headers),
        client.delete(_item_url(item["id"]), headers=alice.headers),
    ):
        assert response.status_code == 403, response.text
        assert "another user" in response.json()["detail"]
    assert bobs["id"] not in _listed(client, alice)
    assert client.get(_items_url(bobs["id"]), headers=bob.headers).json()["total"] == 1


def test_items_keep_their_order_and_the_limits(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    coins = _coins(api_engine, "BTC", "ETH", "SOL", "ADA")
    mine = _create(client, alice, max_assets=3)
    url = _items_url(mine["id"])
    btc = _add(client, alice, mine["id"], crypto="BTC", weight=0.25, notes="core")
    eth = _add(client, alice, mine["id"], crypto="ETH", position=5)
    sol = _add(client, alice, mine["id"], crypto=str(coins["SOL"]))
    assert (btc["position"], eth["position"], sol["position"]) == (1, 5, 6)
    assert (btc["weight"], btc["notes"], sol["symbol"]) == (0.25, "core", "SOL")

    listed = client.get(url, headers=alice.headers).json()
    assert [item["symbol"] for item in listed["items"]] == ["BTC", "ETH", "SOL"]
    assert listed["total"] == 3

    full = client.post(url, json={"crypto": "ADA"}, headers=alice.headers)
    assert full.status_code == 409
    assert "full" in full.json()["detail"]
    again = client.post(url, json={"crypto": "BTC", "is_active": False}, headers=alice.headers)
    assert again.status_code == 409
    assert "already" in again.json()["detail"]
    # An inactive item does not count towards max_assets, but still holds its position.
    taken = client.post(
        url, json={"crypto": "ADA", "position": 5, "is_active": False}, headers=alice.headers
    )
    assert taken.status_code == 409
    assert "position 5" in taken.json()["detail"]
    _add(client, alice, mine["id"], crypto="ADA", is_active=False)

    unknown = client.post(url, json={"crypto": "NOPE"}, headers=alice.headers)
    assert unknown.status_code == 404
    for body in ({"crypto": "BTC", "weight": 1.5}, {"crypto": "BTC", "position": 0}, {}):
        assert client.post(url, json=body, headers=alice.headers).status_code == 422
    assert (
        client.post(_items_url(10**6), json={"crypto": "BTC"}, headers=alice.headers).status_code
        == 404
    )
    assert client.get(_items_url(10**6), headers=alice.headers).status_code == 404


def test_update_and_delete_items_within_the_limits(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    _coins(api_engine, "BTC", "ETH", "SOL")
    mine = _create(client, alice, max_assets=2)
    btc = _add(client, alice, mine["id"], crypto="BTC")
    eth = _add(client, alice, mine["id"], crypto="ETH")
    sol = _add(client, alice, mine["id"], crypto="SOL", is_active=False)

    moved = client.put(
        _item_url(btc["id"]), json={"position": 7, "weight": 0.6}, headers=alice.headers
    )
    assert moved.status_code == 200
    assert (moved.json()["position"], moved.json()["weight"]) == (7, 0.6)
    clash = client.put(_item_url(eth["id"]), json={"position": 7}, headers=alice.headers)
    assert clash.status_code == 409
    assert "taken" in clash.json()["detail"]
    assert (
        client.put(_item_url(btc["id"]), json={"position": 7}, headers=alice.headers).status_code
        == 200
    )
    reactivate = client.put(_item_url(sol["id"]), json={"is_active": True}, headers=alice.headers)
    assert reactivate.status_code == 409
    lower = client.put(f"{WATCHLISTS}/{mine['id']}", json={"max_assets": 1}, headers=alice.headers)
    assert lower.status_code == 409
    for body in ({"weight": None}, {"weight": -0.1}, {"position": 0}, {"is_active": None}):
        assert client.put(_item_url(eth["id"]), json=body, headers=alice.headers).status_code == 422

    assert client.delete(_item_url(eth["id"]), headers=alice.headers).status_code == 204
    assert (
        client.put(
            _item_url(sol["id"]), json={"is_active": True}, headers=alice.headers
        ).status_code
        == 200
    )
    assert (
        client.put(_item_url(eth["id"]), json={"weight": 0.1}, headers=alice.headers).status_code
        == 404
    )
    assert client.delete(_item_url(eth["id"]), headers=alice.headers).status_code == 404
    with Session(api_engine) as session:
        left = session.scalars(
            select(WatchlistAsset.position).where(WatchlistAsset.watchlist_id == mine["id"])
        ).all()
    assert sorted(left) == [3, 7]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", WATCHLISTS),
        ("POST", WATCHLISTS),
        ("PUT", f"{WATCHLISTS}/1"),
        ("DELETE", f"{WATCHLISTS}/1"),
        ("GET", _items_url(1)),
        ("POST", _items_url(1)),
        ("PUT", _item_url(1)),
        ("DELETE", _item_url(1)),
    ],
)
def test_every_watchlist_route_needs_a_token(client: TestClient, method: str, path: str) -> None:
    assert client.request(method, path, json={}).status_code == 401
