"""Shared handles for commands: the engine of the configured database, checked for readiness."""

from __future__ import annotations

from sqlalchemy import Engine

from config.settings import get_settings
from db import migrate
from db.engine import make_engine


def migrated_engine() -> Engine:
    """An engine on DATABASE_URL, refusing a database whose schema is not at the newest revision."""
    url = get_settings().resolved_database_url
    revision = migrate.current_revision(url)
    head = migrate.head_revision()
    if revision != head:
        raise ValueError(
            f"the database is at revision {revision or 'base'}, not {head}: "
            "run `cryptopredict db upgrade` first"
        )
    return make_engine(url)
