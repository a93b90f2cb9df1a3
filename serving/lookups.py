"""Finding the rows a request names, with a 404 that says what was missing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from sqlalchemy import ColumnElement, false, func, select
from sqlalchemy.orm import Session

from db.schema import Cryptocurrency
from serving.errors import NotFound
from serving.schemas.common import MAX_ID


def crypto_filter(reference: str) -> ColumnElement[bool]:
    """A WHERE clause matching a coin given by id (ASCII digits) or symbol (any case).

    Only ASCII digits make an id: `'²'.isdigit()` is true, yet `int('²')` fails. Digits past
    the id column's range match nothing rather than reach the database.
    """
    if reference.isascii() and reference.isdigit():
        number = int(reference)
        return Cryptocurrency.id == number if number <= MAX_ID else false()
    return func.upper(Cryptocurrency.symbol) == reference.strip().upper()


def symbols(session: Session, crypto_ids: Iterable[int]) -> dict[int, str]:
    """The symbol of each coin id, in one query."""
    wanted = set(crypto_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(Cryptocurrency.id, Cryptocurrency.symbol).where(Cryptocurrency.id.in_(wanted))
    )
    return {row.id: row.symbol for row in rows}


def find_crypto(session: Session, reference: str | int) -> Cryptocurrency:
    """The coin a request names by id or symbol."""
    coin = session.scalars(select(Cryptocurrency).where(crypto_filter(str(reference)))).first()
    if coin is None:
        raise NotFound(f"unknown crypto {reference!r}")
    return coin


Row = TypeVar("Row")


def find(session: Session, table: type[Row], row_id: int, what: str) -> Row:
    """The row of `table` with this primary key, or a 404 naming `what`."""
    row = session.get(table, row_id)
    if row is None:
        raise NotFound(f"{what} {row_id} not found")
    return row
