"""The five views return the right rows and numbers on hand-built data, on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from builders import asset, coin, user, watchlist
from db.schema import AiSuggestion, Prediction, TradingSignal

NOW = datetime.now(UTC)


def _prediction(
    session: Session, crypto_id: int, user_id: int | None, accuracy: float | None
) -> None:
    session.add(
        Prediction(
            crypto_id=crypto_id,
            user_id=user_id,
            model_name="asset_price",
            model_version="1",
            predicted_price=Decimal("100"),
            confidence_score=Decimal("0.5"),
            prediction_horizon=24,
            target_datetime=NOW + timedelta(hours=24),
            input_price=Decimal("99"),
            is_realized=accuracy is not None,
            accuracy_percentage=None if accuracy is None else Decimal(str(accuracy)),
        )
    )


def _rows(connection: Connection, sql: str) -> list[dict[str, object]]:
    return [dict(row._mapping) for row in connection.execute(text(sql))]


def test_users_overview_counts_do_not_multiply_across_joins(engine: Engine) -> None:
    """Two watchlists x three assets x four predictions must not inflate any figure."""
    with engine.begin() as connection:
        alice = user(connection, "alice@example.com")
        bob = user(connection, "bob@example.com")
        user(connection, "root@example.com", role="admin")
        coins = [coin(connection, symbol) for symbol in ("BTC", "ETH", "SOL")]
        first, second = watchlist(connection, alice, "one"), watchlist(connection, alice, "two")
        for position, crypto_id in enumerate(coins, start=1):
            asset(connection, first, crypto_id, position)
        asset(connection, second, coins[0], 1)
        asset(connection, second, coins[1], 2)
        inactive = asset(connection, second, coins[2], 3)
        connection.execute(
            text("UPDATE watchlist_assets SET is_active = false WHERE id = :id"), {"id": inactive}
        )
    with Session(engine) as session, session.begin():
        for accuracy in (90.0, 80.0, 70.0):
            _prediction(session, coins[0], alice, accuracy)
        _prediction(session, coins[1], alice, None)
        _prediction(session, coins[1], bob, 50.0)
    with engine.connect() as connection:
        rows = {row["email"]: row for row in _rows(connection, "SELECT * FROM v_users_overview")}
    assert set(rows) == {"alice@example.com", "bob@example.com"}
    assert rows["alice@example.com"]["personal_watchlists_count"] == 2
    assert rows["alice@example.com"]["total_assets_count"] == 5
    assert float(rows["alice@example.com"]["avg_prediction_accuracy"]) == pytest.approx(80.0)
    assert rows["bob@example.com"]["personal_watchlists_count"] == 0
    assert rows["bob@example.com"]["total_assets_count"] == 0
    assert float(rows["bob@example.com"]["avg_prediction_accuracy"]) == pytest.approx(50.0)


def test_watchlist_summary_counts_active_assets_in_position_order(engine: Engine) -> None:
    with engine.begin() as connection:
        owner = user(connection, "w@example.com")
        mine = watchlist(connection, owner)
        btc, eth, sol = (coin(connection, s) for s in ("BTC", "ETH", "SOL"))
        asset(connection, mine, sol, 1, weight=0.2)
        asset(connection, mine, btc, 2, weight=0.4)
        asset(connection, mine, eth, 3, weight=0.9)
        connection.execute(
            text("UPDATE watchlist_assets SET is_active = false WHERE crypto_id = :c"), {"c": eth}
        )
        rows = _rows(connection, f"SELECT * FROM v_watchlist_summary WHERE id = {mine}")
    assert len(rows) == 1
    assert rows[0]["asset_count"] == 2
    assert rows[0]["asset_symbols"] == "SOL, BTC"
    assert float(rows[0]["avg_asset_weight"]) == pytest.approx(0.3)
    assert rows[0]["user_email"] == "w@example.com"


def test_active_signals_give_short_signals_positive_return_and_loss(engine: Engine) -> None:
    with engine.begin() as connection:
        btc = coin(connection, "BTC")
    with Session(engine) as session, session.begin():
        common = {"crypto_id": btc, "confidence_score": Decimal("0.6"), "risk_level": "low"}
        session.add_all(
            [
                TradingSignal(
                    signal_type="long", entry_price=100, target_price=110, stop_loss=95, **common
                ),
                TradingSignal(
                    signal_type="short", entry_price=100, target_price=90, stop_loss=104, **common
                ),
                TradingSignal(
                    signal_type="long",
                    entry_price=100,
                    target_price=110,
                    stop_loss=95,
                    expires_at=NOW - timedelta(hours=1),
                    **common,
                ),
                TradingSignal(
                    signal_type="long",
                    entry_price=100,
                    target_price=110,
                    stop_loss=95,
                    status="cancelled",
                    **common,
                ),
            ]
        )
    with engine.connect() as connection:
        rows = {
            row["signal_type"]: row for row in _rows(connection, "SELECT * FROM v_active_signals")
        }
    assert len(rows) == 2
    assert float(rows["long"]["potential_return_pct"]) == pytest.approx(10.0)
    assert float(rows["long"]["max_loss_pct"]) == pytest.approx(5.0)
    assert float(rows["short"]["potential_return_pct"]) == pytest.approx(10.0)
    assert float(rows["short"]["max_loss_pct"]) == pytest.approx(4.0)
    assert rows["long"]["symbol"] == "BTC"


def test_active_predictions_leave_out_realized_ones(engine: Engine) -> None:
    with engine.begin() as connection:
        btc = coin(connection, "BTC")
        owner = user(connection, "p@example.com")
    with Session(engine) as session, session.begin():
        _prediction(session, btc, owner, None)
        _prediction(session, btc, None, None)
        _prediction(session, btc, owner, 75.0)
    with engine.connect() as connection:
        rows = _rows(connection, "SELECT * FROM v_active_predictions")
    assert len(rows) == 2
    assert {row["user_email"] for row in rows} == {"p@example.com", None}
    assert all(row["crypto_name"] == "Btc" for row in rows)


def test_ai_performance_summarises_the_last_thirty_days_per_layer(engine: Engine) -> None:
    with engine.begin() as connection:
        btc = coin(connection, "BTC")
        default = connection.execute(
            text("SELECT id FROM watchlists WHERE type = 'default'")
        ).scalar_one()
    with Session(engine) as session, session.begin():

        def suggestion(layer: int, status: str, success: float | None, age_days: int) -> None:
            session.add(
                AiSuggestion(
                    watchlist_id=default,
                    crypto_id=btc,
                    suggestion_type="add",
                    ai_layer=layer,
                    confidence_score=Decimal("0.8"),
                    reasoning={},
                    status=status,
                    success_score=None if success is None else Decimal(str(success)),
                    created_at=NOW - timedelta(days=age_days),
                )
            )

        suggestion(3, "approved", 0.9, 1)
        suggestion(3, "implemented", 0.5, 2)
        suggestion(3, "pending", None, 3)
        suggestion(3, "implemented", 0.95, 45)
        suggestion(4, "rejected", None, 1)
    with engine.connect() as connection:
        rows = {row["ai_layer"]: row for row in _rows(connection, "SELECT * FROM v_ai_performance")}
    assert set(rows) == {3, 4}
    assert rows[3]["total_suggestions"] == 3
    assert rows[3]["approved_count"] == 1
    assert rows[3]["implemented_count"] == 1
    assert float(rows[3]["avg_success_score"]) == pytest.approx(0.7)
    assert rows[3]["high_success_count"] == 1
    assert rows[4]["total_suggestions"] == 1
