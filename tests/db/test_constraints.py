"""The schema refuses rows the spec (and our fixes to it) call invalid, on both dialects."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from builders import asset, coin, default_watchlist_id, insert, user, watchlist


def _rejected(engine: Engine, sql: str, **params: object) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(sql), params)


def test_market_regime_rejects_unknown_regime_and_confidence_above_one(engine: Engine) -> None:
    _rejected(
        engine,
        "INSERT INTO market_regime_analysis (regime, confidence_score) VALUES ('moon', 0.5)",
    )
    _rejected(
        engine,
        "INSERT INTO market_regime_analysis (regime, confidence_score) VALUES ('bull', 1.5)",
    )
    with engine.begin() as connection:
        insert(connection, "market_regime_analysis", regime="bull", confidence_score=0.75)


def test_users_reject_unknown_role_and_duplicate_email(engine: Engine) -> None:
    with engine.begin() as connection:
        user(connection, "a@example.com")
    _rejected(
        engine, "INSERT INTO users (email, password_hash, role) VALUES ('b@x.io', 'x', 'root')"
    )
    _rejected(engine, "INSERT INTO users (email, password_hash) VALUES ('a@example.com', 'x')")


def test_watchlists_reject_spec_seed_types_and_second_default(engine: Engine) -> None:
    # The spec's own seed rows: a type its CHECK forbids.
    _rejected(
        engine,
        "INSERT INTO watchlists (name, type, description)"
        " VALUES ('Admin Tier 1', 'admin_tier1', 'x')",
    )
    # A second default watchlist (one exists from the seed).
    _rejected(engine, "INSERT INTO watchlists (name, type) VALUES ('Another', 'default')")
    with engine.begin() as connection:
        owner = user(connection, "owner@example.com")
    # A default watchlist with an owner, and a personal one without.
    _rejected(
        engine,
        "INSERT INTO watchlists (name, type, user_id) VALUES ('x', 'default', :owner)",
        owner=owner,
    )
    _rejected(engine, "INSERT INTO watchlists (name, type) VALUES ('x', 'personal')")


def test_watchlist_assets_reject_duplicates_and_out_of_range_weights(engine: Engine) -> None:
    with engine.begin() as connection:
        owner = user(connection, "w@example.com")
        mine = watchlist(connection, owner)
        btc, eth = coin(connection, "BTC"), coin(connection, "ETH")
        asset(connection, mine, btc, position=1)
    _rejected(
        engine,
        "INSERT INTO watchlist_assets (watchlist_id, crypto_id, position) VALUES (:w, :c, 2)",
        w=mine,
        c=btc,
    )
    _rejected(
        engine,
        "INSERT INTO watchlist_assets (watchlist_id, crypto_id, position) VALUES (:w, :c, 1)",
        w=mine,
        c=eth,
    )
    _rejected(
        engine,
        "INSERT INTO watchlist_assets (watchlist_id, crypto_id, position, weight)"
        " VALUES (:w, :c, 2, 1.5)",
        w=mine,
        c=eth,
    )


def test_price_data_rejects_second_candle_at_same_time(engine: Engine) -> None:
    sql = (
        "INSERT INTO price_data (crypto_id, timestamp, open_price, high_price, low_price,"
        " close_price) VALUES (:c, '2024-01-01 00:00:00', 1, 2, 0.5, 1.5)"
    )
    with engine.begin() as connection:
        btc = coin(connection, "BTC")
        connection.execute(text(sql), {"c": btc})
    _rejected(engine, sql, c=btc)


def test_trading_signals_reject_prices_in_the_wrong_order(engine: Engine) -> None:
    with engine.begin() as connection:
        btc = coin(connection, "BTC")
    sql = (
        "INSERT INTO trading_signals (crypto_id, signal_type, entry_price, target_price,"
        " stop_loss, confidence_score, risk_level) VALUES (:c, :kind, 100, :target, :stop, 0.6,"
        " 'low')"
    )
    _rejected(engine, sql, c=btc, kind="long", target=90, stop=95)
    _rejected(engine, sql, c=btc, kind="short", target=110, stop=105)
    with engine.begin() as connection:
        connection.execute(text(sql), {"c": btc, "kind": "long", "target": 110, "stop": 95})
        connection.execute(text(sql), {"c": btc, "kind": "short", "target": 90, "stop": 105})


def test_ai_models_allow_versions_but_one_active_per_name(engine: Engine) -> None:
    sql = "INSERT INTO ai_models (name, version, model_type, status) VALUES (:n, :v, 'asset', :s)"
    with engine.begin() as connection:
        connection.execute(text(sql), {"n": "asset_price", "v": "1", "s": "active"})
        connection.execute(text(sql), {"n": "asset_price", "v": "2", "s": "inactive"})
    _rejected(engine, sql, n="asset_price", v="2", s="inactive")
    _rejected(engine, sql, n="asset_price", v="3", s="active")


def test_deleting_a_coin_cascades_to_its_candles(engine: Engine) -> None:
    with engine.begin() as connection:
        btc = coin(connection, "BTC")
        connection.execute(
            text(
                "INSERT INTO price_data (crypto_id, timestamp, open_price, high_price, low_price,"
                " close_price) VALUES (:c, '2024-01-01 00:00:00', 1, 2, 0.5, 1.5)"
            ),
            {"c": btc},
        )
        connection.execute(text("DELETE FROM cryptocurrencies WHERE id = :c"), {"c": btc})
        left = connection.execute(text("SELECT count(*) FROM price_data")).scalar_one()
    assert left == 0


def test_deleting_an_admin_keeps_the_assets_they_added(engine: Engine) -> None:
    with engine.begin() as connection:
        admin = user(connection, "admin@example.com", role="admin")
        btc = coin(connection, "BTC")
        default = default_watchlist_id(connection)
        insert(
            connection,
            "watchlist_assets",
            watchlist_id=default,
            crypto_id=btc,
            position=1,
            added_by=admin,
            last_modified_by=admin,
        )
        connection.execute(text("DELETE FROM users WHERE id = :u"), {"u": admin})
        added_by = connection.execute(text("SELECT added_by FROM watchlist_assets")).all()
    assert added_by == [(None,)]
