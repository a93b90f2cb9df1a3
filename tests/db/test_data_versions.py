"""The data version moves with every write a forecast depends on, and only with those."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from db.versions import claim, data_version
from store.registry import promote
from training.ingest import write_candles

HOURS = pd.date_range(datetime(2026, 1, 1, tzinfo=UTC), periods=3, freq="h")


def _candles(close: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": HOURS,
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": 10.0,
            "market_cap": None,
        }
    )


def _version(engine: Engine) -> int:
    with engine.connect() as connection:
        return data_version(connection)


def test_data_version_moves_with_new_and_corrected_candles_in_their_transaction(
    engine: Engine,
) -> None:
    start = _version(engine)
    write_candles(engine, {"AAA": _candles(100.0)})
    after_insert = _version(engine)
    assert after_insert > start

    # A corrected candle written by hand, not through the ingest, moves it as well.
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE price_data SET close_price = 100.5 "
                "WHERE id = (SELECT min(id) FROM price_data)"
            )
        )
        assert data_version(connection) > after_insert  # in the writer's own transaction
    corrected = _version(engine)
    assert corrected > after_insert

    # A transaction that rolls back leaves it where it was.
    with engine.connect() as connection:
        connection.execute(text("DELETE FROM price_data"))
        connection.rollback()
    assert _version(engine) == corrected


def test_data_version_moves_with_activations_but_not_with_metrics(engine: Engine) -> None:
    with engine.begin() as connection:
        for version in ("1", "2"):
            connection.execute(
                text(
                    "INSERT INTO ai_models (name, version, model_type, status) "
                    "VALUES ('asset_price', :version, 'asset', 'inactive')"
                ),
                {"version": version},
            )
    start = _version(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE ai_models SET performance_metrics = '{\"x\": 1}'"))
    assert _version(engine) == start  # the nightly evaluation's writes do not count

    with Session(engine) as session:
        promote(session, "asset_price", "1")
        session.commit()
    promoted = _version(engine)
    assert promoted > start
    with Session(engine) as session:
        promote(session, "asset_price", "2")
        session.commit()
    assert _version(engine) > promoted


@pytest.mark.postgres
def test_a_promotion_does_not_wait_for_an_open_candle_write(pg_engine: Engine) -> None:
    with pg_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO ai_models (name, version, model_type, status) "
                "VALUES ('asset_price', '1', 'asset', 'inactive')"
            )
        )
    with pg_engine.connect() as ingest:
        claim(ingest)  # an ingest in progress holds the market version's lock
        with Session(pg_engine) as session:
            session.execute(text("SET LOCAL lock_timeout = '2s'"))
            promote(session, "asset_price", "1")
            session.commit()
        ingest.rollback()
    with Session(pg_engine) as session:
        assert session.scalar(text("SELECT status FROM ai_models WHERE version = '1'")) == "active"
