"""The wall clock as a value: commands take a `Clock`, so a test can say what time it is."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def current_hour(clock: Clock = system_clock) -> datetime:
    """The hour the clock is in, as an aware UTC datetime on the whole hour."""
    return floor_hour(clock())


def floor_hour(moment: datetime) -> datetime:
    """`moment` in UTC (a naive one is taken as UTC), floored to the hour."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.replace(minute=0, second=0, microsecond=0)
