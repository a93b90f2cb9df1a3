"""Data versions for the inputs of served forecasts, bumped by triggers.

`data_versions` holds one counter per scope (not in the spec). The `market` row is bumped in
the transaction of every write to what a forecast is computed from: `price_data`, the coins
(`cryptocurrencies` symbol, name, is_active) and their sectors (`crypto_sector_mapping`,
`crypto_sectors` names); the `models` row when an `ai_models` version becomes or stops being
active. Two rows, so that a promotion never waits for an ingest's transaction to end. The API
compares them per request instead of summing every candle of its history window
(`serving.inference.forecasts`).

PostgreSQL bumps once per statement (per row for `ai_models`, where a WHEN clause keeps
training and evaluation updates out); SQLite has only row triggers.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCOPES = ("market", "models")
FUNCTION = "bump_data_version"
ACTIVE_CHANGED = (
    "(OLD.status IS DISTINCT FROM NEW.status AND (OLD.status = 'active' OR NEW.status = 'active'))"
    " OR (NEW.status = 'active' AND OLD.version IS DISTINCT FROM NEW.version)"
)
# (table, event, WHEN condition or None); a None condition on PostgreSQL is per statement.
# The scope: `models` for ai_models, `market` for the others.
TRIGGERS: tuple[tuple[str, str, str | None], ...] = (
    ("price_data", "INSERT", None),
    ("price_data", "UPDATE", None),
    ("price_data", "DELETE", None),
    ("cryptocurrencies", "INSERT", None),
    ("cryptocurrencies", "UPDATE OF symbol, name, is_active", None),
    ("cryptocurrencies", "DELETE", None),
    ("crypto_sector_mapping", "INSERT", None),
    ("crypto_sector_mapping", "UPDATE", None),
    ("crypto_sector_mapping", "DELETE", None),
    ("crypto_sectors", "UPDATE OF name", None),
    ("crypto_sectors", "DELETE", None),
    ("ai_models", "INSERT", "NEW.status = 'active'"),
    ("ai_models", "UPDATE OF status, version", ACTIVE_CHANGED),
    ("ai_models", "DELETE", "OLD.status = 'active'"),
)


def trigger_name(table: str, event: str) -> str:
    return f"bump_data_version_{table}_{event.split()[0].lower()}"


def scope_of(table: str) -> str:
    return "models" if table == "ai_models" else "market"


def _pg_trigger(table: str, event: str, condition: str | None) -> str:
    level = "STATEMENT" if condition is None else "ROW"
    when = "" if condition is None else f" WHEN ({condition})"
    return (
        f"CREATE TRIGGER {trigger_name(table, event)} AFTER {event} ON {table} "
        f"FOR EACH {level}{when} EXECUTE FUNCTION {FUNCTION}('{scope_of(table)}')"
    )


def _sqlite_trigger(table: str, event: str, condition: str | None) -> str:
    when = "" if condition is None else f" WHEN {condition}"
    return (
        f"CREATE TRIGGER {trigger_name(table, event)} AFTER {event} ON {table} "
        f"FOR EACH ROW{when} BEGIN UPDATE data_versions SET version = version + 1 "
        f"WHERE scope = '{scope_of(table)}'; END"
    )


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "data_versions",
        sa.Column("scope", sa.String(length=30), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("data_versions_pkey")),
    )
    for scope in SCOPES:
        op.execute(f"INSERT INTO data_versions (scope, version) VALUES ('{scope}', 0)")
    if postgres:
        # The scope is the trigger's argument.
        op.execute(
            f"CREATE FUNCTION {FUNCTION}() RETURNS TRIGGER AS $$ BEGIN "
            "UPDATE data_versions SET version = version + 1 WHERE scope = TG_ARGV[0]; "
            "RETURN NULL; END; $$ LANGUAGE plpgsql"
        )
    for table, event, condition in TRIGGERS:
        op.execute(
            _pg_trigger(table, event, condition)
            if postgres
            else _sqlite_trigger(table, event, condition)
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, event, _condition in TRIGGERS:
        suffix = f" ON {table}" if postgres else ""
        op.execute(f"DROP TRIGGER IF EXISTS {trigger_name(table, event)}{suffix}")
    if postgres:
        op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
    op.drop_table("data_versions")
