"""Column types that mean the same on PostgreSQL and on the embedded SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import TypeDecorator

Json = JSON().with_variant(JSONB(), "postgresql")
"""JSONB on PostgreSQL, JSON text on SQLite."""

Inet = String(45).with_variant(INET(), "postgresql")
"""INET on PostgreSQL; on SQLite a string long enough for any IPv6 address."""


class UtcDateTime(TypeDecorator[datetime]):
    """`TIMESTAMP WITH TIME ZONE` that always hands back aware UTC datetimes.

    SQLite has no time zones and returns naive values; we store UTC there and re-attach the
    zone on the way out, so application code never sees a naive datetime.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given where a UTC time is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class now_plus_days(FunctionElement[datetime]):
    """`NOW() + INTERVAL 'n days'` as a column default, in each dialect's own spelling."""

    type = DateTime(timezone=True)
    inherit_cache = True

    def __init__(self, days: int) -> None:
        self.days = days
        super().__init__()


@compiles(now_plus_days, "postgresql")
def _now_plus_days_pg(element: now_plus_days, compiler: Any, **kw: Any) -> str:
    return f"(now() + '{int(element.days)} days'::interval)"


@compiles(now_plus_days, "sqlite")
def _now_plus_days_sqlite(element: now_plus_days, compiler: Any, **kw: Any) -> str:
    return f"(datetime('now', '+{int(element.days)} days'))"
