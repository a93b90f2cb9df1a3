"""Write-path tuning: evaluated predictions updated in place (HOT), price_data without the
cross-coin time index.

- `idx_predictions_composite` loses its `is_realized` column: (crypto_id, created_at DESC).
  While an index names a column the evaluation job sets, no update of a prediction can be
  heap-only (HOT) and every evaluated row gets a new entry in all of the table's indexes.
- `predictions` gets `fillfactor = 45` (PostgreSQL only), so each page keeps room for the new
  version of its rows and the evaluation's update stays on the page, as HOT requires.
- `idx_price_data_timestamp` is dropped: no query of ours filters candles by time across
  coins narrowly enough to use it, and it costs every ingested row an index insertion.

Each deviation and its measured effect is in docs/schema-notes.md.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREDICTIONS_FILLFACTOR = 45


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("idx_predictions_composite")
        batch_op.create_index(
            "idx_predictions_composite",
            ["crypto_id", sa.literal_column("created_at DESC")],
            unique=False,
        )
    if postgres:
        op.execute(f"ALTER TABLE predictions SET (fillfactor = {PREDICTIONS_FILLFACTOR})")
    with op.batch_alter_table("price_data", schema=None) as batch_op:
        batch_op.drop_index("idx_price_data_timestamp")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("price_data", schema=None) as batch_op:
        batch_op.create_index(
            "idx_price_data_timestamp", [sa.literal_column("timestamp DESC")], unique=False
        )
    if postgres:
        op.execute("ALTER TABLE predictions RESET (fillfactor)")
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("idx_predictions_composite")
        batch_op.create_index(
            "idx_predictions_composite",
            ["crypto_id", "is_realized", sa.literal_column("created_at DESC")],
            unique=False,
        )
