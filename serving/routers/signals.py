"""Layer 4: trading signals, executing one under the caller's risk limits, risk profiles.

Signals are shared by every user and readable by any logged-in one. Executing a signal
records the caller's own trade (`signal_executions`); the signal itself stays `active` for
everyone else, and only the evaluation job moves it on. See `serving.risk` for the checks.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.schema import TradingSignal, User
from serving import auth, risk
from serving.deps import AppSettings, Caller, CurrentCaller, DbSession, PageParams, Period
from serving.errors import Forbidden, NotFound
from serving.lookups import find, find_crypto, symbols
from serving.pagination import equal_to, paginate, within
from serving.schemas.common import Page, PathId, check_user_json
from serving.schemas.signals import (
    ExecutionOut,
    ExecutionRequest,
    RiskProfileOut,
    RiskProfileUpdate,
    SignalOut,
)

router = APIRouter(tags=["signals"])
EIGHT_PLACES = Decimal("1e-8")

CryptoRef = Annotated[
    str | None,
    Query(min_length=1, max_length=20, description="A coin's symbol (any case) or id."),
]


def _with_symbols(session: Session, signals: list[SignalOut]) -> list[SignalOut]:
    by_id = symbols(session, (signal.crypto_id for signal in signals))
    for signal in signals:
        signal.symbol = by_id.get(signal.crypto_id)
    return signals


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
    statement = select(TradingSignal)
    if crypto is not None:
        statement = statement.where(TradingSignal.crypto_id == find_crypto(session, crypto).id)
    statement = equal_to(
        statement,
        {
            TradingSignal.status: status,
            TradingSignal.signal_type: signal_type,
            TradingSignal.risk_level: risk_level,
        },
    )
    statement = within(statement, TradingSignal.generated_at, period)
    statement = statement.order_by(TradingSignal.generated_at.desc(), TradingSignal.id.desc())
    result = paginate(session, statement, page, SignalOut)
    result.items = _with_symbols(session, result.items)
    return result


@router.get("/signals/{signal_id}", response_model=SignalOut)
def signal(signal_id: PathId, _caller: CurrentCaller, session: DbSession) -> SignalOut:
    return _with_symbols(
        session, [SignalOut.model_validate(find(session, TradingSignal, signal_id, "signal"))]
    )[0]


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
    signal = find(session, TradingSignal, signal_id, "signal")
    order = risk.Order(
        position_size=_decimal(body.position_size),
        portfolio_value=_decimal(body.portfolio_value),
        execution_price=(
            signal.entry_price if body.execution_price is None else _decimal(body.execution_price)
        ),
    )
    execution = risk.execute(session, caller.user.id, signal, order, auth.now())
    caller.record(
        session,
        "signal_execution",
        "create",
        "signal_execution",
        execution.id,
        {"signal_id": signal.id, "position_size": body.position_size},
    )
    session.commit()
    return ExecutionOut.model_validate(execution)


def _profile_owner(session: Session, caller: Caller, user_id: int) -> None:
    """Only the user or an administrator may see a risk profile; 404 for no such user."""
    if not (caller.owns(user_id) or caller.is_admin):
        raise Forbidden(f"the risk profile of user {user_id} belongs to another user")
    if session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} not found")


@router.get("/user/{user_id}/risk-profile", response_model=RiskProfileOut)
def risk_profile(user_id: PathId, caller: CurrentCaller, session: DbSession) -> RiskProfileOut:
    """A user's risk limits (the spec's defaults until set) and open exposure now.

    The caller's own, or anyone's for an administrator; another user's is 403.
    """
    _profile_owner(session, caller, user_id)
    return risk.profile_of(session, user_id)


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
    _profile_owner(session, caller, user_id)
    changes = body.model_dump(exclude_none=True)
    risk.update_profile(session, user_id, changes)
    caller.record(session, "risk_profile", "update", "user", user_id, changes)
    session.commit()
    return risk.profile_of(session, user_id)


def _decimal(value: float) -> Decimal:
    """The value as stored: NUMERIC with 8 decimal places."""
    return Decimal(str(value)).quantize(EIGHT_PLACES)
