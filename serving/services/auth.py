"""Accounts and sessions on the spec's `users` and `user_sessions` tables.

A login opens a `user_sessions` row holding the digests of two tokens: the bearer token
(expires after `access_token_minutes`) and the refresh token. Refreshing rotates both in the
same row; the row's age bounds the refresh chain at `refresh_token_days`, so a stolen refresh
token is not valid forever. Logout deactivates the row, which revokes both tokens at once.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, select, update
from sqlalchemy.orm import Session

from config.settings import Settings
from db.schema import User, UserActivity, UserSession
from db.versions import FORECAST_INPUTS_VERSION
from serving.errors import Conflict, TooManyRequests, Unauthorized, Unprocessable
from serving.services.security import (
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
    """Check the password and open a session; failures are throttled (`check_password`)."""
    email = email.strip().lower()
    user = session.scalars(select(User).where(func.lower(User.email) == email)).one_or_none()
    if user is None:
        verify_password(_DUMMY_HASH, password)
        raise Unauthorized("wrong email or password")
    check_password(session, settings, user, password, client, wrong="wrong email or password")
    if not user.is_active:
        _record_failure(session, user, client, "inactive")
        raise Unauthorized("wrong email or password")
    moment = now()
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


def check_password(
    session: Session, settings: Settings, user: User, password: str, client: Client, wrong: str
) -> None:
    """Verify `user`'s password, as a login or a password change does; 401 `wrong` if not.

    Failures are throttled per account and client address, so that an attacker's guesses
    do not lock the owner out: after `login_failure_limit` failures from one address within
    `login_lockout_minutes`, that address waits `login_delay_seconds` before its next try,
    twice as long after each further failure (at most the window). Past
    `login_account_failure_limit` failures from all addresses together (a guess spread over
    many), only addresses the account has logged in from before may try. A failure is
    committed at once: the request's rollback must not forget it.
    """
    _throttle(session, settings, user, client, now())
    if not verify_password(user.password_hash, password):
        _record_failure(session, user, client, "password")
        raise Unauthorized(wrong)


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


@dataclass(frozen=True)
class Identity:
    """Who a live bearer token speaks for: the user, their role and the login (session row);
    and the forecast inputs' data version (`db.versions`) when the token was checked."""

    user_id: int
    role: str
    session_id: int
    data_version: int


# Six columns on the tables, built once: every authenticated request runs it, and loading the
# two rows as entities, and building the statement per call, cost more than running it
# (profiled, `POST /predictions`). The data version comes along: a forecast reads it next,
# and this saves that request a round trip to the database.
_USERS = User.__table__.c
_SESSIONS = UserSession.__table__.c
_BY_TOKEN = (
    select(
        _USERS.id,
        _USERS.role,
        _USERS.is_active,
        _SESSIONS.id,
        _SESSIONS.is_active,
        _SESSIONS.expires_at,
        FORECAST_INPUTS_VERSION,
    )
    .select_from(User.__table__.join(UserSession.__table__, _SESSIONS.user_id == _USERS.id))
    .where(_SESSIONS.session_token == bindparam("digest"))
)


def authenticate(session: Session, token: str) -> Identity:
    """Whom a bearer token speaks for, if its login is live."""
    found = session.execute(_BY_TOKEN, {"digest": token_digest(token)}).one_or_none()
    if found is None:
        raise Unauthorized("invalid or revoked token")
    user_id, role, user_active, session_id, session_active, expires_at, version = found
    if not session_active:
        raise Unauthorized("the session has been logged out")
    if expires_at <= now():
        raise Unauthorized("the token has expired; refresh it or log in again")
    if not user_active:
        raise Unauthorized("account disabled")
    return Identity(user_id, role, session_id, int(version))


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


def _throttle(
    session: Session, settings: Settings, user: User, client: Client, moment: datetime
) -> None:
    """429 with the seconds to wait, when this address (or every unknown address) must wait."""
    window = timedelta(minutes=settings.login_lockout_minutes)
    since = moment - window
    here = _from_address(client)
    # Rows are ordered by id: timestamps are whole seconds on SQLite.
    last_success = session.scalar(
        select(func.max(UserActivity.id)).where(_logins(user, "success"), here)
    )
    count, last_failure = session.execute(
        select(func.count(), func.max(UserActivity.created_at)).where(
            _logins(user, "failed"),
            here,
            UserActivity.created_at > since,
            UserActivity.id > (last_success or 0),
        )
    ).one()
    if count >= settings.login_failure_limit and last_failure is not None:
        doublings = min(count - settings.login_failure_limit, 20)
        wait = min(timedelta(seconds=settings.login_delay_seconds * 2**doublings), window)
        if moment < last_failure + wait:
            raise _too_many(last_failure + wait - moment, "from this address")
    if last_success is None:
        everywhere = session.scalar(
            select(func.count()).where(_logins(user, "failed"), UserActivity.created_at > since)
        )
        if (everywhere or 0) >= settings.login_account_failure_limit:
            raise _too_many(window, "from addresses it has never logged in from")


def _logins(user: User, action: str) -> ColumnElement[bool]:
    return and_(
        UserActivity.user_id == user.id,
        UserActivity.activity_type == "login",
        UserActivity.action == action,
    )


def _from_address(client: Client) -> ColumnElement[bool]:
    if client.ip_address is None:
        return UserActivity.ip_address.is_(None)
    return UserActivity.ip_address == client.ip_address


def _too_many(wait: timedelta, where: str) -> TooManyRequests:
    seconds = max(1, math.ceil(wait.total_seconds()))
    return TooManyRequests(
        f"too many failed password attempts for this account {where}; try again in {seconds} s",
        retry_after=seconds,
    )


def _record_failure(session: Session, user: User, client: Client, reason: str) -> None:
    session.add(
        UserActivity(
            user_id=user.id,
            activity_type="login",
            action="failed",
            details={"reason": reason},
            ip_address=client.ip_address,
            user_agent=client.user_agent,
        )
    )
    session.commit()


def _device(client: Client) -> dict[str, Any]:
    return {"user_agent": client.user_agent} if client.user_agent else {}
