"""Layer 4: trading signals, executing one under the caller's risk limits, risk profiles.

Signals are shared by every user and readable by any logged-in one. Executing a signal
records the caller's own trade (`signal_executions`); the signal itself stays `active` for
everyone else, and only the evaluation job moves it on. See `serving.services.risk` for the checks.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from serving.api.deps import AppSettings, CurrentCaller, DbSession, PageParams, Period
from serving.schemas.common import Page, PathId, check_user_json
from serving.schemas.signals import (
    ExecutionOut,
    ExecutionRequest,
    RiskProfileOut,
    RiskProfileUpdate,
    SignalOut,
)
from serving.services import signals as service

router = APIRouter(tags=["signals"])

CryptoRef = Annotated[
    str | None,
    Query(min_length=1, max_length=20, description="A coin's symbol (any case) or id."),
]


@router.get("/signals", response_model=Page[SignalOut])
def signals(
    _caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    period: Period,
    crypto: CryptoRef = None,
    status: Annotated[Literal["active", "executed", "expired", "cancelled"] | None, Query()] = None,
    signal_type: Annotated[Literal["long", "short"] | None, Query()] = None,
    risk_level: Annotated[Literal["low", "medium", "high", "extreme"] | None, Query()] = None,
) -> Page[SignalOut]:
    """Trading signals, newest first (`generated_at`); an unknown crypto is 404."""
    return service.list_signals(
        session,
        page,
        period,
        crypto=crypto,
        status=status,
        signal_type=signal_type,
        risk_level=risk_level,
    )


@router.get("/signals/{signal_id}", response_model=SignalOut)
def signal(signal_id: PathId, _caller: CurrentCaller, session: DbSession) -> SignalOut:
    return service.get(session, signal_id)


@router.post(
    "/signals/{signal_id}/execute",
    response_model=ExecutionOut,
    status_code=201,
    responses={409: {"description": "The signal is not active, or a risk limit would break."}},
)
def execute(
    signal_id: PathId, body: ExecutionRequest, caller: CurrentCaller, session: DbSession
) -> ExecutionOut:
    """Record the caller's trade on an active, unexpired signal, within their risk limits.

    `position_size` is the position's value and `portfolio_value` the caller's whole
    portfolio, both in the quote currency; `execution_price` defaults to the signal's entry
    and must lie between its stop and its target. Refused with 409, naming the limit and
    the numbers, when the position exceeds the portfolio or `max_position_size`, when the
    loss of all open positions at their stops would exceed `max_portfolio_risk` of the
    portfolio, or when the caller already holds an open execution of this signal. The
    execution is recorded as `filled`; the signal's status does not change.
    """
    return service.execute(session, caller, signal_id, body)


@router.get("/user/{user_id}/risk-profile", response_model=RiskProfileOut)
def risk_profile(user_id: PathId, caller: CurrentCaller, session: DbSession) -> RiskProfileOut:
    """A user's risk limits (the spec's defaults until set) and open exposure now.

    The caller's own, or anyone's for an administrator; another user's is 403.
    """
    return service.risk_profile(session, caller, user_id)


@router.put("/user/{user_id}/risk-profile", response_model=RiskProfileOut)
def update_risk_profile(
    user_id: PathId,
    body: RiskProfileUpdate,
    caller: CurrentCaller,
    session: DbSession,
    settings: AppSettings,
) -> RiskProfileOut:
    """Change a user's limits (the fields given); the user's own, or anyone's for an admin."""
    check_user_json(settings, risk_rules=body.risk_rules)
    return service.update_risk_profile(session, caller, user_id, body)
