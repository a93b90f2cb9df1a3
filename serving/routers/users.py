"""The caller's own profile and notifications; the user list for administrators."""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query
from sqlalchemy import select

from db.schema import Notification, User
from serving import auth
from serving.deps import AdminCaller, AppSettings, CurrentCaller, DbSession, PageParams, Period
from serving.errors import Forbidden, Unprocessable
from serving.lookups import find
from serving.pagination import paginate, within
from serving.schemas.common import Page, PathId, check_user_json
from serving.schemas.users import NotificationOut, ProfileUpdate, UserOut
from serving.security import hash_password, password_problem

router = APIRouter(tags=["users"])


@router.get("/users/profile", response_model=UserOut)
def profile(caller: CurrentCaller) -> UserOut:
    return UserOut.model_validate(caller.user)


@router.put("/users/profile", response_model=UserOut)
def update_profile(
    body: ProfileUpdate, caller: CurrentCaller, session: DbSession, settings: AppSettings
) -> UserOut:
    """Change names, time zone, language, preferences or the password (fields given only).

    A password change needs the current one, checked first and throttled as logins are, so
    that a stolen token cannot guess the password; a wrong one changes nothing.
    """
    check_user_json(settings, preferences=body.preferences)
    user = caller.user
    if body.password is not None:
        auth.check_password(
            session,
            settings,
            user,
            body.password.current,
            caller.client,
            wrong="the current password is wrong",
        )
    changes = body.model_dump(exclude_unset=True, exclude={"password"})
    if "timezone" in changes and changes["timezone"] is not None:
        try:
            ZoneInfo(changes["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise Unprocessable(f"unknown time zone {changes['timezone']!r}") from None
    for name, value in changes.items():
        setattr(user, name, value)
    if body.password is not None:
        problem = password_problem(body.password.new, user.email)
        if problem:
            raise Unprocessable(problem)
        user.password_hash = hash_password(body.password.new)
        auth.revoke_others(session, user.id, keep=caller.login.id)
        changes["password"] = "changed"
    caller.record(session, "profile_update", "update", "user", user.id, {"fields": sorted(changes)})
    session.commit()
    return UserOut.model_validate(user)


@router.get("/users/notifications", response_model=Page[NotificationOut])
def notifications(
    caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    period: Period,
    status: Annotated[Literal["unread", "read", "dismissed"] | None, Query()] = None,
) -> Page[NotificationOut]:
    """The caller's notifications, newest first."""
    statement = select(Notification).where(Notification.user_id == caller.user.id)
    if status is not None:
        statement = statement.where(Notification.status == status)
    statement = within(statement, Notification.created_at, period)
    statement = statement.order_by(Notification.created_at.desc(), Notification.id.desc())
    return paginate(session, statement, page, NotificationOut)


@router.put("/notifications/{notification_id}/read", response_model=NotificationOut)
def mark_read(
    notification_id: PathId, caller: CurrentCaller, session: DbSession
) -> NotificationOut:
    notification = find(session, Notification, notification_id, "notification")
    if not caller.owns(notification.user_id):
        raise Forbidden(f"notification {notification_id} belongs to another user")
    if notification.status != "read":
        notification.status = "read"
        notification.read_at = auth.now()
        caller.record(session, "notification", "read", "notification", notification.id)
        session.commit()
    return NotificationOut.model_validate(notification)


@router.get("/users", response_model=Page[UserOut])
def list_users(
    _admin: AdminCaller,
    session: DbSession,
    page: PageParams,
    role: Annotated[Literal["admin", "public"] | None, Query()] = None,
) -> Page[UserOut]:
    """Every account, newest first (administrators)."""
    statement = select(User)
    if role is not None:
        statement = statement.where(User.role == role)
    statement = statement.order_by(User.created_at.desc(), User.id.desc())
    return paginate(session, statement, page, UserOut)
