"""Layer 4: trading signals, executing one under the caller's risk limits, risk profiles.

Signals are shared by every user and readable by any logged-in one. Executing a signal
records the caller's own trade (`signal_executions`); the signal itself stays `active` for
everyone else, and only the evaluation job moves it on. See `serving.services.risk` for the checks.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.schema import TradingSignal, User
from serving.errors import Forbidden, NotFound
from serving.lookups import find, find_crypto, symbols
from serving.schemas.common import Page
from serving.schemas.signals import (
    ExecutionOut,
    ExecutionRequest,
    RiskProfileOut,
    RiskProfileUpdate,
    SignalOut,
)
from serving.services import auth, risk
from serving.services.callers import Caller, record_and_commit
from serving.services.pagination import Paging, TimeRange, equal_to, paginate, within

EIGHT_PLACES = Decimal("1e-8")


def list_signals(
    session: Session,
    page: Paging,
    period: TimeRange,
    *,
    crypto: str | None = None,
    status: str | None = None,
    signal_type: str | None = None,
    risk_level: str | None = None,
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


def get(session: Session, signal_id: int) -> SignalOut:
    signal = SignalOut.model_validate(find(session, TradingSignal, signal_id, "signal"))
    return _with_symbols(session, [signal])[0]


def execute(
    session: Session, caller: Caller, signal_id: int, body: ExecutionRequest
) -> ExecutionOut:
    """Record the caller's trade on the signal, within their risk limits (`risk.execute`)."""
    signal = find(session, TradingSignal, signal_id, "signal")
    order = risk.Order(
        position_size=_decimal(body.position_size),
        portfolio_value=_decimal(body.portfolio_value),
        execution_price=(
            signal.entry_price if body.execution_price is None else _decimal(body.execution_price)
        ),
    )
    execution = risk.execute(session, caller.user_id, signal, order, auth.now())
    record_and_commit(
        session,
        caller,
        "signal_execution",
        "create",
        "signal_execution",
        execution.id,
        {"signal_id": signal.id, "position_size": body.position_size},
    )
    return ExecutionOut.model_validate(execution)


def risk_profile(session: Session, caller: Caller, user_id: int) -> RiskProfileOut:
    """A user's risk limits and open exposure: the caller's own, anyone's for an admin."""
    _profile_owner(session, caller, user_id)
    return risk.profile_of(session, user_id)


def update_risk_profile(
    session: Session, caller: Caller, user_id: int, body: RiskProfileUpdate
) -> RiskProfileOut:
    """Change a user's limits (the fields given): the caller's own, anyone's for an admin."""
    _profile_owner(session, caller, user_id)
    changes = body.model_dump(exclude_none=True)
    risk.update_profile(session, user_id, changes)
    record_and_commit(session, caller, "risk_profile", "update", "user", user_id, changes)
    return risk.profile_of(session, user_id)


def _profile_owner(session: Session, caller: Caller, user_id: int) -> None:
    """Only the user or an administrator may see a risk profile; 404 for no such user."""
    if not (caller.owns(user_id) or caller.is_admin):
        raise Forbidden(f"the risk profile of user {user_id} belongs to another user")
    if session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} not found")


def _with_symbols(session: Session, signals: list[SignalOut]) -> list[SignalOut]:
    by_id = symbols(session, (signal.crypto_id for signal in signals))
    for signal in signals:
        signal.symbol = by_id.get(signal.crypto_id)
    return signals


def _decimal(value: float) -> Decimal:
    """The value as stored: NUMERIC with 8 decimal places."""
    return Decimal(str(value)).quantize(EIGHT_PLACES)
