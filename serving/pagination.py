"""List endpoints: one count and one page query, newest first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from serving.deps import Paging, TimeRange
from serving.schemas.common import Page

Item = TypeVar("Item", bound=BaseModel)
AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])


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
    session: Session, statement: Select[*tuple[Any, ...]], paging: Paging, schema: type[Item]
) -> Page[Item]:
    """Run `statement` (already ordered) for one page; rows validate into `schema`."""
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    rows = session.scalars(statement.limit(paging.limit).offset(paging.offset)).all()
    return Page[schema](  # type: ignore[valid-type]
        items=[schema.model_validate(row) for row in rows],
        total=int(total or 0),
        limit=paging.limit,
        offset=paging.offset,
    )
