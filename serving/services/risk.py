"""Risk checks before a user executes a trading signal, and that user's open exposure.

Amounts are in the quote currency, as `training.outcomes` settles them: an execution's
`position_size` is the value of the position, so a position bought at `price` loses
`position_size * |price - stop_loss| / price` if its stop is hit. The limits are the caller's
`risk_management` row (created with the spec's defaults when missing):

- `max_position_size`: no single position may be worth more;
- `max_portfolio_risk`: what all open positions together (this one included) lose if every
  stop is hit may be at most this fraction of the portfolio value the request states.

An execution is open while it is not cancelled and its signal is still `active` (the
evaluation job settles it when the signal's target or stop is touched or it expires).
A signal is shared by every user, so executing it never changes its status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.schema import Cryptocurrency, RiskManagement, SignalExecution, TradingSignal
from serving.errors import Conflict
from serving.schemas.signals import CryptoExposure, Exposure, RiskProfileOut

DEFAULT_MAX_POSITION_SIZE = Decimal("1000")
DEFAULT_MAX_PORTFOLIO_RISK = Decimal("0.02")
OPEN_STATUSES = ("pending", "filled", "partially_filled")


@dataclass(frozen=True)
class Order:
    position_size: Decimal
    portfolio_value: Decimal
    execution_price: Decimal


def loss_at_stop(position_size: Decimal, price: Decimal, stop_loss: Decimal) -> Decimal:
    """What a position worth `position_size`, bought at `price`, loses at `stop_loss`."""
    return position_size * abs(price - stop_loss) / price


def execute(
    session: Session, user_id: int, signal: TradingSignal, order: Order, now: datetime
) -> SignalExecution:
    """Check the order against the signal and the user's limits; add the execution row."""
    _check_signal(signal, order.execution_price, now)
    profile = _locked_profile(session, user_id)
    if _holds(session, user_id, signal.id):
        raise Conflict(f"you already hold an open execution of signal {signal.id}")
    risk = loss_at_stop(order.position_size, order.execution_price, signal.stop_loss)
    _check_limits(profile, order, risk, exposure(session, user_id))
    execution = SignalExecution(
        signal_id=signal.id,
        user_id=user_id,
        execution_price=order.execution_price,
        position_size=order.position_size,
        portfolio_percentage=round(order.position_size / order.portfolio_value * 100, 2),
        execution_type="manual",
        # A manual execution reports a trade the user already placed, at its fill price.
        status="filled",
        execution_details={
            "portfolio_value": float(order.portfolio_value),
            "loss_at_stop": float(risk),
            "signal": {
                "entry_price": float(signal.entry_price),
                "target_price": float(signal.target_price),
                "stop_loss": float(signal.stop_loss),
            },
        },
        executed_at=now,
    )
    session.add(execution)
    session.flush()
    after = exposure(session, user_id)
    profile.current_exposure = {
        **after.model_dump(),
        "portfolio_value": float(order.portfolio_value),
        "risk_fraction": after.total_risk / float(order.portfolio_value),
        "as_of": now.isoformat(),
    }
    profile.last_calculated = now
    return execution


def exposure(session: Session, user_id: int) -> Exposure:
    """The user's open executions by coin, in one grouped query."""
    price = func.coalesce(SignalExecution.execution_price, TradingSignal.entry_price)
    size = func.coalesce(SignalExecution.position_size, 0)
    rows = session.execute(
        select(
            Cryptocurrency.id,
            Cryptocurrency.symbol,
            func.count(SignalExecution.id),
            func.sum(size),
            func.sum(size * func.abs(price - TradingSignal.stop_loss) / price),
        )
        .join(TradingSignal, TradingSignal.id == SignalExecution.signal_id)
        .join(Cryptocurrency, Cryptocurrency.id == TradingSignal.crypto_id)
        .where(
            SignalExecution.user_id == user_id,
            SignalExecution.status.in_(OPEN_STATUSES),
            TradingSignal.status == "active",
        )
        .group_by(Cryptocurrency.id, Cryptocurrency.symbol)
        .order_by(Cryptocurrency.symbol)
    )
    by_crypto = [
        CryptoExposure(
            crypto_id=crypto_id,
            symbol=symbol,
            executions=count,
            position=float(position or 0),
            risk=float(risk or 0),
        )
        for crypto_id, symbol, count, position, risk in rows
    ]
    return Exposure(
        open_executions=sum(item.executions for item in by_crypto),
        total_position=sum(item.position for item in by_crypto),
        total_risk=sum(item.risk for item in by_crypto),
        by_crypto=by_crypto,
    )


def profile_of(session: Session, user_id: int) -> RiskProfileOut:
    """The user's limits (the spec's defaults while no row exists) and open exposure."""
    row = session.scalars(select(RiskManagement).where(RiskManagement.user_id == user_id)).first()
    limits = _limits(row)
    return RiskProfileOut(
        user_id=user_id,
        max_position_size=float(limits[0]),
        max_portfolio_risk=float(limits[1]),
        risk_rules=(row.risk_rules if row else None) or {},
        risk_metrics=(row.risk_metrics if row else None) or {},
        last_calculated=row.last_calculated if row else None,
        updated_at=row.updated_at if row else None,
        current_exposure=exposure(session, user_id),
    )


def update_profile(session: Session, user_id: int, changes: dict[str, Any]) -> None:
    """Set the given limits on the user's row, creating it first when missing."""
    profile = _locked_profile(session, user_id)
    for name, value in changes.items():
        setattr(profile, name, Decimal(str(value)) if isinstance(value, float) else value)
    session.flush()


def _check_signal(signal: TradingSignal, price: Decimal, now: datetime) -> None:
    if signal.status != "active":
        raise Conflict(
            f"signal {signal.id} is {signal.status}: only an active signal can be executed"
        )
    if signal.expires_at is not None and signal.expires_at <= now:
        raise Conflict(f"signal {signal.id} expired at {signal.expires_at.isoformat()}")
    direction = 1 if signal.signal_type == "long" else -1
    if (price - signal.stop_loss) * direction <= 0:
        raise _beyond(signal, price, "stop loss", signal.stop_loss)
    if (signal.target_price - price) * direction <= 0:
        raise _beyond(signal, price, "target", signal.target_price)


def _beyond(signal: TradingSignal, price: Decimal, name: str, barrier: Decimal) -> Conflict:
    return Conflict(
        f"execution price {price_text(price)} is at or beyond the {name} {price_text(barrier)} "
        f"of this {signal.signal_type} signal"
    )


def _check_limits(profile: RiskManagement, order: Order, risk: Decimal, current: Exposure) -> None:
    max_position, max_risk = _limits(profile)
    size, portfolio = order.position_size, order.portfolio_value
    if size > portfolio:
        raise Conflict(
            f"position_size {size:,.2f} exceeds the portfolio value {portfolio:,.2f}: "
            "positions are not leveraged",
            limit="portfolio_value",
            limit_value=float(portfolio),
            value=float(size),
        )
    if size > max_position:
        raise Conflict(
            f"position_size {size:,.2f} exceeds your max_position_size {max_position:,.2f}",
            limit="max_position_size",
            limit_value=float(max_position),
            value=float(size),
        )
    open_risk = Decimal(str(current.total_risk))
    fraction = (open_risk + risk) / portfolio
    if fraction > max_risk:
        raise Conflict(
            f"if every stop is hit you would lose {open_risk + risk:,.2f}, {fraction:.2%} of the "
            f"portfolio {portfolio:,.2f} ({risk:,.2f} from this position, {open_risk:,.2f} from "
            f"{current.open_executions} open executions): above your max_portfolio_risk "
            f"{max_risk:.2%}",
            limit="max_portfolio_risk",
            limit_value=float(max_risk),
            value=float(fraction),
        )


def _limits(row: RiskManagement | None) -> tuple[Decimal, Decimal]:
    """A missing row or NULL limit means the spec's default."""
    position = row.max_position_size if row else None
    risk = row.max_portfolio_risk if row else None
    return (
        DEFAULT_MAX_POSITION_SIZE if position is None else position,
        DEFAULT_MAX_PORTFOLIO_RISK if risk is None else risk,
    )


def _locked_profile(session: Session, user_id: int) -> RiskManagement:
    """The user's row, created when missing and locked (PostgreSQL) so that one user's
    concurrent executions are checked one after the other."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(RiskManagement)
        .values(user_id=user_id)
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    return session.scalars(
        select(RiskManagement)
        .where(RiskManagement.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _holds(session: Session, user_id: int, signal_id: int) -> bool:
    return (
        session.scalar(
            select(SignalExecution.id)
            .where(
                SignalExecution.user_id == user_id,
                SignalExecution.signal_id == signal_id,
                SignalExecution.status.in_(OPEN_STATUSES),
            )
            .limit(1)
        )
        is not None
    )


def price_text(value: Decimal) -> str:
    """A price as plain digits without trailing zeros: 0.00001234, 50000."""
    return format(value.normalize(), "f")
