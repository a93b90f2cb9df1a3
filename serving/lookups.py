"""Finding the rows a request names, with a 404 that says what was missing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
    if _is_id(reference):
        number = int(reference)
        return Cryptocurrency.id == number if number <= MAX_ID else false()
    return func.upper(Cryptocurrency.symbol) == reference.strip().upper()


@dataclass(frozen=True)
class Coin:
    """A coin as a forecast request names it."""

    id: int
    symbol: str


class CoinDirectory:
    """Every coin by id and by symbol, read once per data version (`db.versions`: any coin
    write bumps it), so that resolving a request's coins costs no query per coin. It answers
    as `crypto_filter` does."""

    def __init__(self) -> None:
        self._entries: tuple[int | None, dict[int | str, Coin]] = (None, {})

    def find(
        self, session: Session, data_version: int, references: Sequence[str | int]
    ) -> list[Coin]:
        """The coins named, in order; 404 for the first unknown one."""
        version, directory = self._entries
        if version != data_version:
            directory = _directory(session)
            self._entries = (data_version, directory)
        coins = []
        for reference in references:
            coin = directory.get(_directory_key(str(reference)))
            if coin is None:
                raise NotFound(f"unknown crypto {reference!r}")
            coins.append(coin)
        return coins


def _is_id(reference: str) -> bool:
    return reference.isascii() and reference.isdigit()


def _directory_key(reference: str) -> int | str:
    """Ids as numbers, symbols upper-cased: a digits-only reference is always an id."""
    return int(reference) if _is_id(reference) else reference.strip().upper()


def _directory(session: Session) -> dict[int | str, Coin]:
    directory: dict[int | str, Coin] = {}
    rows = session.execute(
        select(Cryptocurrency.id, Cryptocurrency.symbol).order_by(Cryptocurrency.id)
    )
    for crypto_id, symbol in rows:
        coin = Coin(crypto_id, symbol)
        directory[crypto_id] = coin
        directory.setdefault(symbol.upper(), coin)
    return directory


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
