"""Small helpers that insert hand-built rows with plain SQL, identically on both dialects."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text


def insert(connection: Connection, table: str, **values: Any) -> int:
    """Insert one row and return its id."""
    columns = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    return connection.execute(
        text(f"INSERT INTO {table} ({columns}) VALUES ({params}) RETURNING id"), values
    ).scalar_one()


def user(connection: Connection, email: str, role: str = "public") -> int:
    return insert(connection, "users", email=email, password_hash="x", role=role)


def coin(connection: Connection, symbol: str) -> int:
    return insert(connection, "cryptocurrencies", symbol=symbol, name=symbol.title())


def watchlist(connection: Connection, user_id: int, name: str = "mine") -> int:
    return insert(connection, "watchlists", name=name, type="personal", user_id=user_id)


def asset(
    connection: Connection, watchlist_id: int, crypto_id: int, position: int, weight: float = 0.1
) -> int:
    return insert(
        connection,
        "watchlist_assets",
        watchlist_id=watchlist_id,
        crypto_id=crypto_id,
        position=position,
        weight=weight,
    )


def default_watchlist_id(connection: Connection) -> int:
    return connection.execute(text("SELECT id FROM watchlists WHERE type = 'default'")).scalar_one()


def signal(connection: Connection, crypto_id: int) -> int:
    """An active long signal entering at 100, target 110, stop 95."""
    return insert(
        connection,
        "trading_signals",
        crypto_id=crypto_id,
        signal_type="long",
        entry_price=100,
        target_price=110,
        stop_loss=95,
        confidence_score=0.7,
        risk_level="medium",
    )
