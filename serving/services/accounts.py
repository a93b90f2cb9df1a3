"""Accounts and their sessions: register, log in, refresh and log out."""

from __future__ import annotations

from sqlalchemy.orm import Session

from config.settings import Settings
from db.schema import UserActivity
from serving.schemas.users import Registration, UserOut
from serving.services import auth
from serving.services.callers import Caller, record_and_commit


def register(session: Session, body: Registration, client: auth.Client) -> UserOut:
    """A public account, recorded as its own first activity (there is no session yet)."""
    user = auth.create_user(
        session, body.email, body.password, first_name=body.first_name, last_name=body.last_name
    )
    session.add(
        UserActivity(
            user_id=user.id,
            activity_type="account",
            action="create",
            entity_type="user",
            entity_id=user.id,
            ip_address=client.ip_address,
            user_agent=client.user_agent,
        )
    )
    session.commit()
    return UserOut.model_validate(user)


def login(
    session: Session, settings: Settings, email: str, password: str, client: auth.Client
) -> auth.Tokens:
    """A new session's tokens; failures are throttled and recorded (`auth.check_password`)."""
    tokens = auth.login(session, settings, email, password, client)
    session.commit()
    return tokens


def refresh(session: Session, settings: Settings, refresh_token: str) -> auth.Tokens:
    """A new token pair for a live session; the old pair stops working."""
    tokens = auth.refresh(session, settings, refresh_token)
    session.commit()
    return tokens


def logout(session: Session, caller: Caller) -> None:
    """Revoke the caller's session: its bearer token and its refresh token."""
    auth.logout(session, caller.login(session))
    record_and_commit(session, caller, "login", "logout", "session", caller.session_id)
