"""Security checks over HTTP on the real app and PostgreSQL: token lifetimes, lockout, the
password policy, no secret in any answer or log line, SQL injection in every string parameter,
CORS. That every admin route refuses a public token is tested in test_route_table.py.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from accounts import PASSWORD, Account
from config.settings import Settings
from db.schema import User, UserActivity, UserSession
from serving.api.app import API_PREFIX, create_app
from serving.services import auth

LOGIN = f"{API_PREFIX}/auth/login"
REFRESH = f"{API_PREFIX}/auth/refresh"
REGISTER = f"{API_PREFIX}/auth/register"
PROFILE = f"{API_PREFIX}/users/profile"


def _age_sessions(engine: Engine, user_id: int, **ago: timedelta) -> None:
    """Move a user's session timestamps into the past, as if time had passed."""
    values = {column: auth.now() - delta for column, delta in ago.items()}
    with Session(engine) as session, session.begin():
        session.execute(update(UserSession).where(UserSession.user_id == user_id).values(values))


def test_refresh_renews_an_expired_access_token_within_the_refresh_window(
    client: TestClient, alice: Account, api_engine: Engine
) -> None:
    _age_sessions(
        api_engine, alice.id, expires_at=timedelta(seconds=1), created_at=timedelta(days=29)
    )
    assert client.get(PROFILE, headers=alice.headers).status_code == 401
    renewed = client.post(REFRESH, json={"refresh_token": alice.refresh_token})
    assert renewed.status_code == 200, renewed.text
    headers = {"Authorization": f"Bearer {renewed.json()['access_token']}"}
    assert client.get(PROFILE, headers=headers).status_code == 200


def test_refresh_fails_after_the_refresh_window_and_ends_the_session(
    client: TestClient, alice: Account, api_engine: Engine
) -> None:
    days = Settings().refresh_token_days
    _age_sessions(api_engine, alice.id, created_at=timedelta(days=days, seconds=1))
    late = client.post(REFRESH, json={"refresh_token": alice.refresh_token})
    assert late.status_code == 401
    assert "expired" in late.json()["detail"]
    # The session is closed: its still-unexpired access token stops working too.
    assert client.get(PROFILE, headers=alice.headers).status_code == 401
    with Session(api_engine) as session:
        assert session.scalars(select(UserSession.is_active)).all() == [False]


def _login_from(
    app: FastAPI, email: str, address: str, password: str = "wrong-password-1"
) -> httpx.Response:
    with TestClient(app, client=(address, 50000), headers={"User-Agent": address}) as other:
        return other.post(LOGIN, json={"email": email, "password": password})


def _age_failures(engine: Engine, delta: timedelta) -> None:
    """Move every failed login back by `delta`, as if time had passed."""
    with Session(engine) as session, session.begin():
        for row in session.scalars(select(UserActivity).where(UserActivity.action == "failed")):
            assert row.created_at is not None
            row.created_at = row.created_at - delta


def test_an_attackers_failures_do_not_lock_the_owner_out(
    app: FastAPI, alice: Account, api_engine: Engine
) -> None:
    settings: Settings = app.state.settings
    for _ in range(settings.login_failure_limit):
        assert _login_from(app, alice.email, "10.0.0.1").status_code == 401
    # The attacker's address waits, even with the right password...
    refused = _login_from(app, alice.email, "10.0.0.1", PASSWORD)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= settings.login_delay_seconds
    assert refused.json()["retry_after"] == int(refused.headers["Retry-After"])
    # ...while the owner logs in from anywhere else, and the token answer is never cached.
    owner = _login_from(app, alice.email, "192.0.2.7", PASSWORD)
    assert owner.status_code == 200, owner.text
    assert owner.headers["Cache-Control"] == "no-store"


def test_each_further_failure_from_one_address_waits_twice_as_long(
    app: FastAPI, alice: Account, api_engine: Engine
) -> None:
    settings: Settings = app.state.settings
    delay = settings.login_delay_seconds
    for _ in range(settings.login_failure_limit):
        assert _login_from(app, alice.email, "10.0.0.1").status_code == 401
    assert _login_from(app, alice.email, "10.0.0.1").status_code == 429
    _age_failures(api_engine, timedelta(seconds=delay + 1))
    assert _login_from(app, alice.email, "10.0.0.1").status_code == 401  # one more guess
    again = _login_from(app, alice.email, "10.0.0.1")
    assert again.status_code == 429
    assert delay < int(again.headers["Retry-After"]) <= 2 * delay
    # Failures older than the window no longer count.
    _age_failures(api_engine, timedelta(minutes=settings.login_lockout_minutes, seconds=1))
    assert _login_from(app, alice.email, "10.0.0.1", PASSWORD).status_code == 200


def test_a_guess_spread_over_many_addresses_only_admits_known_addresses(
    app: FastAPI, alice: Account, api_engine: Engine
) -> None:
    settings: Settings = app.state.settings
    assert _login_from(app, alice.email, "192.0.2.7", PASSWORD).status_code == 200
    with Session(api_engine) as session, session.begin():
        for n in range(settings.login_account_failure_limit):
            session.add(
                UserActivity(
                    user_id=alice.id,
                    activity_type="login",
                    action="failed",
                    ip_address=f"10.1.{n // 250}.{n % 250 + 1}",
                )
            )
    stranger = _login_from(app, alice.email, "198.51.100.1", PASSWORD)
    assert stranger.status_code == 429
    assert int(stranger.headers["Retry-After"]) > 0
    assert _login_from(app, alice.email, "192.0.2.7", PASSWORD).status_code == 200
    # Other accounts are not affected.
    assert _login_from(app, "bob@example.com", "198.51.100.1").status_code == 401


# One password per rule of the policy (10 to 128 characters, a letter, a digit, not the name
# of the email address).
WEAK_PASSWORDS = {
    "short": "abcdef123",
    "long": "a1" * 64 + "b",
    "no digit": "only-letters-here",
    "no letter": "1234567890-42",
    "email name": "Alice-and-Zelda-2",
}


@pytest.mark.parametrize("password", WEAK_PASSWORDS.values(), ids=WEAK_PASSWORDS.keys())
def test_the_password_policy_holds_on_register_and_on_change(
    client: TestClient, alice: Account, api_engine: Engine, password: str
) -> None:
    refused = client.post(REGISTER, json={"email": "zelda@example.com", "password": password})
    assert refused.status_code == 422, refused.text
    assert isinstance(refused.json()["detail"], str | list)
    with Session(api_engine) as session:
        stored = session.scalars(select(User.password_hash).where(User.id == alice.id)).one()
    change = {"password": {"current": PASSWORD, "new": password}}
    refused = client.put(PROFILE, headers=alice.headers, json=change)
    assert refused.status_code == 422, refused.text
    with Session(api_engine) as session:
        assert (
            session.scalars(select(User.password_hash).where(User.id == alice.id)).one() == stored
        )
        assert session.scalar(select(User.id).where(User.email == "zelda@example.com")) is None
    # The boundary passes: exactly ten characters with a letter and a digit.
    fine = {"password": {"current": PASSWORD, "new": "abcdefgh12"}}
    assert client.put(PROFILE, headers=alice.headers, json=fine).status_code == 200


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_no_password_hash_token_or_secret_in_any_answer_or_log_line(
    client: TestClient, admin: Account, caplog: pytest.LogCaptureFixture
) -> None:
    """A realistic session, every log record kept: secrets only where they must be."""
    password = "Sesame-open-4711"
    caplog.set_level(logging.DEBUG)
    # SQLAlchemy keeps its own loggers at WARNING; open them too, statements included.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    answers: list[tuple[str, httpx.Response]] = []

    def call(method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = client.request(method, f"{API_PREFIX}{path}", headers=headers, **kwargs)
        answers.append((path, answer))
        return answer

    assert (
        call(
            "POST", "/auth/register", json={"email": "ada@example.com", "password": password}
        ).status_code
        == 201
    )
    assert (
        call(
            "POST", "/auth/login", json={"email": "ada@example.com", "password": "Wrong-one-0000"}
        ).status_code
        == 401
    )
    first = call(
        "POST", "/auth/login", json={"email": "ada@example.com", "password": password}
    ).json()
    second = call("POST", "/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    token = second["access_token"]
    assert call("GET", "/users/profile", token).status_code == 200
    assert call("GET", "/predictions", token).status_code == 200
    assert call("GET", "/system/activities", admin.token).status_code == 200
    assert call("GET", "/users", admin.token).status_code == 200
    assert call("POST", "/auth/logout", token).status_code == 204

    tokens = [first["access_token"], first["refresh_token"], second["access_token"]]
    tokens += [second["refresh_token"], admin.token, admin.refresh_token]
    never = [password, PASSWORD, "$argon2", *map(_digest, tokens)]
    for path, answer in answers:
        body = answer.text
        headers = " ".join(f"{name}: {value}" for name, value in answer.headers.items())
        for secret in never:
            assert secret not in body and secret not in headers, (path, secret)
        if path not in ("/auth/login", "/auth/refresh"):  # the token answer itself
            for secret in tokens:
                assert secret not in body and secret not in headers, (path, secret)
    assert len(caplog.records) > 0
    for record in caplog.records:
        line = f"{record.name} {record.getMessage()} {record.exc_text or ''}"
        for secret in (*never, *tokens):
            assert secret not in line, (record.name, secret)


INJECTIONS = ["' OR '1'='1", "1; DROP TABLE users;--", "%' --", '") OR 1=1 --']


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _accepts_strings(spec: dict[str, Any], schema: dict[str, Any]) -> bool:
    schema = _resolve(spec, schema)
    options = schema.get("anyOf", [schema])
    return any(_resolve(spec, option).get("type") == "string" for option in options)


def _sample(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A small valid value for a required field (the injected one is set afterwards)."""
    schema = _resolve(spec, schema)
    if "anyOf" in schema:
        return _sample(spec, schema["anyOf"][0])
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object":
        return {
            name: _sample(spec, schema["properties"][name]) for name in schema.get("required", [])
        }
    return {"string": "BTC", "integer": 1, "number": 1, "boolean": True, "array": []}.get(kind)


def _string_targets(spec: dict[str, Any]) -> Iterator[tuple[str, str, str, str, dict[str, Any]]]:
    """(method, path, where, name, body template) for every string parameter of every route."""
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            body: dict[str, Any] = {}
            body_schema: dict[str, Any] = {}
            if "requestBody" in operation:
                content = operation["requestBody"]["content"]["application/json"]["schema"]
                body_schema = _resolve(spec, content)
                body = _sample(spec, body_schema) or {}
            for parameter in operation.get("parameters", []):
                if _accepts_strings(spec, parameter["schema"]):
                    yield method.upper(), path, parameter["in"], parameter["name"], body
            for name, field in body_schema.get("properties", {}).items():
                if _accepts_strings(spec, field):
                    yield method.upper(), path, "body", name, body


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table: connection.scalar(text(f"SELECT count(*) FROM {table}"))
            for table in ("users", "predictions", "watchlists")
        }


@pytest.mark.parametrize("role", ["public", "admin"])
def test_sql_injection_in_every_string_parameter_is_harmless(
    app: FastAPI, client: TestClient, alice: Account, admin: Account, api_engine: Engine, role: str
) -> None:
    """As a public user (admin-only routes refuse before reading their parameters), then as
    an administrator, whose requests reach every route's queries."""
    caller = alice if role == "public" else admin
    spec = app.openapi()
    targets = list(_string_targets(spec))
    assert len(targets) >= 30, targets
    with Session(api_engine) as session:
        users_before = session.execute(
            select(User.id, User.email, User.password_hash).order_by(User.id)
        ).all()
    before = _counts(api_engine)
    failures, created, statuses = [], 0, set()
    for method, path, where, name, template in targets:
        for payload in INJECTIONS:
            url = path
            if where == "path":
                url = url.replace(f"{{{name}}}", quote(payload, safe=""))
            url = re.sub(r"\{[^}]+\}", "1", url)  # every other path parameter: id 1
            params: dict[str, str] = {}
            body = dict(template)
            if where == "query":
                params[name] = payload
            elif where == "body":
                body[name] = payload
            answer = client.request(
                method,
                url,
                params=params,
                json=body if body else None,
                headers=caller.headers,
            )
            statuses.add(answer.status_code)
            created += answer.status_code == 201
            if answer.status_code >= 500:
                failures.append(f"{method} {path} {where}:{name}={payload!r}: {answer.status_code}")
    assert not failures, failures
    assert statuses & {200, 201} and statuses & {404, 422}
    after = _counts(api_engine)
    assert all(after[table] >= before[table] for table in before), (before, after)
    assert sum(after.values()) - sum(before.values()) <= created
    with Session(api_engine) as session:
        assert (
            session.execute(select(User.id, User.email, User.password_hash).order_by(User.id)).all()
            == users_before
        )
    assert client.get(PROFILE, headers=caller.headers).status_code == 200


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "Content-Type",
}


def _preflight(app: FastAPI, origin: str) -> httpx.Response:
    with TestClient(app) as other:
        return other.options(LOGIN, headers={"Origin": origin, **PREFLIGHT})


def test_cors_is_closed_by_default(app: FastAPI) -> None:
    answer = _preflight(app, "https://evil.example.com")
    assert "access-control-allow-origin" not in answer.headers
    with TestClient(app) as other:
        plain = other.get(
            f"{API_PREFIX}/system/health", headers={"Origin": "https://evil.example.com"}
        )
    assert "access-control-allow-origin" not in plain.headers


def test_cors_allows_the_configured_origins_only(postgres_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=postgres_url,
        data_dir=tmp_path / "var",
        cors_origins=["https://app.example.com"],
    )
    app = create_app(settings)
    try:
        allowed = _preflight(app, "https://app.example.com")
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        refused = _preflight(app, "https://evil.example.com")
        assert "access-control-allow-origin" not in refused.headers
    finally:
        app.state.engine.dispose()
