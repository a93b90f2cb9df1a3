"""List endpoints: one count and one page query, newest first."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from serving.schemas.common import Page

Item = TypeVar("Item", bound=BaseModel)
AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class Paging:
    limit: int
    offset: int


@dataclass(frozen=True)
class TimeRange:
    since: datetime | None
    until: datetime | None


def within(statement: AnySelect, column: Any, period: TimeRange) -> AnySelect:
    """Restrict `statement` to rows whose `column` lies in `period`."""
    if period.since is not None:
        statement = statement.where(column >= period.since)
    if period.until is not None:
        statement = statement.where(column < period.until)
    return statement


def equal_to(statement: AnySelect, filters: Mapping[Any, object]) -> AnySelect:
    """Restrict `statement` to rows whose columns equal the given values; None filters
    nothing (the query parameter was not given)."""
    for column, value in filters.items():
        if value is not None:
            statement = statement.where(column == value)
    return statement


def paginate(
    session: Session,
    statement: Select[*tuple[Any, ...]],
    paging: Paging,
    schema: type[Item],
    item: Callable[[Row[*tuple[Any, ...]]], Item] | None = None,
) -> Page[Item]:
    """Run `statement` (already ordered) for one page. Its first entity validates into
    `schema`, unless `item` makes an item of each whole row (a row with joined columns)."""
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    page = statement.limit(paging.limit).offset(paging.offset)
    if item is None:
        items = [schema.model_validate(row) for row in session.scalars(page)]
    else:
        items = [item(row) for row in session.execute(page)]
    return Page[schema](  # type: ignore[valid-type]
        items=items,
        total=int(total or 0),
        limit=paging.limit,
        offset=paging.offset,
    )
