"""Notifications for new trading signals, to the users who watch the signal's coin.

A user watches a coin when one of their active personal watchlists holds it as an active
item. Each such user gets one `notifications` row per new signal (however many watchlists
hold the coin); the default watchlist belongs to nobody and notifies no one. The rows are
found by one query and written by one multi-row INSERT, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, insert, select
from sqlalchemy.orm import Session

from db.schema import (
    Cryptocurrency,
    Notification,
    TradingSignal,
    User,
    Watchlist,
    WatchlistAsset,
)
from serving.services.risk import price_text


def notify_watchers(session: Session, signal_ids: Sequence[int]) -> int:
    """Add a 'signal' notification for each watcher of each signal; return how many."""
    if not signal_ids:
        return 0
    watching = (
        select(WatchlistAsset.id)
        .join(Watchlist, Watchlist.id == WatchlistAsset.watchlist_id)
        .where(
            Watchlist.user_id == User.id,
            Watchlist.type == "personal",
            Watchlist.is_active.is_(True),
            WatchlistAsset.crypto_id == TradingSignal.crypto_id,
            WatchlistAsset.is_active.is_(True),
        )
        .exists()
    )
    watchers = session.execute(
        select(User.id, TradingSignal, Cryptocurrency.symbol)
        .select_from(TradingSignal)
        .join(Cryptocurrency, Cryptocurrency.id == TradingSignal.crypto_id)
        .join(User, and_(User.is_active.is_(True), watching))
        .where(TradingSignal.id.in_(signal_ids))
        .order_by(TradingSignal.id, User.id)
    )
    rows = [_notification(user_id, signal, symbol) for user_id, signal, symbol in watchers]
    if rows:
        session.execute(insert(Notification), rows)
    return len(rows)


def _notification(user_id: int, signal: TradingSignal, symbol: str) -> dict[str, Any]:
    side = signal.signal_type
    confidence = float(signal.confidence_score)
    return {
        "user_id": user_id,
        "notification_type": "signal",
        "title": f"New {symbol} {side} signal, confidence {confidence:.0%}",
        "message": (
            f"{side.capitalize()} {symbol} at {price_text(signal.entry_price)}: target "
            f"{price_text(signal.target_price)}, stop {price_text(signal.stop_loss)}, "
            f"{signal.risk_level} risk"
            + (f", valid until {signal.expires_at:%Y-%m-%d %H:%M} UTC" if signal.expires_at else "")
            + "."
        ),
        "data": _data(signal, symbol),
        # The alert is worthless once the signal has expired (else the table's 30 days).
        **({"expires_at": signal.expires_at} if signal.expires_at else {}),
    }


def _data(signal: TradingSignal, symbol: str) -> dict[str, Any]:
    return {
        "signal_id": signal.id,
        "crypto_id": signal.crypto_id,
        "symbol": symbol,
        "signal_type": signal.signal_type,
        "entry_price": float(signal.entry_price),
        "target_price": float(signal.target_price),
        "stop_loss": float(signal.stop_loss),
        "confidence_score": float(signal.confidence_score),
        "risk_level": signal.risk_level,
        "expires_at": signal.expires_at.isoformat() if signal.expires_at else None,
    }
