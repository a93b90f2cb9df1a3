"""What became of suggestions and trading signals once their time came.

Both are few (a handful per coin and day), so they are priced in pandas from one query of the
candles they need and written back with one executemany UPDATE per table.

- A suggestion is priced from the close of the candle at its `created_at` (the analysis hour)
  to the close at its `expires_at`. `actual_return` is the percent return of the suggested
  action: holding the coin for add and rebalance, staying out of it for remove (the negative
  of the coin's return). `success_score` maps that return into [0, 1] with
  0.5 + 0.5 * tanh(return / scale), scale = the expected return's size (at least 1 %):
  0.5 is "no better than doing nothing". Pending suggestions past their expiry become expired.
- A signal is walked hour by hour after its generation: the first candle whose high (low)
  reaches the target or the stop decides. A candle that touches both counts as the stop,
  because the order inside an hour is unknown (the same rule as the training labels). Touched
  signals become `executed`, untouched ones past their expiry `expired`; the outcome goes into
  `ai_analysis["outcome"]`, and each execution of the signal gets its realised P&L.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import pandas as pd
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from db.schema import AiSuggestion, PriceData, SignalExecution, TradingSignal

MIN_SCALE_PERCENT = 1.0


def _closes(session: Session, keys: set[tuple[int, datetime]]) -> dict[tuple[int, datetime], float]:
    if not keys:
        return {}
    coins = {crypto_id for crypto_id, _ in keys}
    moments = {moment for _, moment in keys}
    rows = session.execute(
        select(PriceData.crypto_id, PriceData.timestamp, PriceData.close_price).where(
            PriceData.crypto_id.in_(coins), PriceData.timestamp.in_(moments)
        )
    )
    return {(crypto_id, moment): float(close) for crypto_id, moment, close in rows}


def evaluate_suggestions(session: Session, as_of: datetime) -> tuple[int, int]:
    """Price due suggestions and expire stale pending ones; returns (priced, expired)."""
    due = session.scalars(
        select(AiSuggestion).where(
            AiSuggestion.actual_return.is_(None),
            AiSuggestion.expires_at.is_not(None),
            AiSuggestion.expires_at <= as_of,
            AiSuggestion.status != "rejected",
        )
    ).all()
    closes = _closes(
        session,
        {(s.crypto_id, _hour(s.created_at)) for s in due if s.created_at}
        | {(s.crypto_id, _hour(s.expires_at)) for s in due if s.expires_at},
    )
    updates: list[dict[str, Any]] = []
    for suggestion in due:
        assert suggestion.created_at is not None and suggestion.expires_at is not None
        start = closes.get((suggestion.crypto_id, _hour(suggestion.created_at)))
        end = closes.get((suggestion.crypto_id, _hour(suggestion.expires_at)))
        if start is None or end is None:
            continue  # a candle is missing: priced by a later run
        coin_return = (end / start - 1) * 100
        action_return = -coin_return if suggestion.suggestion_type == "remove" else coin_return
        expected = abs(float(suggestion.expected_return or 0))
        scale = max(expected, MIN_SCALE_PERCENT)
        updates.append(
            {
                "id": suggestion.id,
                "actual_return": _clamp_decimal(action_return, 4, 9999.9999),
                "success_score": Decimal(f"{0.5 + 0.5 * math.tanh(action_return / scale):.4f}"),
            }
        )
    if updates:
        session.execute(update(AiSuggestion), updates)
    expired = cast(
        CursorResult[Any],
        session.execute(
            update(AiSuggestion)
            .where(AiSuggestion.status == "pending", AiSuggestion.expires_at <= as_of)
            .values(status="expired")
            .execution_options(synchronize_session=False)
        ),
    )
    return len(updates), expired.rowcount


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _clamp_decimal(value: float, places: int, limit: float) -> Decimal:
    return Decimal(f"{max(-limit, min(limit, value)):.{places}f}")


def evaluate_signals(session: Session, as_of: datetime) -> tuple[int, int]:
    """Resolve active signals that hit a barrier or expired; returns (executed, expired)."""
    signals = session.scalars(
        select(TradingSignal).where(
            TradingSignal.status == "active", TradingSignal.generated_at <= as_of
        )
    ).all()
    if not signals:
        return 0, 0
    first = min(s.generated_at for s in signals if s.generated_at)
    candles = pd.DataFrame(
        session.execute(
            select(
                PriceData.crypto_id,
                PriceData.timestamp,
                PriceData.high_price,
                PriceData.low_price,
                PriceData.close_price,
            )
            .where(
                PriceData.crypto_id.in_({s.crypto_id for s in signals}),
                PriceData.timestamp > first,
                PriceData.timestamp <= as_of,
            )
            .order_by(PriceData.timestamp)
        ).all(),
        columns=["crypto_id", "timestamp", "high", "low", "close"],
    )
    executed = expired = 0
    for signal in signals:
        outcome = _walk(signal, candles, as_of)
        if outcome is None:
            continue
        signal.ai_analysis = {**(signal.ai_analysis or {}), "outcome": outcome}
        signal.status = "executed" if outcome["result"] in ("target", "stop") else "expired"
        executed += signal.status == "executed"
        expired += signal.status == "expired"
        _settle_executions(session, signal, outcome)
    return executed, expired


def _walk(signal: TradingSignal, candles: pd.DataFrame, as_of: datetime) -> dict[str, Any] | None:
    assert signal.generated_at is not None
    end = min(signal.expires_at or as_of, as_of)
    window = candles[
        (candles["crypto_id"] == signal.crypto_id)
        & (candles["timestamp"] > signal.generated_at)
        & (candles["timestamp"] <= end)
    ]
    long = signal.signal_type == "long"
    target, stop, entry = (
        float(signal.target_price),
        float(signal.stop_loss),
        float(signal.entry_price),
    )
    hits_target = (
        window["high"].astype(float) >= target if long else window["low"].astype(float) <= target
    )
    hits_stop = (
        window["low"].astype(float) <= stop if long else window["high"].astype(float) >= stop
    )
    touched = window[hits_target | hits_stop]
    if not touched.empty:
        bar = touched.iloc[0]
        stopped = bool(hits_stop.loc[bar.name])  # both in one candle: the stop, conservatively
        exit_price = stop if stopped else target
        result, moment = ("stop" if stopped else "target"), bar["timestamp"]
    elif signal.expires_at is not None and signal.expires_at <= as_of:
        if window.empty:
            return None  # no candle at all yet: wait for the data
        last = window.iloc[-1]
        result, moment, exit_price = "timeout", last["timestamp"], float(last["close"])
    else:
        return None
    direction = 1.0 if long else -1.0
    return {
        "result": result,
        "exit_price": exit_price,
        "exit_time": pd.Timestamp(moment).isoformat(),
        "return_percent": direction * (exit_price / entry - 1) * 100,
    }


def _settle_executions(session: Session, signal: TradingSignal, outcome: dict[str, Any]) -> None:
    executions = session.scalars(
        select(SignalExecution).where(SignalExecution.signal_id == signal.id)
    ).all()
    direction = 1.0 if signal.signal_type == "long" else -1.0
    for execution in executions:
        price = float(execution.execution_price or signal.entry_price)
        size = float(execution.position_size or 0)
        pnl = direction * size * (outcome["exit_price"] / price - 1)
        execution.execution_details = {
            **(execution.execution_details or {}),
            "realized_pnl": pnl,
            "exit_price": outcome["exit_price"],
            "exit_time": outcome["exit_time"],
            "result": outcome["result"],
        }
