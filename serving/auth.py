"""Accounts and sessions on the spec's `users` and `user_sessions` tables.

A login opens a `user_sessions` row holding the digests of two tokens: the bearer token
(expires after `access_token_minutes`) and the refresh token. Refreshing rotates both in the
same row; the row's age bounds the refresh chain at `refresh_token_days`, so a stolen refresh
token is not valid forever. Logout deactivates the row, which revokes both tokens at once.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cryptopredict.settings import Settings
from db.schema import User, UserActivity, UserSession
from serving.errors import Conflict, TooManyRequests, Unauthorized, Unprocessable
from serving.security import (
    hash_password,
    new_token,
    password_problem,
    token_digest,
    verify_password,
)

# Verifying against this when the email is unknown keeps both answers equally slow.
_DUMMY_HASH = hash_password("not-a-password-0")


@dataclass(frozen=True)
class Client:
    """Who is calling: recorded on sessions and activities."""

    ip_address: str | None
    user_agent: str | None

    @classmethod
    def of(cls, host: str | None, user_agent: str | None) -> Client:
        try:
            address = str(ipaddress.ip_address(host)) if host else None
        except ValueError:
            address = None
        return cls(address, (user_agent or "")[:500] or None)


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: datetime
    session_id: int


def now() -> datetime:
    return datetime.now(UTC)


def create_user(
    session: Session,
    email: str,
    password: str,
    *,
    role: str = "public",
    first_name: str | None = None,
    last_name: str | None = None,
) -> User:
    """A new account; refuses a weak password and an email already registered."""
    email = email.strip().lower()
    problem = password_problem(password, email)
    if problem:
        raise Unprocessable(problem)
    if session.scalar(select(User.id).where(func.lower(User.email) == email)) is not None:
        raise Conflict(f"an account with email {email} already exists")
    user = User(
        email=email,
        password_hash=hash_password(password),
        role=role,
        first_name=first_name,
        last_name=last_name,
    )
    session.add(user)
    session.flush()
    return user


def login(
    session: Session, settings: Settings, email: str, password: str, client: Client
) -> Tokens:
    """Check the password and open a session; repeated failures lock the account for a while."""
    email = email.strip().lower()
    user = session.scalars(select(User).where(func.lower(User.email) == email)).one_or_none()
    if user is None:
        verify_password(_DUMMY_HASH, password)
        raise Unauthorized("wrong email or password")
    moment = now()
    if _recent_failures(session, settings, user, moment) >= settings.login_failure_limit:
        raise TooManyRequests(
            f"too many failed logins; try again in {settings.login_lockout_minutes} minutes"
        )
    if not verify_password(user.password_hash, password) or not user.is_active:
        session.add(
            UserActivity(
                user_id=user.id,
                activity_type="login",
                action="failed",
                details={"reason": "inactive" if user.is_active is False else "password"},
                ip_address=client.ip_address,
                user_agent=client.user_agent,
            )
        )
        session.commit()
        raise Unauthorized("wrong email or password")
    tokens = _open_session(session, settings, user, client, moment)
    user.last_login = moment
    user.login_count = (user.login_count or 0) + 1
    session.add(
        UserActivity(
            user_id=user.id,
            activity_type="login",
            action="success",
            ip_address=client.ip_address,
            user_agent=client.user_agent,
            session_id=str(tokens.session_id),
        )
    )
    return tokens


def refresh(session: Session, settings: Settings, refresh_token: str) -> Tokens:
    """New tokens for a live session; the old pair stops working."""
    row = session.scalars(
        select(UserSession).where(
            UserSession.refresh_token == token_digest(refresh_token),
            UserSession.is_active.is_(True),
        )
    ).one_or_none()
    moment = now()
    if row is None or row.created_at is None:
        raise Unauthorized("invalid or revoked refresh token")
    if row.created_at + timedelta(days=settings.refresh_token_days) <= moment:
        row.is_active = False
        session.commit()
        raise Unauthorized("refresh token expired; log in again")
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("account disabled")
    access, renewal = new_token(), new_token()
    row.session_token = token_digest(access)
    row.refresh_token = token_digest(renewal)
    row.expires_at = moment + timedelta(minutes=settings.access_token_minutes)
    row.last_used_at = moment
    return Tokens(access, renewal, row.expires_at, row.id)


def authenticate(session: Session, token: str) -> tuple[User, UserSession]:
    """The user and session a bearer token belongs to, if it is live."""
    found = session.execute(
        select(User, UserSession)
        .join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.session_token == token_digest(token))
    ).one_or_none()
    if found is None:
        raise Unauthorized("invalid or revoked token")
    user, row = found
    moment = now()
    if not row.is_active:
        raise Unauthorized("the session has been logged out")
    if row.expires_at <= moment:
        raise Unauthorized("the token has expired; refresh it or log in again")
    if not user.is_active:
        raise Unauthorized("account disabled")
    return user, row


def logout(session: Session, row: UserSession) -> None:
    row.is_active = False
    row.last_used_at = now()


def revoke_others(session: Session, user_id: int, keep: int) -> int:
    """Log a user out of every session but `keep` (after a password change)."""
    result = session.execute(
        update(UserSession)
        .where(
            UserSession.user_id == user_id,
            UserSession.is_active.is_(True),
            UserSession.id != keep,
        )
        .values(is_active=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _open_session(
    session: Session, settings: Settings, user: User, client: Client, moment: datetime
) -> Tokens:
    access, renewal = new_token(), new_token()
    row = UserSession(
        user_id=user.id,
        session_token=token_digest(access),
        refresh_token=token_digest(renewal),
        device_info=_device(client),
        ip_address=client.ip_address,
        expires_at=moment + timedelta(minutes=settings.access_token_minutes),
        created_at=moment,
        last_used_at=moment,
    )
    session.add(row)
    session.flush()
    return Tokens(access, renewal, row.expires_at, row.id)


def _recent_failures(session: Session, settings: Settings, user: User, moment: datetime) -> int:
    """Failed logins since the last success, within the lockout window."""
    since = moment - timedelta(minutes=settings.login_lockout_minutes)
    if user.last_login is not None and user.last_login > since:
        since = user.last_login
    return int(
        session.scalar(
            select(func.count())
            .select_from(UserActivity)
            .where(
                UserActivity.user_id == user.id,
                UserActivity.activity_type == "login",
                UserActivity.action == "failed",
                UserActivity.created_at > since,
            )
        )
        or 0
    )


def _device(client: Client) -> dict[str, Any]:
    return {"user_agent": client.user_agent} if client.user_agent else {}
