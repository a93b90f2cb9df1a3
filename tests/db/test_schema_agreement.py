"""`db.schema` and the migrations declare one schema: autogenerate finds nothing to change.

The tables are declared twice, as ORM classes in `db/schema.py` and as the hand-edited
migrations under `db/migrations/versions/`. Production databases are what the migrations build,
so this test migrates a fresh database on each dialect through `db.migrate.upgrade` (the
project's own entry point) and asks Alembic's autogenerate comparison
(`alembic.autogenerate.compare_metadata`) what it would change to reach `Base.metadata`. The
answer must be nothing, apart from the exceptions in `EXCEPTIONS`, each named and explained; an
exception that is no longer observed fails too, so the list cannot silently grow stale.

What the comparison covers: tables, columns, types (`compare_type=True`), nullability, server
defaults (`compare_server_default=True`), UNIQUE constraints, foreign keys with their ON DELETE,
and indexes (columns, order, uniqueness). Outside it, and checked elsewhere: views, functions,
triggers and seed rows (`test_migrations.py`, `test_views.py`, `test_functions.py`,
`test_triggers.py`), `predictions`' storage options (`test_migrations.py`), and on PostgreSQL
partial-index predicates and DEFERRABLE (`test_schema_conformance.py`, `test_constraints.py`).

Alembic compares neither primary keys nor CHECK constraints, so
`test_primary_keys_and_checks_agree` does: primary keys by name and columns, checks by name on
both dialects and by expression on SQLite, which stores them verbatim (PostgreSQL rewrites them;
`test_schema_conformance.py` compares those with the spec).

Two places where SQLite's reflection is too coarse for a literal comparison, normalised here
rather than excepted, because the normalisation still checks the fact:

* Boolean server defaults: the migrations write `DEFAULT true`, SQLAlchemy renders `true()` as
  `DEFAULT 1` on SQLite. SQLite has no boolean type; both store the integer 1. A boolean column's
  defaults are equal when they name the same 0 or 1.
* Indexes: SQLite's reflection drops `DESC` and partial-index predicates, so every index with
  a `text("x DESC")` key is reported as removed and added again, while a `DESC` or a `WHERE`
  the metadata lost would go unseen. On SQLite every declared index is therefore compared with
  the statement SQLite stored for it (`sqlite_master.sql`, whitespace squeezed) against the
  `CREATE INDEX` the metadata compiles to; a mismatch is a difference
  (`index_sql <table>.<index>`), and a remove/add pair is dropped only when they agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Boolean, CheckConstraint, Column, Connection, Index, inspect, text
from sqlalchemy.schema import CreateIndex

from db import migrate
from db.engine import make_engine
from db.schema import Base

# A difference, as Alembic reports it, reduced to "<operation> <table>[.<object>]", mapped to
# why it is deliberate; per dialect.
EXCEPTIONS: dict[str, dict[str, str]] = {
    "sqlite": {
        "add_index predictions.idx_predictions_context_data": (
            "the GIN index on context_data exists on PostgreSQL only (SQLite has no GIN); "
            "the metadata says so with ddl_if(dialect='postgresql'), which autogenerate ignores"
        ),
    },
    "postgresql": {},
}

DIALECTS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=DIALECTS)
def migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of each dialect, empty, then upgraded to head by `db.migrate`."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = request.getfixturevalue("empty_postgres_url")
    migrate.upgrade(url)
    return url


@pytest.fixture
def connection(migrated_url: str) -> Iterator[Connection]:
    engine = make_engine(migrated_url)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def test_autogenerate_finds_no_difference(connection: Connection) -> None:
    dialect = connection.dialect.name
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "compare_server_default": _compare_server_default},
    )
    operations = _flatten(compare_metadata(context, Base.metadata))
    if dialect == "sqlite":
        operations = _without_agreeing_sqlite_index_pairs(connection, operations)
    observed: dict[str, object] = {_describe(operation): operation for operation in operations}
    if dialect == "sqlite":
        observed.update(_sqlite_index_differences(connection))
    excepted = EXCEPTIONS[dialect]

    unexpected = {key: repr(op) for key, op in observed.items() if key not in excepted}
    stale = sorted(set(excepted) - set(observed))
    assert unexpected == {}, "db/schema.py and the migrations disagree"
    assert stale == [], "excepted differences no longer observed; remove them from EXCEPTIONS"


def test_primary_keys_and_checks_agree(connection: Connection) -> None:
    """What autogenerate leaves out: primary keys, and CHECK constraints (text on SQLite)."""
    inspector = inspect(connection)
    with_text = connection.dialect.name == "sqlite"
    declared: dict[str, object] = {}
    migrated: dict[str, object] = {}
    for table in Base.metadata.sorted_tables:
        primary_key = inspector.get_pk_constraint(table.name)
        declared[f"primary key {table.name}"] = (
            str(table.primary_key.name),
            [column.name for column in table.primary_key.columns],
        )
        migrated[f"primary key {table.name}"] = (
            str(primary_key["name"]),
            primary_key["constrained_columns"],
        )
        declared[f"checks {table.name}"] = {
            str(constraint.name): _squeeze(str(constraint.sqltext)) if with_text else None
            for constraint in table.constraints
            if isinstance(constraint, CheckConstraint)
        }
        migrated[f"checks {table.name}"] = {
            str(check["name"]): _squeeze(check["sqltext"]) if with_text else None
            for check in inspector.get_check_constraints(table.name)
        }
    assert migrated == declared


def _compare_server_default(
    context: MigrationContext,
    inspected_column: Column[Any],
    metadata_column: Column[Any],
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """False (equal) for SQLite boolean defaults naming the same 0 or 1; else Alembic decides."""
    if (
        context.dialect.name != "sqlite"
        or not isinstance(metadata_column.type, Boolean)
        or inspected_default is None
        or rendered_metadata_default is None
    ):
        return None
    inspected = _sqlite_boolean(inspected_default)
    declared = _sqlite_boolean(rendered_metadata_default)
    if inspected is not None and inspected == declared:
        return False
    return None


def _sqlite_boolean(default: str) -> int | None:
    value = default.strip().strip("()").strip().lower()
    return {"true": 1, "1": 1, "false": 0, "0": 0}.get(value)


def _without_agreeing_sqlite_index_pairs(
    connection: Connection, operations: list[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Drop remove/add pairs of one index whose stored CREATE INDEX is the declared one."""
    stored = _sqlite_index_sql(connection)
    removed = {op[1].name for op in operations if op[0] == "remove_index"}
    added = {op[1].name: op[1] for op in operations if op[0] == "add_index"}
    agreeing = {
        name
        for name in removed & set(added)
        if stored.get(name) == _declared_index_sql(connection, added[name])
    }
    return [
        op
        for op in operations
        if not (op[0] in ("remove_index", "add_index") and op[1].name in agreeing)
    ]


def _sqlite_index_differences(connection: Connection) -> dict[str, object]:
    """Every declared index against the CREATE INDEX that SQLite stored for it.

    Alembic sees no difference when the database has `x DESC` and the metadata a plain `x`
    (SQLite's reflection loses the direction), nor between partial-index predicates; the
    statement itself shows both, and the uniqueness and the key columns in order.
    """
    stored = _sqlite_index_sql(connection)
    differences: dict[str, object] = {}
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:
            if index.name not in stored:
                continue  # absent altogether: autogenerate reports it as add_index
            declared = _declared_index_sql(connection, index)
            if stored[index.name] != declared:
                differences[f"index_sql {table.name}.{index.name}"] = (stored[index.name], declared)
    return differences


def _sqlite_index_sql(connection: Connection) -> dict[str, str]:
    rows = connection.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    )
    return {name: _squeeze(sql) for name, sql in rows}


def _declared_index_sql(connection: Connection, index: Index) -> str:
    return _squeeze(str(CreateIndex(index).compile(dialect=connection.dialect)))


def _flatten(diffs: list[Any]) -> list[tuple[Any, ...]]:
    """compare_metadata groups a column's modify_* operations in a list of their own."""
    flat: list[tuple[Any, ...]] = []
    for diff in diffs:
        flat.extend(diff if isinstance(diff, list) else [diff])
    return flat


def _describe(operation: tuple[Any, ...]) -> str:
    kind = operation[0]
    if kind.startswith("modify_"):
        return f"{kind} {operation[2]}.{operation[3]}"
    subject = operation[-1] if kind in ("add_column", "remove_column") else operation[1]
    if kind in ("add_table", "remove_table"):
        return f"{kind} {subject.name}"
    return f"{kind} {subject.table.name}.{subject.name}"


def _squeeze(sql: str) -> str:
    return " ".join(sql.split())
