"""Narrow `predictions` tuples: the JSONB columns move out of line at 128 bytes.

A prediction row is about 1.4 kB, mostly `input_features`, `context_data` and `debug_info`,
under PostgreSQL's 2 kB threshold for TOAST, so every one of them sits in the heap and every
evaluation update copies it whole. With `toast_tuple_target = 128` PostgreSQL compresses and
moves those values out of line when a row is written; an update that leaves them alone keeps
their TOAST pointers and copies only the narrow tuple. PostgreSQL only; the measured effect is
in docs/schema-notes.md.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOAST_TUPLE_TARGET = 128


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE predictions SET (toast_tuple_target = {TOAST_TUPLE_TARGET})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE predictions RESET (toast_tuple_target)")
