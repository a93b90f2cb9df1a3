"""The spec's stored functions, as fixed, on PostgreSQL (SQLite has no stored functions)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from builders import asset, coin, default_watchlist_id, user, watchlist
from db.schema import AiSuggestion, UserActivity

pytestmark = pytest.mark.postgres


def _positions(engine: Engine, watchlist_id: int) -> dict[int, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT crypto_id, position FROM watchlist_assets WHERE watchlist_id = :w"),
            {"w": watchlist_id},
        )
        return {crypto_id: position for crypto_id, position in rows}


def _bulk_update(engine: Engine, watchlist_id: int, updates: list[dict], admin: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("SELECT bulk_update_watchlist_assets(:w, CAST(:u AS jsonb), :a)"),
            {"w": watchlist_id, "u": json.dumps(updates), "a": admin},
        )


def test_create_default_watchlist_logs_and_allows_only_one(pg_engine: Engine) -> None:
    with pg_engine.begin() as connection:
        connection.execute(text("DELETE FROM watchlists WHERE type = 'default'"))
        new_id = connection.execute(
            text("SELECT create_default_watchlist('Tier list', 'curated')")
        ).scalar_one()
        logged = connection.execute(
            text("SELECT action, details FROM user_activities WHERE entity_id = :w"),
            {"w": new_id},
        ).one()
    assert logged.action == "create"
    assert logged.details == {"type": "default", "name": "Tier list"}
    with pytest.raises(IntegrityError), pg_engine.begin() as connection:
        connection.execute(text("SELECT create_default_watchlist('Second')"))


def test_bulk_update_swaps_positions_and_records_who_added(pg_engine: Engine) -> None:
    with pg_engine.begin() as connection:
        admin = user(connection, "admin@example.com", role="admin")
        btc, eth, sol = (coin(connection, s) for s in ("BTC", "ETH", "SOL"))
        default = default_watchlist_id(connection)
        asset(connection, default, btc, 1)
        asset(connection, default, eth, 2)
    _bulk_update(
        pg_engine,
        default,
        [
            {"crypto_id": btc, "position": 2, "weight": 0.3},
            {"crypto_id": eth, "position": 1, "weight": 0.5},
            {"crypto_id": sol, "position": 3, "weight": 0.2},
        ],
        admin,
    )
    assert _positions(pg_engine, default) == {btc: 2, eth: 1, sol: 3}
    with pg_engine.connect() as connection:
        added_by = connection.execute(
            text("SELECT added_by, last_modified_by FROM watchlist_assets WHERE crypto_id = :c"),
            {"c": sol},
        ).one()
        log = connection.execute(
            text("SELECT details FROM user_activities WHERE action = 'bulk_update'")
        ).scalar_one()
    assert tuple(added_by) == (admin, admin)
    assert log == {"asset_count": 3}


def test_bulk_update_refuses_to_exceed_max_assets_and_changes_nothing(pg_engine: Engine) -> None:
    with pg_engine.begin() as connection:
        admin = user(connection, "admin@example.com", role="admin")
        coins = [coin(connection, f"C{i}") for i in range(3)]
        default = default_watchlist_id(connection)
        connection.execute(
            text("UPDATE watchlists SET max_assets = 2 WHERE id = :w"), {"w": default}
        )
    updates = [{"crypto_id": c, "position": i + 1, "weight": 0.1} for i, c in enumerate(coins)]
    with pytest.raises(DBAPIError, match="limit is 2"):
        _bulk_update(pg_engine, default, updates, admin)
    assert _positions(pg_engine, default) == {}


def test_user_ai_context_falls_back_to_default_with_empty_asset_list(pg_engine: Engine) -> None:
    with pg_engine.begin() as connection:
        newcomer = user(connection, "new@example.com")
        owner = user(connection, "owner@example.com")
        btc, eth = coin(connection, "BTC"), coin(connection, "ETH")
        mine = watchlist(connection, owner)
        asset(connection, mine, eth, 1, weight=0.6)
        asset(connection, mine, btc, 2, weight=0.4)
        empty = watchlist(connection, newcomer, "abandoned")
        connection.execute(
            text("UPDATE watchlists SET is_active = false WHERE id = :w"), {"w": empty}
        )
        newcomer_context = connection.execute(
            text("SELECT * FROM get_user_ai_context(:u)"), {"u": newcomer}
        ).all()
        owner_context = connection.execute(
            text("SELECT * FROM get_user_ai_context(:u)"), {"u": owner}
        ).all()
    # An inactive personal watchlist does not hide the default one, which is empty: [].
    assert [(row.watchlist_type, row.asset_count, row.assets) for row in newcomer_context] == [
        ("default", 0, [])
    ]
    assert len(owner_context) == 1
    assert owner_context[0].watchlist_id == mine
    assert [item["symbol"] for item in owner_context[0].assets] == ["ETH", "BTC"]


def test_archive_old_data_moves_exactly_the_old_rows(pg_engine: Engine) -> None:
    now = datetime.now(UTC)
    with pg_engine.begin() as connection:
        btc = coin(connection, "BTC")
        default = default_watchlist_id(connection)
    with Session(pg_engine) as session, session.begin():
        for age_days in (10, 200, 400):
            session.add(
                UserActivity(
                    activity_type="login", action="view", created_at=now - timedelta(days=age_days)
                )
            )
        for age_days, status in ((30, "implemented"), (120, "implemented"), (120, "approved")):
            session.add(
                AiSuggestion(
                    watchlist_id=default,
                    crypto_id=btc,
                    suggestion_type="add",
                    ai_layer=3,
                    confidence_score=Decimal("0.7"),
                    reasoning={"why": "test"},
                    status=status,
                    implemented_at=now - timedelta(days=age_days),
                )
            )
    with pg_engine.begin() as connection:
        connection.execute(text("SELECT archive_old_data()"))
        counts = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in (
                "user_activities",
                "user_activities_archive",
                "ai_suggestions",
                "ai_suggestions_archive",
            )
        }
        archived_reasoning = connection.execute(
            text("SELECT reasoning FROM ai_suggestions_archive")
        ).scalar_one()
    assert counts == {
        "user_activities": 1,
        "user_activities_archive": 2,
        "ai_suggestions": 2,
        "ai_suggestions_archive": 1,
    }
    assert archived_reasoning == {"why": "test"}
