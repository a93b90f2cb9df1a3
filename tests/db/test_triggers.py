"""`updated_at` is refreshed by the database on every UPDATE, on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, Engine, select, text

from builders import asset, coin, insert, user, watchlist
from db.schema import Base

LONG_AGO = "2001-01-01 00:00:00"


def _stale(connection: Connection, table: str, row_id: int) -> None:
    connection.execute(
        text(f"UPDATE {table} SET updated_at = '{LONG_AGO}' WHERE id = :id"), {"id": row_id}
    )


def _updated_at(connection: Connection, table: str, row_id: int) -> datetime:
    columns = Base.metadata.tables[table].c
    return connection.execute(select(columns.updated_at).where(columns.id == row_id)).scalar_one()


@pytest.mark.parametrize(
    ("table", "change"),
    [
        ("users", "login_count = 5"),
        ("cryptocurrencies", "tier = 1"),
        ("watchlists", "name = 'renamed'"),
        ("watchlist_assets", "weight = 0.5"),
        ("ai_models", "status = 'inactive'"),
    ],
)
def test_update_refreshes_updated_at(engine: Engine, table: str, change: str) -> None:
    with engine.begin() as connection:
        owner = user(connection, "t@example.com")
        btc = coin(connection, "BTC")
        mine = watchlist(connection, owner)
        ids = {
            "users": owner,
            "cryptocurrencies": btc,
            "watchlists": mine,
            "watchlist_assets": asset(connection, mine, btc, position=1),
            "ai_models": insert(
                connection, "ai_models", name="macro_regime", version="1", model_type="macro"
            ),
        }
    with engine.begin() as connection:
        # Bypass the trigger once so the test can tell "refreshed" from "left alone".
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        _stale(connection, table, ids[table])
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
    with engine.begin() as connection:
        assert _updated_at(connection, table, ids[table]).year == 2001
        connection.execute(text(f"UPDATE {table} SET {change} WHERE id = :id"), {"id": ids[table]})
    with engine.begin() as connection:
        refreshed = _updated_at(connection, table, ids[table])
    assert abs((datetime.now(UTC) - refreshed).total_seconds()) < 60
