"""The caller's own profile and notifications; the user list for administrators."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from serving.api.deps import AdminCaller, AppSettings, CurrentCaller, DbSession, PageParams, Period
from serving.schemas.common import Page, PathId, check_user_json
from serving.schemas.users import NotificationOut, ProfileUpdate, UserOut
from serving.services import users

router = APIRouter(tags=["users"])


@router.get("/users/profile", response_model=UserOut)
def profile(caller: CurrentCaller, session: DbSession) -> UserOut:
    return UserOut.model_validate(caller.account(session))


@router.put("/users/profile", response_model=UserOut)
def update_profile(
    body: ProfileUpdate, caller: CurrentCaller, session: DbSession, settings: AppSettings
) -> UserOut:
    """Change names, time zone, language, preferences or the password (fields given only).

    A password change needs the current one, checked first and throttled as logins are, so
    that a stolen token cannot guess the password; a wrong one changes nothing.
    """
    check_user_json(settings, preferences=body.preferences)
    return users.update_profile(session, settings, caller, body)


@router.get("/users/notifications", response_model=Page[NotificationOut])
def notifications(
    caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    period: Period,
    status: Annotated[Literal["unread", "read", "dismissed"] | None, Query()] = None,
) -> Page[NotificationOut]:
    """The caller's notifications, newest first."""
    return users.notifications(session, caller, page, period, status)


@router.put("/notifications/{notification_id}/read", response_model=NotificationOut)
def mark_read(
    notification_id: PathId, caller: CurrentCaller, session: DbSession
) -> NotificationOut:
    return users.mark_read(session, caller, notification_id)


@router.get("/users", response_model=Page[UserOut])
def list_users(
    _admin: AdminCaller,
    session: DbSession,
    page: PageParams,
    role: Annotated[Literal["admin", "public"] | None, Query()] = None,
) -> Page[UserOut]:
    """Every account, newest first (administrators)."""
    return users.list_users(session, page, role)
