"""Watchlists and their items: listed, created, changed and deleted within the spec's limits.

A user reads their own personal watchlists and the default one, and changes only their own;
administrators read every watchlist and manage the default one. The rules themselves (who may
read or write, the limits of a watchlist's items) are in `serving.services.watchlist_changes`.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.schema import Watchlist, WatchlistAsset
from serving.errors import Conflict, Forbidden
from serving.lookups import find_crypto, symbols
from serving.schemas.common import Page
from serving.schemas.watchlists import (
    ItemCreate,
    ItemOut,
    ItemUpdate,
    WatchlistCreate,
    WatchlistOut,
    WatchlistUpdate,
)
from serving.services import watchlist_changes as changes
from serving.services.callers import Caller, record_and_commit
from serving.services.pagination import Paging, TimeRange, equal_to, paginate, within

ONE_DEFAULT = "a default watchlist exists already; there can be only one"


def list_visible(
    session: Session,
    caller: Caller,
    page: Paging,
    period: TimeRange,
    *,
    type: str | None = None,
    user_id: int | None = None,
    is_active: bool | None = None,
) -> Page[WatchlistOut]:
    """The caller's personal watchlists and the default one (every one for an admin), by
    `sort_order`, then newest first; `in_ai_context` as for the caller, or for `user_id`."""
    if user_id is not None and not (caller.is_admin or caller.owns(user_id)):
        raise Forbidden("only administrators may list another user's watchlists")
    statement = select(Watchlist).where(changes.visible_to(caller))
    statement = equal_to(statement, {Watchlist.user_id: user_id, Watchlist.type: type})
    if is_active is not None:
        statement = statement.where(Watchlist.is_active.is_(is_active))
    statement = within(statement, Watchlist.created_at, period).order_by(
        Watchlist.sort_order, Watchlist.created_at.desc(), Watchlist.id.desc()
    )
    result = paginate(session, statement, page, WatchlistOut)
    result.items = _described(session, result.items, user_id or caller.user_id)
    return result


def create(session: Session, caller: Caller, body: WatchlistCreate) -> WatchlistOut:
    """A personal watchlist of the caller's; an admin may create the default one if none
    exists."""
    if body.type == "default":
        if not caller.is_admin:
            raise Forbidden("only administrators create the default watchlist")
        if session.scalar(select(Watchlist.id).where(Watchlist.type == "default")) is not None:
            raise Conflict(ONE_DEFAULT)
    owner = None if body.type == "default" else caller.user_id
    watchlist = Watchlist(**body.model_dump(), user_id=owner)
    session.add(watchlist)
    try:
        session.flush()
    except IntegrityError:  # another request created the default first
        raise Conflict(ONE_DEFAULT) from None
    record_and_commit(
        session,
        caller,
        "watchlist_update",
        "create",
        "watchlist",
        watchlist.id,
        {"type": body.type},
    )
    return _one(session, watchlist, caller)


def update(
    session: Session, caller: Caller, watchlist_id: int, body: WatchlistUpdate
) -> WatchlistOut:
    """Rename, describe, (de)activate, reorder or change `max_assets` (given fields only)."""
    watchlist = changes.writable_watchlist(session, caller, watchlist_id)
    fields = body.model_dump(exclude_unset=True)
    if body.max_assets is not None:
        changes.check_limit_fits(session, watchlist, body.max_assets)
    for name, value in fields.items():
        setattr(watchlist, name, value)
    changes.touch(watchlist)
    record_and_commit(
        session,
        caller,
        "watchlist_update",
        "update",
        "watchlist",
        watchlist.id,
        {"fields": sorted(fields)},
    )
    return _one(session, watchlist, caller)


def delete(session: Session, caller: Caller, watchlist_id: int) -> None:
    """Delete a watchlist with its items and suggestions (the foreign keys cascade)."""
    watchlist = changes.writable_watchlist(session, caller, watchlist_id)
    details = {"name": watchlist.name, "type": watchlist.type}
    session.delete(watchlist)
    record_and_commit(
        session, caller, "watchlist_update", "delete", "watchlist", watchlist_id, details
    )


def list_items(
    session: Session,
    caller: Caller,
    watchlist_id: int,
    page: Paging,
    *,
    is_active: bool | None = None,
) -> Page[ItemOut]:
    """A watchlist's items in order of position."""
    changes.readable_watchlist(session, caller, watchlist_id)
    statement = select(WatchlistAsset).where(WatchlistAsset.watchlist_id == watchlist_id)
    if is_active is not None:
        statement = statement.where(WatchlistAsset.is_active.is_(is_active))
    statement = statement.order_by(WatchlistAsset.position, WatchlistAsset.id)
    result = paginate(session, statement, page, ItemOut)
    result.items = _items(session, result.items)
    return result


def add_item(session: Session, caller: Caller, watchlist_id: int, body: ItemCreate) -> ItemOut:
    """Add an asset: 404 for an unknown crypto, 409 when full, held already or the position
    is taken."""
    watchlist = changes.writable_watchlist(session, caller, watchlist_id)
    coin = find_crypto(session, body.crypto)
    item = changes.add_asset(
        session, watchlist, coin, caller.user_id, **body.model_dump(exclude={"crypto"})
    )
    record_and_commit(
        session,
        caller,
        "watchlist_update",
        "add_asset",
        "watchlist_asset",
        item.id,
        {"watchlist_id": watchlist.id, "crypto_id": coin.id, "position": item.position},
    )
    return _item(session, item)


def update_item(session: Session, caller: Caller, item_id: int, body: ItemUpdate) -> ItemOut:
    """Move, reweight, annotate or (de)activate an item (given fields only)."""
    item, watchlist = _writable_item(session, caller, item_id)
    fields = body.model_dump(exclude_unset=True)
    if body.position is not None:
        changes.check_position_free(session, watchlist.id, body.position, moving=item.id)
    if body.is_active and not item.is_active:
        changes.check_room(session, watchlist)
    for name, value in fields.items():
        setattr(item, name, value)
    item.last_modified_by = caller.user_id
    changes.touch(watchlist, item)
    record_and_commit(
        session,
        caller,
        "watchlist_update",
        "update_asset",
        "watchlist_asset",
        item.id,
        {"fields": sorted(fields)},
    )
    return _item(session, item)


def delete_item(session: Session, caller: Caller, item_id: int) -> None:
    item, watchlist = _writable_item(session, caller, item_id)
    details = {"watchlist_id": watchlist.id, "crypto_id": item.crypto_id}
    changes.remove_asset(session, watchlist, item)
    record_and_commit(
        session, caller, "watchlist_update", "remove_asset", "watchlist_asset", item_id, details
    )


def _writable_item(
    session: Session, caller: Caller, item_id: int
) -> tuple[WatchlistAsset, Watchlist]:
    """The item and its watchlist; the watchlist is locked first, as every change locks it."""
    watchlist_id = changes.find_item(session, item_id).watchlist_id
    watchlist = changes.writable_watchlist(session, caller, watchlist_id)
    return changes.find_item(session, item_id, fresh=True), watchlist


def _described(
    session: Session, watchlists: list[WatchlistOut], context_user: int
) -> list[WatchlistOut]:
    """Fill in item counts and the AI-context flag, in two queries for the whole page."""
    counts = changes.active_counts(session, [w.id for w in watchlists])
    in_context = changes.in_ai_context(session, context_user)
    return [
        w.model_copy(
            update={
                "item_count": counts.get(w.id, 0),
                "in_ai_context": in_context(w.type, w.is_active),
            }
        )
        for w in watchlists
    ]


def _one(session: Session, watchlist: Watchlist, caller: Caller) -> WatchlistOut:
    return _described(session, [WatchlistOut.model_validate(watchlist)], caller.user_id)[0]


def _items(session: Session, items: list[ItemOut]) -> list[ItemOut]:
    by_id = symbols(session, {item.crypto_id for item in items})
    return [item.model_copy(update={"symbol": by_id.get(item.crypto_id)}) for item in items]


def _item(session: Session, item: WatchlistAsset) -> ItemOut:
    return _items(session, [ItemOut.model_validate(item)])[0]
