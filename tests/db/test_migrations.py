"""Upgrade, downgrade and upgrade again, on both dialects."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from db import migrate
from db.engine import make_engine
from db.schema import Base

SPEC_TABLES = set(Base.metadata.tables)


def _tables_and_views(url: str) -> tuple[set[str], set[str]]:
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        tables = set(inspector.get_table_names()) - {"alembic_version"}
        return tables, set(inspector.get_view_names())
    finally:
        engine.dispose()


def _round_trip(url: str) -> None:
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    tables, views = _tables_and_views(url)
    assert tables == SPEC_TABLES
    assert len(views) == 5

    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None
    assert _tables_and_views(url) == (set(), set())

    migrate.upgrade(url)
    assert _tables_and_views(url) == (tables, views)


def test_migrations_round_trip_sqlite(tmp_path: Path) -> None:
    _round_trip(f"sqlite:///{tmp_path / 'round-trip.db'}")


@pytest.mark.postgres
def test_migrations_round_trip_postgres(empty_postgres_url: str) -> None:
    _round_trip(empty_postgres_url)
    engine = make_engine(empty_postgres_url)
    with engine.connect() as connection:
        functions = connection.execute(
            text(
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = 'public'"
            )
        ).scalar_one()
    engine.dispose()
    # The spec's five, and the trigger function of the data version (migration 0005).
    assert functions == 6


@pytest.mark.postgres
def test_downgrade_base_leaves_nothing_behind_postgres(empty_postgres_url: str) -> None:
    migrate.upgrade(empty_postgres_url)
    migrate.downgrade(empty_postgres_url, "base")
    engine = make_engine(empty_postgres_url)
    with engine.connect() as connection:
        leftovers = (
            connection.execute(
                text(
                    "SELECT c.relname FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relname <> 'alembic_version' "
                    "AND c.relname NOT LIKE 'alembic_version%' "
                    "UNION ALL SELECT p.proname FROM pg_proc p "
                    "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
                )
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert leftovers == []


def test_seed_rows_present_after_upgrade(engine) -> None:
    with engine.connect() as connection:
        sectors = connection.execute(text("SELECT count(*) FROM crypto_sectors")).scalar_one()
        defaults = connection.execute(
            text("SELECT count(*) FROM watchlists WHERE type = 'default' AND user_id IS NULL")
        ).scalar_one()
    assert sectors == 10
    assert defaults == 1


def _write_path_tuning(url: str) -> tuple[list[str] | None, str, bool]:
    """predictions' storage options, idx_predictions_composite's definition, and whether
    idx_price_data_timestamp exists."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            options = connection.execute(
                text("SELECT reloptions FROM pg_class WHERE relname = 'predictions'")
            ).scalar_one()
            composite = connection.execute(
                text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_predictions_composite'"
                )
            ).scalar_one()
            timestamp_index = connection.execute(
                text("SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_price_data_timestamp'")
            ).scalar_one()
    finally:
        engine.dispose()
    return options, composite, timestamp_index == 1


@pytest.mark.postgres
def test_0003_and_0004_tune_the_write_paths_and_downgrade_to_the_spec_postgres(
    empty_postgres_url: str,
) -> None:
    migrate.upgrade(empty_postgres_url)
    options, composite, timestamp_index = _write_path_tuning(empty_postgres_url)
    assert options == ["fillfactor=45", "toast_tuple_target=128"]
    assert composite.endswith("(crypto_id, created_at DESC)")
    assert not timestamp_index

    migrate.downgrade(empty_postgres_url, "0003")
    assert _write_path_tuning(empty_postgres_url)[0] == ["fillfactor=45"]

    migrate.downgrade(empty_postgres_url, "0002")
    options, composite, timestamp_index = _write_path_tuning(empty_postgres_url)
    assert options is None
    assert composite.endswith("(crypto_id, is_realized, created_at DESC)")
    assert timestamp_index
