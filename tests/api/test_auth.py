"""Accounts and sessions over HTTP: tokens are opaque, stored hashed, expire and revoke."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from accounts import PASSWORD, Account
from db.schema import User, UserActivity, UserSession
from serving.services import auth
from serving.services.security import token_digest

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
PROFILE = "/api/v1/users/profile"


def _login(client: TestClient, email: str, password: str = PASSWORD) -> dict:
    response = client.post(LOGIN, json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def test_register_login_and_profile(client: TestClient, api_engine: Engine) -> None:
    created = client.post(REGISTER, json={"email": "Ada@Example.com", "password": PASSWORD})
    assert created.status_code == 201
    assert created.json()["email"] == "ada@example.com"
    assert created.json()["role"] == "public"
    assert "password_hash" not in created.json()

    tokens = _login(client, "ada@example.com")
    profile = client.get(PROFILE, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert profile.status_code == 200
    assert profile.json()["login_count"] == 1
    assert profile.json()["last_login"] is not None

    with Session(api_engine) as session:
        stored = session.scalars(select(UserSession)).one()
        user = session.scalars(select(User)).one()
    # Only digests are stored; the password is an argon2 hash.
    assert stored.session_token == token_digest(tokens["access_token"])
    assert tokens["access_token"] not in stored.session_token
    assert stored.refresh_token == token_digest(tokens["refresh_token"])
    assert user.password_hash.startswith("$argon2")


def test_register_refuses_weak_password_duplicate_email_and_bad_email(client: TestClient) -> None:
    weak = client.post(REGISTER, json={"email": "a@example.com", "password": "short1"})
    assert weak.status_code == 422
    assert "characters" in weak.json()["detail"]
    no_digit = client.post(REGISTER, json={"email": "a@example.com", "password": "onlyletters"})
    assert no_digit.status_code == 422
    assert (
        client.post(REGISTER, json={"email": "a@example.com", "password": PASSWORD}).status_code
        == 201
    )
    again = client.post(REGISTER, json={"email": "A@example.com", "password": PASSWORD})
    assert again.status_code == 409
    assert (
        client.post(REGISTER, json={"email": "not-an-email", "password": PASSWORD}).status_code
        == 422
    )


def test_wrong_password_is_401_and_repeated_failures_lock_out(
    client: TestClient, alice: Account
) -> None:
    for _ in range(5):
        wrong = client.post(LOGIN, json={"email": alice.email, "password": "wrong-password-1"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Bearer"
    locked = client.post(LOGIN, json={"email": alice.email, "password": PASSWORD})
    assert locked.status_code == 429
    unknown = client.post(LOGIN, json={"email": "nobody@example.com", "password": PASSWORD})
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == "wrong email or password"


def test_missing_invalid_and_expired_tokens_are_401(
    client: TestClient, alice: Account, api_engine: Engine
) -> None:
    assert client.get(PROFILE).status_code == 401
    bogus = client.get(PROFILE, headers={"Authorization": "Bearer nonsense"})
    assert bogus.status_code == 401
    with Session(api_engine) as session, session.begin():
        session.execute(
            update(UserSession)
            .where(UserSession.user_id == alice.id)
            .values(expires_at=auth.now() - timedelta(seconds=1))
        )
    expired = client.get(PROFILE, headers=alice.headers)
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]


def test_logout_revokes_token_and_refresh_token(client: TestClient, alice: Account) -> None:
    assert client.post("/api/v1/auth/logout", headers=alice.headers).status_code == 204
    assert client.get(PROFILE, headers=alice.headers).status_code == 401
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert refreshed.status_code == 401


def test_refresh_rotates_the_pair(client: TestClient, alice: Account) -> None:
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["access_token"] != alice.token
    assert client.get(PROFILE, headers=alice.headers).status_code == 401
    headers = {"Authorization": f"Bearer {new['access_token']}"}
    assert client.get(PROFILE, headers=headers).status_code == 200
    reused = client.post("/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert reused.status_code == 401


def test_profile_update_and_password_change_revokes_other_sessions(
    client: TestClient, alice: Account, api_engine: Engine
) -> None:
    other = _login(client, alice.email)
    changed = client.put(
        PROFILE,
        headers=alice.headers,
        json={
            "first_name": "Alice",
            "timezone": "Europe/Berlin",
            "password": {"current": PASSWORD, "new": "another-secret-77"},
        },
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["first_name"] == "Alice"
    assert client.get(PROFILE, headers=alice.headers).status_code == 200
    other_headers = {"Authorization": f"Bearer {other['access_token']}"}
    assert client.get(PROFILE, headers=other_headers).status_code == 401
    assert _login(client, alice.email, "another-secret-77")["access_token"]

    bad_zone = client.put(PROFILE, headers=alice.headers, json={"timezone": "Mars/Olympus"})
    assert bad_zone.status_code == 422
    wrong_current = client.put(
        PROFILE,
        headers=alice.headers,
        json={"password": {"current": "nope", "new": "x" * 12 + "1"}},
    )
    assert wrong_current.status_code == 401
    with Session(api_engine) as session:
        kinds = session.execute(
            select(UserActivity.activity_type, UserActivity.action).where(
                UserActivity.user_id == alice.id
            )
        ).all()
    assert ("profile_update", "update") in kinds
    assert ("login", "success") in kinds


def test_notifications_are_the_callers_own(
    client: TestClient, alice: Account, bob: Account, api_engine: Engine
) -> None:
    with api_engine.begin() as connection:
        ids = [
            connection.execute(
                text(
                    "INSERT INTO notifications (user_id, notification_type, title, message) "
                    "VALUES (:user, 'system', :title, 'hello') RETURNING id"
                ),
                {"user": user, "title": title},
            ).scalar_one()
            for user, title in ((alice.id, "first"), (alice.id, "second"), (bob.id, "bob's"))
        ]
    listed = client.get("/api/v1/users/notifications", headers=alice.headers)
    assert listed.status_code == 200
    assert [item["title"] for item in listed.json()["items"]] == ["second", "first"]
    assert listed.json()["total"] == 2
    read = client.put(f"/api/v1/notifications/{ids[0]}/read", headers=alice.headers)
    assert read.status_code == 200
    assert read.json()["status"] == "read"
    unread = client.get("/api/v1/users/notifications?status=unread", headers=alice.headers)
    assert [item["title"] for item in unread.json()["items"]] == ["second"]
    assert (
        client.put(f"/api/v1/notifications/{ids[2]}/read", headers=alice.headers).status_code == 403
    )
    assert client.put("/api/v1/notifications/999999/read", headers=alice.headers).status_code == 404
    assert (
        client.get("/api/v1/users/notifications?limit=0", headers=alice.headers).status_code == 422
    )


def test_user_list_is_for_admins(client: TestClient, admin: Account, alice: Account) -> None:
    assert client.get("/api/v1/users", headers=alice.headers).status_code == 403
    listed = client.get("/api/v1/users", headers=admin.headers)
    assert listed.status_code == 200
    assert {item["email"] for item in listed.json()["items"]} == {admin.email, alice.email}
