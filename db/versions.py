"""Data versions: one counter row per scope, bumped by triggers, read in O(1).

Scopes: `market` (candles, coins and their sectors) and `models` (which version of each
family is active); `FORECAST_INPUTS` is both, what a served forecast is computed from.

A server that caches what it computed from the candles and the active models asks one row
whether anything changed, instead of summing the candles it depends on. Migration 0005
installs the triggers, so every writer bumps the version in its own transaction, whatever
code path it takes (ingest, synth, the demo, a promotion, a hand-written UPDATE): a reader
that sees the new version sees the new data too, in every process.

PostgreSQL's triggers bump per statement; a transaction that bumps holds the row's lock until
it commits, so writers of one scope take turns (readers never wait, and a promotion does not
wait for an ingest). `claim` takes that lock up front, for writers that also take other locks.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.orm import Session

from db.schema import DataVersion

MARKET = "market"
MODELS = "models"
FORECAST_INPUTS = (MARKET, MODELS)
# On the table and built once: every request of `POST /predictions` reads it (profiled).
_VERSIONS = DataVersion.__table__
_VERSION_SUM = select(func.sum(_VERSIONS.c.version)).where(
    _VERSIONS.c.scope.in_(bindparam("scopes", expanding=True))
)


# The forecast inputs' version as a column, for a statement that reads it beside other
# things: authentication does, so `POST /predictions` asks the database once for both.
FORECAST_INPUTS_VERSION = (
    select(func.coalesce(func.sum(_VERSIONS.c.version), 0))
    .where(_VERSIONS.c.scope.in_(FORECAST_INPUTS))
    .scalar_subquery()
)


def data_version(
    connection: Connection | Session, scopes: tuple[str, ...] = FORECAST_INPUTS
) -> int:
    """The sum of the scopes' versions: each only grows, so any bump changes the sum."""
    version = connection.scalar(_VERSION_SUM, {"scopes": list(scopes)})
    return int(version or 0)


def claim(connection: Connection | Session, scope: str = MARKET) -> None:
    """Bump the version now, taking its row lock for the rest of the transaction.

    A writer that takes other locks afterwards (the ingest's per-coin advisory locks) calls
    this first, so that every writer takes the version's lock before the others: two ingests
    can then not wait on each other in opposite orders.
    """
    connection.execute(
        update(DataVersion)
        .where(DataVersion.scope == scope)
        .values(version=DataVersion.version + 1)
    )
