"""FastAPI dependencies: a database session per request, the authenticated caller, paging,
and the app's shared objects (caches, the health monitor, the retrainer).

A dependency that does no I/O is `async def`: FastAPI runs a sync one on a worker thread,
a hop that `POST /predictions` would pay on every call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Protocol, TypeVar

import anyio
from anyio.lowlevel import RunVar
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from config.settings import Settings
from serving.errors import Forbidden, Unauthorized, Unprocessable
from serving.inference.models_cache import ActiveModels
from serving.schemas.common import DIGITS, ISO_TIME
from serving.services import auth
from serving.services.callers import Caller
from serving.services.health import HealthMonitor
from serving.services.pagination import Paging, TimeRange
from serving.services.predictions import Forecaster
from serving.services.retraining import Retrainer

T = TypeVar("T")


def get_session(request: Request) -> Iterator[Session]:
    """One session per request. Services commit what they write; anything else rolls back."""
    with request.app.state.sessions() as session:
        yield session


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_models(request: Request) -> ActiveModels:
    """The active model versions (`create_app`); read at each request, so a test may swap
    them."""
    models: ActiveModels = request.app.state.models
    return models


async def get_forecaster(request: Request) -> Forecaster:
    """What `POST /predictions` forecasts with, in one dependency: each costs the hot path
    its share of FastAPI's dependency solving (profiled)."""
    state = request.app.state
    return Forecaster(
        models=state.models,
        coins=state.coins,
        forecasts=state.forecasts,
        max_candle_age=timedelta(hours=state.settings.max_candle_age_hours),
    )


async def get_health_monitor(request: Request) -> HealthMonitor:
    """One monitor per app (per worker process), created on first use."""
    state = request.app.state
    if not hasattr(state, "health_monitor"):
        state.health_monitor = HealthMonitor()
    monitor: HealthMonitor = state.health_monitor
    return monitor


def get_retrainer(settings: Annotated[Settings, Depends(get_settings)]) -> Retrainer:
    """Overridden in tests to run a fast stand-in for `cryptopredict train`."""
    return Retrainer.from_settings(settings)


DbSession = Annotated[Session, Depends(get_session)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Models = Annotated[ActiveModels, Depends(get_models)]
Forecasting = Annotated[Forecaster, Depends(get_forecaster)]
Monitor = Annotated[HealthMonitor, Depends(get_health_monitor)]
Retraining = Annotated[Retrainer, Depends(get_retrainer)]

_bearer = HTTPBearer(auto_error=False, description="The access token from /auth/login.")


def client_of(request: Request) -> auth.Client:
    return auth.Client.of(
        request.client.host if request.client else None, request.headers.get("user-agent")
    )


@dataclass(frozen=True)
class Credentials:
    """What a request presents: its bearer token, and where it comes from."""

    token: str
    client: auth.Client


def _credentials(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Credentials:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token: log in at /api/v1/auth/login")
    return Credentials(credentials.credentials, client_of(request))


async def bearer_credentials(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Credentials:
    """Every guarded route depends on this: 401 without a bearer token."""
    return _credentials(request, credentials)


def _caller(session: Session, credentials: Credentials) -> Caller:
    return Caller(auth.authenticate(session, credentials.token), credentials.client)


def current_caller(
    session: DbSession, credentials: Annotated[Credentials, Depends(bearer_credentials)]
) -> Caller:
    return _caller(session, credentials)


# Threads for the use cases `as_caller` runs: first come, first served, and no more of them
# than two cores keep busy while some wait on the database. With anyio's default (40), 8
# clients at once had p99 at five times p50 (benchmarks/README.md, "Serving").
CALLER_THREADS = 4
_caller_limiter: RunVar[anyio.CapacityLimiter] = RunVar("caller_limiter")


def _caller_threads() -> anyio.CapacityLimiter:
    """The limiter of this event loop (a limiter belongs to the loop it was made in)."""
    try:
        return _caller_limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(CALLER_THREADS)
        _caller_limiter.set(limiter)
        return limiter


class CallerRunner(Protocol):
    def __call__(self, work: Callable[[Session, Caller], T]) -> Awaitable[T]: ...


async def as_caller(
    request: Request, credentials: Annotated[Credentials, Depends(bearer_credentials)]
) -> CallerRunner:
    """Runs a use case as the authenticated caller, on one session, in one worker thread.

    For the hot routes: with a session, a caller and a route each a sync dependency, a
    request hopped to a worker thread four times (profiled, `POST /predictions`); this is one.
    The threads are few (`CALLER_THREADS`) and taken in turn, so that a burst of requests
    queues in order instead of contending for the interpreter all at once.
    """
    sessions = request.app.state.sessions

    def authenticated(work: Callable[[Session, Caller], T]) -> T:
        with sessions() as session:
            return work(session, _caller(session, credentials))

    async def run(work: Callable[[Session, Caller], T]) -> T:
        return await anyio.to_thread.run_sync(authenticated, work, limiter=_caller_threads())

    return run


async def admin_caller(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
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
    return _caller(session, _credentials(request, credentials))


CurrentCaller = Annotated[Caller, Depends(current_caller)]
AsCaller = Annotated[CallerRunner, Depends(as_caller)]
OptionalCaller = Annotated[Caller | None, Depends(optional_caller)]
AdminCaller = Annotated[Caller, Depends(admin_caller)]


async def paging(
    limit: Annotated[int, Query(ge=1, le=500, description="Rows per page."), DIGITS] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip."), DIGITS] = 0,
) -> Paging:
    return Paging(limit, offset)


PageParams = Annotated[Paging, Depends(paging)]


async def time_range(
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
