"""FastAPI dependencies: a database session per request, the authenticated caller, paging."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from cryptopredict.settings import Settings
from db.schema import User, UserActivity, UserSession
from serving import auth
from serving.errors import Forbidden, Unauthorized, Unprocessable
from serving.schemas.common import DIGITS, ISO_TIME


def get_session(request: Request) -> Iterator[Session]:
    """One session per request. Endpoints commit what they write; anything else rolls back."""
    with request.app.state.sessions() as session:
        yield session


async def get_settings(request: Request) -> Settings:
    """Async because it does no I/O: FastAPI runs a sync dependency on a worker thread."""
    settings: Settings = request.app.state.settings
    return settings


DbSession = Annotated[Session, Depends(get_session)]
AppSettings = Annotated[Settings, Depends(get_settings)]

_bearer = HTTPBearer(auto_error=False, description="The access token from /auth/login.")


def client_of(request: Request) -> auth.Client:
    return auth.Client.of(
        request.client.host if request.client else None, request.headers.get("user-agent")
    )


@dataclass
class Caller:
    """The authenticated user of a request, with what its activities record."""

    user: User
    login: UserSession
    client: auth.Client

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"

    def record(
        self,
        session: Session,
        activity_type: str,
        action: str,
        entity_type: str | None = None,
        entity_id: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Add a `user_activities` row to the caller's transaction."""
        session.add(
            UserActivity(
                user_id=self.user.id,
                activity_type=activity_type,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                details=details,
                ip_address=self.client.ip_address,
                user_agent=self.client.user_agent,
                session_id=str(self.login.id),
            )
        )

    def owns(self, user_id: int | None) -> bool:
        return user_id is not None and user_id == self.user.id


def current_caller(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token: log in at /api/v1/auth/login")
    user, login = auth.authenticate(session, credentials.credentials)
    return Caller(user=user, login=login, client=client_of(request))


def admin_caller(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    if not caller.is_admin:
        raise Forbidden("this route is for administrators")
    return caller


def optional_caller(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller | None:
    """For an open route that shows more to some callers: None without a token; a token
    given must be valid."""
    if credentials is None:
        return None
    return current_caller(request, session, credentials)


CurrentCaller = Annotated[Caller, Depends(current_caller)]
OptionalCaller = Annotated[Caller | None, Depends(optional_caller)]
AdminCaller = Annotated[Caller, Depends(admin_caller)]


@dataclass(frozen=True)
class Paging:
    limit: int
    offset: int


def paging(
    limit: Annotated[int, Query(ge=1, le=500, description="Rows per page."), DIGITS] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip."), DIGITS] = 0,
) -> Paging:
    return Paging(limit, offset)


PageParams = Annotated[Paging, Depends(paging)]


@dataclass(frozen=True)
class TimeRange:
    since: datetime | None
    until: datetime | None


def time_range(
    since: Annotated[
        datetime | None, Query(description="Only rows at or after (ISO 8601)."), ISO_TIME
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Only rows before (ISO 8601)."), ISO_TIME
    ] = None,
) -> TimeRange:
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise Unprocessable(f"{name} needs a time zone, e.g. 2026-01-01T00:00:00Z")
    if since is not None and until is not None and since >= until:
        raise Unprocessable("since must be before until")
    return TimeRange(since, until)


Period = Annotated[TimeRange, Depends(time_range)]
