"""The caller's own profile and notifications; the user list for administrators."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import Settings
from db.schema import Notification, User
from serving.errors import Forbidden, Unprocessable
from serving.lookups import find
from serving.schemas.common import Page
from serving.schemas.users import NotificationOut, ProfileUpdate, UserOut
from serving.services import auth
from serving.services.callers import Caller, record_and_commit
from serving.services.pagination import Paging, TimeRange, paginate, within
from serving.services.security import hash_password, password_problem


def update_profile(
    session: Session, settings: Settings, caller: Caller, body: ProfileUpdate
) -> UserOut:
    """Change the fields given; a password change needs the current one, checked first and
    throttled as logins are, so that a stolen token cannot guess it."""
    user = caller.account(session)
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
        auth.revoke_others(session, user.id, keep=caller.session_id)
        changes["password"] = "changed"
    record_and_commit(
        session, caller, "profile_update", "update", "user", user.id, {"fields": sorted(changes)}
    )
    return UserOut.model_validate(user)


def notifications(
    session: Session, caller: Caller, page: Paging, period: TimeRange, status: str | None = None
) -> Page[NotificationOut]:
    """The caller's notifications, newest first."""
    statement = select(Notification).where(Notification.user_id == caller.user_id)
    if status is not None:
        statement = statement.where(Notification.status == status)
    statement = within(statement, Notification.created_at, period)
    statement = statement.order_by(Notification.created_at.desc(), Notification.id.desc())
    return paginate(session, statement, page, NotificationOut)


def mark_read(session: Session, caller: Caller, notification_id: int) -> NotificationOut:
    """Mark one of the caller's notifications read; reading it again changes nothing."""
    notification = find(session, Notification, notification_id, "notification")
    if not caller.owns(notification.user_id):
        raise Forbidden(f"notification {notification_id} belongs to another user")
    if notification.status != "read":
        notification.status = "read"
        notification.read_at = auth.now()
        record_and_commit(session, caller, "notification", "read", "notification", notification.id)
    return NotificationOut.model_validate(notification)


def list_users(session: Session, page: Paging, role: str | None = None) -> Page[UserOut]:
    """Every account, newest first."""
    statement = select(User)
    if role is not None:
        statement = statement.where(User.role == role)
    statement = statement.order_by(User.created_at.desc(), User.id.desc())
    return paginate(session, statement, page, UserOut)
