"""Hostile input over HTTP, on SQLite and on PostgreSQL (issue 17): every probe that once
answered 500 now answers 4xx, and nothing is stored that a later read cannot return.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from accounts import PASSWORD, Account
from builders import coin, insert, signal, watchlist
from config.settings import Settings
from serving.api.app import API_PREFIX, create_app
from serving.schemas.common import Patch
from serving.services import auth

HUGE_ID = 99999999999999999999  # past 2^63 - 1: SQLite cannot even bind it
ERROR_BODY_BOUND = 4096


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[FastAPI]:
    """Overrides the PostgreSQL-only app of conftest: every test here runs on both dialects."""
    application = create_app(Settings(database_url=database_url, data_dir=tmp_path / "var"))
    yield application
    application.state.engine.dispose()


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"a": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _raw_json(value: Any, depth: int) -> str:
    """JSON text of an object nested `depth` deep (json.dumps itself recurses too deep)."""
    return '{"a": ' * depth + json.dumps(value) + "}" * depth


def _assert_bounded(answer: Any) -> None:
    assert len(answer.content) <= ERROR_BODY_BOUND, answer.content[:200]


# --------------------------------------------------------------------- 1. deep JSON


def test_deep_json_is_refused_in_risk_rules_and_preferences(
    client: TestClient, app: FastAPI, alice: Account, admin: Account
) -> None:
    deep = _raw_json(1, 600)
    risk = client.put(
        f"{API_PREFIX}/user/{alice.id}/risk-profile",
        content=f'{{"risk_rules": {deep}}}',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert risk.status_code == 422, risk.text
    assert "deep" in risk.text
    _assert_bounded(risk)
    preferences = client.put(
        f"{API_PREFIX}/users/profile",
        content=f'{{"preferences": {deep}}}',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert preferences.status_code == 422, preferences.text
    too_big = {"risk_rules": {f"k{i}": "x" * 100 for i in range(200)}}
    refused = client.put(
        f"{API_PREFIX}/user/{alice.id}/risk-profile", json=too_big, headers=alice.headers
    )
    assert refused.status_code == 422 and "bytes" in refused.text
    fine = client.put(
        f"{API_PREFIX}/user/{alice.id}/risk-profile",
        json={"risk_rules": _nested(app.state.settings.max_json_depth)},
        headers=alice.headers,
    )
    assert fine.status_code == 200, fine.text
    for path in (f"/user/{alice.id}/risk-profile", "/system/activities", "/users"):
        assert client.get(API_PREFIX + path, headers=admin.headers).status_code == 200


def test_deep_json_already_stored_still_reads(
    client: TestClient, api_engine: Engine, alice: Account, admin: Account
) -> None:
    """Rows written before the limit (or by hand) must not make a read answer 500."""
    deep = _raw_json(1, 600)
    with api_engine.begin() as connection:
        connection.execute(
            text("UPDATE users SET preferences = :deep WHERE id = :id"),
            {"deep": deep, "id": alice.id},
        )
        insert(connection, "risk_management", user_id=alice.id, risk_rules=deep)
        insert(
            connection,
            "user_activities",
            user_id=alice.id,
            activity_type="risk_profile",
            action="update",
            details=deep,
        )
    for path, token in (
        (f"/user/{alice.id}/risk-profile", alice.headers),
        ("/users/profile", alice.headers),
        ("/users", admin.headers),
        ("/system/activities", admin.headers),
    ):
        answer = client.get(API_PREFIX + path, headers=token)
        assert answer.status_code == 200, (path, answer.text[:300])
        assert "nested deeper than" in answer.text


def test_the_json_limits_are_settings(database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path / "var",
        max_json_depth=3,
        max_json_bytes=100,
    )
    application = create_app(settings)
    try:
        with Session(application.state.engine) as session:
            user = auth.create_user(session, "carol@example.com", PASSWORD)
            session.commit()
            user_id = user.id
        client = TestClient(application)
        login = {"email": "carol@example.com", "password": PASSWORD}
        token = client.post(f"{API_PREFIX}/auth/login", json=login).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{API_PREFIX}/user/{user_id}/risk-profile"
        deep = client.put(url, json={"risk_rules": _nested(4)}, headers=headers)
        assert deep.status_code == 422 and "at most 3 levels" in deep.text, deep.text
        large = client.put(url, json={"risk_rules": {"k": "x" * 100}}, headers=headers)
        assert large.status_code == 422 and "at most 100" in large.text, large.text
        fine = client.put(url, json={"risk_rules": _nested(3)}, headers=headers)
        assert fine.status_code == 200, fine.text
        preferences = client.put(
            f"{API_PREFIX}/users/profile", json={"preferences": _nested(4)}, headers=headers
        )
        assert preferences.status_code == 422, preferences.text
    finally:
        application.state.engine.dispose()


# --------------------------------------------------------------------- 2. body size


def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(
    client: TestClient, app: FastAPI
) -> None:
    limit = app.state.settings.max_request_bytes
    body = b'{"email": "a@example.com", "password": "' + b"x" * limit + b'"}'
    declared = client.post(
        f"{API_PREFIX}/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413, declared.text[:300]
    _assert_bounded(declared)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    streamed = client.post(
        f"{API_PREFIX}/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413, streamed.text[:300]
    assert client.get(f"{API_PREFIX}/system/health").status_code == 200


# --------------------------------------------------------------------- 3. error bodies


def test_a_lone_surrogate_is_422_not_500(client: TestClient, alice: Account) -> None:
    for path, raw, headers in (
        ("/auth/login", '{"email": "\\ud800", "password": "x"}', {}),
        ("/auth/login", '{"email": "a\\udfff@example.com", "password": "x"}', {}),
        ("/auth/register", '{"email": "b@example.com", "password": "\\ud800abcdefgh1"}', {}),
        ("/watchlists", '{"name": "\\ud800"}', alice.headers),
        ("/users/profile", '{"preferences": {"\\ud800": 1}}', alice.headers),
    ):
        method = "PUT" if path == "/users/profile" else "POST"
        answer = client.request(
            method,
            API_PREFIX + path,
            content=raw,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert answer.status_code == 422, (path, answer.text)
        assert "surrogate" in answer.text
        _assert_bounded(answer)


def test_validation_errors_never_echo_passwords_or_large_inputs(client: TestClient) -> None:
    secret = "Hunter-2-" + "s" * 200  # too long: refused by the schema, with its input
    answer = client.post(
        f"{API_PREFIX}/auth/register", json={"email": "c@example.com", "password": secret}
    )
    assert answer.status_code == 422
    assert "Hunter-2" not in answer.text
    login = client.post(f"{API_PREFIX}/auth/login", json={"email": 5, "password": "Hunter-3-x"})
    assert login.status_code == 422 and "Hunter-3" not in login.text
    large = client.post(
        f"{API_PREFIX}/auth/register",
        json={"email": "d@example.com", "password": PASSWORD, "first_name": "n" * 100_000},
    )
    assert large.status_code == 422
    _assert_bounded(large)
    many = client.post(f"{API_PREFIX}/auth/login", json=[{"email": i} for i in range(5000)])
    assert many.status_code == 422
    _assert_bounded(many)


# --------------------------------------------------------------------- 4. huge ids


@pytest.mark.parametrize(
    "path",
    [
        f"/predictions/{HUGE_ID}",
        f"/predictions/{HUGE_ID}/accuracy",
        f"/signals/{HUGE_ID}",
        f"/watchlists/{HUGE_ID}/items",
        f"/sectors/{HUGE_ID}",
        f"/system/models/{HUGE_ID}",
        f"/user/{HUGE_ID}/risk-profile",
        f"/predictions?watchlist_id={HUGE_ID}",
        f"/suggestions?watchlist_id={HUGE_ID}",
        f"/system/activities?user_id={HUGE_ID}",
        f"/system/activities?entity_id={HUGE_ID}",
        f"/user/{2**31}/risk-profile",
    ],
)
def test_ids_past_the_integer_columns_are_422(
    client: TestClient, admin: Account, path: str
) -> None:
    answer = client.get(API_PREFIX + path, headers=admin.headers)
    assert answer.status_code == 422, answer.text


def test_ids_past_the_integer_columns_in_bodies_are_422_or_404(
    client: TestClient, alice: Account
) -> None:
    for body in (
        {"crypto": HUGE_ID},
        {"crypto": "BTC", "watchlist_id": HUGE_ID},
        {"crypto": "BTC", "watchlist_id": 2**31},
    ):
        answer = client.post(f"{API_PREFIX}/predictions", json=body, headers=alice.headers)
        assert answer.status_code == 422, (body, answer.text)
    as_text = client.post(
        f"{API_PREFIX}/predictions", json={"crypto": str(HUGE_ID)}, headers=alice.headers
    )
    assert as_text.status_code == 404, as_text.text
    listed = client.get(
        f"{API_PREFIX}/predictions", params={"crypto": str(HUGE_ID)}, headers=alice.headers
    )
    assert listed.status_code == 200 and listed.json()["total"] == 0


# --------------------------------------------------------------------- 5. Unicode digits


def test_unicode_digits_as_crypto_are_symbols_not_ids(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    with api_engine.begin() as connection:
        coin(connection, "BTC")
    for path in ("/predictions", "/signals", "/suggestions"):
        answer = client.get(API_PREFIX + path, params={"crypto": "²"}, headers=alice.headers)
        assert answer.status_code in (200, 404), (path, answer.text)
        if answer.status_code == 200:
            assert answer.json()["total"] == 0
    for arabic in ("٣", "²"):
        answer = client.post(
            f"{API_PREFIX}/predictions", json={"crypto": arabic}, headers=alice.headers
        )
        assert answer.status_code == 404, answer.text


# --------------------------------------------------------------------- 6. tiny amounts


def test_amounts_below_the_stored_precision_are_422(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    with api_engine.begin() as connection:
        crypto_id = coin(connection, "BTC")
        signal_id = signal(connection, crypto_id)
    tiny = client.post(
        f"{API_PREFIX}/signals/{signal_id}/execute",
        json={"portfolio_value": 1e-9, "position_size": 1e-9},
        headers=alice.headers,
    )
    assert tiny.status_code == 422, tiny.text
    limit = client.put(
        f"{API_PREFIX}/user/{alice.id}/risk-profile",
        json={"max_position_size": 1e-9},
        headers=alice.headers,
    )
    assert limit.status_code == 422, limit.text
    smallest = client.post(
        f"{API_PREFIX}/signals/{signal_id}/execute",
        json={"portfolio_value": 1e-8, "position_size": 1e-8},
        headers=alice.headers,
    )
    assert smallest.status_code in (201, 409), smallest.text


# --------------------------------------------------------------------- 7. password guessing


def test_password_guessing_through_the_profile_is_throttled(
    client: TestClient, app: FastAPI, alice: Account
) -> None:
    limit = app.state.settings.login_failure_limit
    wrong = {"password": {"current": "not-it-0000", "new": "brand-new-secret-9"}}
    for _ in range(limit):
        answer = client.put(f"{API_PREFIX}/users/profile", json=wrong, headers=alice.headers)
        assert answer.status_code == 401, answer.text
    throttled = client.put(f"{API_PREFIX}/users/profile", json=wrong, headers=alice.headers)
    assert throttled.status_code == 429, throttled.text
    assert int(throttled.headers["Retry-After"]) > 0
    right = {"password": {"current": PASSWORD, "new": "brand-new-secret-9"}}
    still = client.put(f"{API_PREFIX}/users/profile", json=right, headers=alice.headers)
    assert still.status_code == 429
    # The failed guesses did not change anything else.
    names = client.put(
        f"{API_PREFIX}/users/profile", json={"first_name": "Al", **wrong}, headers=alice.headers
    )
    assert names.status_code == 429
    assert (
        client.get(f"{API_PREFIX}/users/profile", headers=alice.headers).json()["first_name"]
        is None
    )


# --------------------------------------------------------------------- schema honesty


def test_put_predictions_batch_is_405_not_a_prediction_id(client: TestClient) -> None:
    """`batch` is no prediction id: the path has POST only, whatever the method."""
    for method in ("GET", "PUT", "DELETE"):
        answer = client.request(method, f"{API_PREFIX}/predictions/batch", json={})
        assert answer.status_code == 405, (method, answer.text)
        assert answer.headers["Allow"] == "POST"
    for path, allowed in (
        ("/predictions", "GET, POST"),
        ("/predictions/7", "GET, PUT"),
        ("/watchlists/7", "DELETE, PUT"),
        ("/users/profile", "GET, PUT"),
        ("/sectors/rotation", "GET"),
    ):
        answer = client.patch(API_PREFIX + path, json={})
        assert answer.status_code == 405, (path, answer.text)
        assert answer.headers["Allow"] == allowed, path


def test_fields_that_may_not_be_null_are_not_nullable_in_the_schema(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    patches = Patch.__subclasses__()
    assert {patch.__name__ for patch in patches} >= {"WatchlistUpdate", "ItemUpdate"}
    for patch in patches:
        properties = schemas[patch.__name__]["properties"]
        for name in patch.not_null:
            assert "null" not in json.dumps(properties[name]), (patch.__name__, name)
            assert "type" in properties[name], (patch.__name__, name)
    with api_engine.begin() as connection:
        watchlist_id = watchlist(connection, alice.id)
    url = f"{API_PREFIX}/watchlists/{watchlist_id}"
    for name in ("name", "is_active", "max_assets"):
        answer = client.put(url, json={name: None}, headers=alice.headers)
        assert answer.status_code == 422, (name, answer.text)
        assert "may not be null" in answer.text
    # A field the schema declares nullable takes null: it clears the value.
    cleared = client.put(url, json={"description": None}, headers=alice.headers)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["description"] is None


@pytest.mark.parametrize(
    "query",
    [
        "/watchlists?is_active=0",
        "/watchlists?is_active=yes",
        "/watchlists?is_active=True",
        "/sectors?is_active=1",
        "/predictions?realized=on",
        "/predictions?mine=1",
        "/predictions?limit=5.0",
        "/predictions?offset=1_0",
        "/predictions?layer=%203",
        "/predictions/1.0",
        "/signals?since=0.5",
        "/signals?until=1700000000",
        "/suggestions?ai_layer=2.0",
    ],
)
def test_lenient_query_values_are_422(client: TestClient, alice: Account, query: str) -> None:
    """Booleans are `true` or `false`, integers decimal digits and times ISO 8601, as the
    schema declares them; pydantic alone took `0`, `yes`, `5.0`, `1_0` and Unix times."""
    answer = client.get(API_PREFIX + query, headers=alice.headers)
    assert answer.status_code in (404, 422), answer.text
    if answer.status_code == 404:  # no route: `1.0` is not an id
        assert query == "/predictions/1.0"


def test_the_strict_query_values_still_work(client: TestClient, alice: Account) -> None:
    for query in (
        "/watchlists?is_active=true",
        "/sectors?is_active=false",
        "/predictions?realized=false&mine=true&limit=5&offset=0&layer=3",
        "/signals?since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00%2B01:00",
    ):
        answer = client.get(API_PREFIX + query, headers=alice.headers)
        assert answer.status_code == 200, (query, answer.text)


def test_bodies_take_the_json_types_of_the_schema_only(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    """`crypto: true` once meant coin 1 and `is_active: 0` false; now they are 422."""
    with api_engine.begin() as connection:
        coin(connection, "BTC")
        watchlist_id = watchlist(connection, alice.id)
    for path, body in (
        ("/predictions", {"crypto": True}),
        ("/predictions", {"crypto": "BTC", "horizon_hours": "24"}),
        ("/predictions/batch", {"cryptos": [True]}),
        ("/watchlists", {"name": "x", "is_active": 0}),
        ("/watchlists", {"name": "x", "max_assets": "5"}),
        ("/watchlists", {"name": 5}),
        (f"/watchlists/{watchlist_id}/items", {"crypto": "BTC", "weight": "0.5"}),
        (f"/watchlists/{watchlist_id}/items", {"crypto": "BTC", "is_active": "true"}),
    ):
        answer = client.post(API_PREFIX + path, json=body, headers=alice.headers)
        assert answer.status_code == 422, (path, body, answer.text)
    for name, value in (("is_public", 1), ("sort_order", "2"), ("max_assets", True)):
        answer = client.put(
            f"{API_PREFIX}/watchlists/{watchlist_id}", json={name: value}, headers=alice.headers
        )
        assert answer.status_code == 422, (name, value, answer.text)
    item = client.post(
        f"{API_PREFIX}/watchlists/{watchlist_id}/items",
        json={"crypto": "BTC", "weight": 1},  # an integer is a number
        headers=alice.headers,
    )
    assert item.status_code == 201, item.text


# --------------------------------------------------------------------- over real HTTP


@pytest.fixture
def live_server(sqlite_url: str, tmp_path: Path) -> Iterator[str]:
    """`cryptopredict serve` on loopback (SQLite), with a one-second body read time-out."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {
        **os.environ,
        "DATABASE_URL": sqlite_url,
        "DATA_DIR": str(tmp_path / "var"),
        "BODY_READ_TIMEOUT_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cryptopredict", "serve", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
            try:
                httpx.get(f"{base}/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _raw_request(base: str, head: str, body: bytes, read_after: float) -> bytes:
    """Send a request head and part of a body, then read what the server answers."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_after) as connection:
        connection.sendall(head.encode() + body)
        try:
            return connection.recv(65536)
        except TimeoutError:
            return b""


def test_a_50_mb_body_is_refused_while_health_answers_at_once(live_server: str) -> None:
    health = f"{live_server}{API_PREFIX}/system/health"
    assert httpx.get(health).status_code == 200  # the check itself ran (memoised 30 s)
    answers: dict[str, int] = {}

    def flood() -> Iterator[bytes]:
        chunk = b"[" + b"1," * 524_288
        for _ in range(50):
            yield chunk

    def send() -> None:
        try:
            answer = httpx.post(
                f"{live_server}{API_PREFIX}/auth/login",
                content=flood(),
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            answers["flood"] = answer.status_code
        except httpx.HTTPError:  # the server may close the connection mid-upload
            answers["flood"] = 413

    sender = threading.Thread(target=send)
    sender.start()
    slowest = 0.0
    with httpx.Client() as client:
        while sender.is_alive():
            started = time.perf_counter()
            assert client.get(health).status_code == 200
            slowest = max(slowest, time.perf_counter() - started)
            time.sleep(0.01)
    sender.join()
    assert answers["flood"] == 413
    # Health answers in milliseconds on a quiet machine, and within 0.13 s on one running
    # other test workers; parsing the 50 MB array in the loop would hold it for over a second.
    assert slowest < 0.3, slowest


def test_a_declared_body_that_never_arrives_is_refused(live_server: str) -> None:
    path = f"{API_PREFIX}/auth/login"
    huge = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10**9}\r\n\r\n"
    )
    started = time.monotonic()
    assert b" 413 " in _raw_request(live_server, huge, b'{"email"', read_after=5)
    assert time.monotonic() - started < 2
    stalled = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n"
    )
    answer = _raw_request(live_server, stalled, b'{"email"', read_after=5)
    assert b" 408 " in answer, answer
