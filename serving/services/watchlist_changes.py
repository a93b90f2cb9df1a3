"""Who may read or change a watchlist, and changes to its assets within the spec's limits.

The limits are the table's: `max_assets` counts active assets (as `bulk_update_watchlist_assets`
and `v_watchlist_summary` do), while a row holds its asset and its position whether active or
not (`UNIQUE (watchlist_id, crypto_id)` and `UNIQUE (watchlist_id, position)`). Every check runs
before anything is written, with the watchlist row locked (`FOR UPDATE` on PostgreSQL), so a
refused change leaves nothing behind and two concurrent changes cannot both pass a limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from sqlalchemy import ColumnElement, func, or_, select, true, update
from sqlalchemy.orm import Session

from db.schema import AiSuggestion, Cryptocurrency, Watchlist, WatchlistAsset
from serving.errors import Conflict, Forbidden, NotFound
from serving.lookups import find
from serving.services.auth import now
from serving.services.callers import Caller

# ---------------------------------------------------------------------------- access


def visible_to(caller: Caller) -> ColumnElement[bool]:
    """A WHERE clause for the watchlists `caller` may read: an admin all, a user their own
    personal ones and the default."""
    if caller.is_admin:
        return true()
    return or_(Watchlist.user_id == caller.user_id, Watchlist.type == "default")


def may_read(caller: Caller, watchlist: Watchlist) -> bool:
    return caller.is_admin or watchlist.type == "default" or caller.owns(watchlist.user_id)


def may_write(caller: Caller, watchlist: Watchlist) -> bool:
    """Administrators manage the default watchlist; a personal one is its owner's alone."""
    if watchlist.type == "default":
        return caller.is_admin
    return caller.owns(watchlist.user_id)


def readable_watchlist(session: Session, caller: Caller, watchlist_id: int) -> Watchlist:
    watchlist = find(session, Watchlist, watchlist_id, "watchlist")
    if not may_read(caller, watchlist):
        raise Forbidden(f"watchlist {watchlist_id} belongs to another user")
    return watchlist


def writable_watchlist(session: Session, caller: Caller, watchlist_id: int) -> Watchlist:
    """The watchlist, locked for this transaction, if `caller` may change it."""
    watchlist = session.scalars(
        select(Watchlist)
        .where(Watchlist.id == watchlist_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if watchlist is None:
        raise NotFound(f"watchlist {watchlist_id} not found")
    if not may_write(caller, watchlist):
        if watchlist.type == "default":
            raise Forbidden("the default watchlist is managed by administrators")
        raise Forbidden(f"watchlist {watchlist_id} belongs to another user")
    return watchlist


def in_ai_context(session: Session, user_id: int) -> Callable[[str, bool], bool]:
    """Whether `get_user_ai_context(user_id)` would return a watchlist of a type and activity:
    any active personal one, and the active default only for a user without an active
    personal watchlist."""
    has_personal = session.scalar(
        select(Watchlist.id)
        .where(
            Watchlist.user_id == user_id,
            Watchlist.type == "personal",
            Watchlist.is_active.is_(True),
        )
        .limit(1)
    )
    return lambda kind, active: active and (kind == "personal" or has_personal is None)


# ---------------------------------------------------------------------------- lookups


def active_counts(session: Session, watchlist_ids: Iterable[int]) -> dict[int, int]:
    wanted = set(watchlist_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(WatchlistAsset.watchlist_id, func.count())
        .where(WatchlistAsset.watchlist_id.in_(wanted), WatchlistAsset.is_active.is_(True))
        .group_by(WatchlistAsset.watchlist_id)
    )
    return {watchlist_id: count for watchlist_id, count in rows}


def find_item(session: Session, item_id: int, fresh: bool = False) -> WatchlistAsset:
    """The item; `fresh` reads it again, as it is once its watchlist is locked."""
    item = session.get(WatchlistAsset, item_id, populate_existing=fresh)
    if item is None:
        raise NotFound(f"watchlist item {item_id} not found")
    return item


def held(session: Session, watchlist_id: int, crypto_id: int) -> WatchlistAsset | None:
    return session.scalars(
        select(WatchlistAsset).where(
            WatchlistAsset.watchlist_id == watchlist_id, WatchlistAsset.crypto_id == crypto_id
        )
    ).one_or_none()


# ---------------------------------------------------------------------------- limits


def check_room(session: Session, watchlist: Watchlist) -> None:
    """Refuse one more active asset in a watchlist already at `max_assets`."""
    count = active_counts(session, [watchlist.id]).get(watchlist.id, 0)
    if watchlist.max_assets is not None and count >= watchlist.max_assets:
        raise Conflict(
            f"watchlist {watchlist.id} is full: {count} active assets, max_assets is "
            f"{watchlist.max_assets}"
        )


def check_limit_fits(session: Session, watchlist: Watchlist, max_assets: int) -> None:
    count = active_counts(session, [watchlist.id]).get(watchlist.id, 0)
    if count > max_assets:
        raise Conflict(
            f"watchlist {watchlist.id} holds {count} active assets; max_assets cannot be "
            f"lowered to {max_assets}"
        )


def check_not_held(session: Session, watchlist_id: int, crypto: Cryptocurrency) -> None:
    present = held(session, watchlist_id, crypto.id)
    if present is not None:
        raise Conflict(
            f"{crypto.symbol} is already in watchlist {watchlist_id} (item {present.id})"
        )


def occupant(session: Session, watchlist_id: int, position: int) -> int | None:
    """The id of the item at `position`, if any."""
    return session.scalars(
        select(WatchlistAsset.id).where(
            WatchlistAsset.watchlist_id == watchlist_id, WatchlistAsset.position == position
        )
    ).one_or_none()


def check_position_free(
    session: Session, watchlist_id: int, position: int, moving: int | None = None
) -> None:
    """Refuse a position another item of the watchlist holds (`moving` is the item itself)."""
    taken_by = occupant(session, watchlist_id, position)
    if taken_by is not None and taken_by != moving:
        raise Conflict(
            f"position {position} of watchlist {watchlist_id} is taken by item {taken_by}"
        )


def last_position(session: Session, watchlist_id: int) -> int:
    return (
        session.scalar(
            select(func.coalesce(func.max(WatchlistAsset.position), 0)).where(
                WatchlistAsset.watchlist_id == watchlist_id
            )
        )
        or 0
    )


def make_room_at(session: Session, watchlist_id: int, position: int) -> None:
    """Free a taken `position` by moving every item from there on down by one.

    In two steps, through positions past the end, because SQLite checks the UNIQUE
    (watchlist_id, position) constraint row by row (PostgreSQL defers it to commit).
    """
    if occupant(session, watchlist_id, position) is None:
        return
    offset = last_position(session, watchlist_id) + 1
    moved = (WatchlistAsset.watchlist_id == watchlist_id, WatchlistAsset.position >= position)
    session.execute(
        update(WatchlistAsset).where(*moved).values(position=WatchlistAsset.position + offset)
    )
    session.execute(
        update(WatchlistAsset)
        .where(WatchlistAsset.watchlist_id == watchlist_id, WatchlistAsset.position >= offset)
        .values(position=WatchlistAsset.position - offset + 1)
    )


def check_targets(suggestion: AiSuggestion) -> None:
    """The suggestion's own columns have no CHECK; refuse targets no watchlist item may have."""
    position, weight = suggestion.target_position, suggestion.target_weight
    if position is not None and position < 1:
        raise Conflict(
            f"suggestion {suggestion.id} targets position {position}; positions start at 1"
        )
    if weight is not None and not 0 <= weight <= 1:
        raise Conflict(f"suggestion {suggestion.id} targets weight {weight}, outside 0 to 1")


# ---------------------------------------------------------------------------- changes


def touch(*rows: Watchlist | WatchlistAsset) -> None:
    """Stamp `updated_at` here, so the response shows it (the trigger stamps only the stored
    row); a change to its assets is a change to the watchlist too, as the bulk function has."""
    moment = now()
    for row in rows:
        row.updated_at = moment


def add_asset(
    session: Session,
    watchlist: Watchlist,
    crypto: Cryptocurrency,
    by: int,
    *,
    position: int | None = None,
    weight: Decimal | float | None = None,
    target_allocation: float | None = None,
    notes: str | None = None,
    is_active: bool = True,
    insert: bool = False,
) -> WatchlistAsset:
    """Add `crypto` at `position` or after the last item; 409 past a limit.

    A taken `position` is refused, unless `insert` moves the items from there on down by one.
    """
    check_not_held(session, watchlist.id, crypto)
    if is_active:
        check_room(session, watchlist)
    if position is None:
        position = last_position(session, watchlist.id) + 1
    elif insert:
        make_room_at(session, watchlist.id, position)
    else:
        check_position_free(session, watchlist.id, position)
    item = WatchlistAsset(
        watchlist_id=watchlist.id,
        crypto_id=crypto.id,
        position=position,
        weight=weight if weight is not None else Decimal(0),
        target_allocation=target_allocation,
        notes=notes,
        is_active=is_active,
        added_by=by,
        last_modified_by=by,
    )
    session.add(item)
    touch(watchlist)
    session.flush()
    return item


def remove_asset(session: Session, watchlist: Watchlist, item: WatchlistAsset) -> None:
    session.delete(item)
    touch(watchlist)


def apply_suggestion(
    session: Session, suggestion: AiSuggestion, watchlist: Watchlist, by: int
) -> WatchlistAsset | None:
    """Carry out an approved add, remove or rebalance; the item it leaves, if any.

    An add goes to `target_position`, moving the items from there on down by one (the
    suggestion names a rank, and the reviewer approved that rank), or after the last item.
    A remove deletes the row, as DELETE /watchlist-items/{id} does: the bulk function has no
    removal of its own, and a deactivated row would keep holding its asset and its position.
    """
    check_targets(suggestion)
    crypto = session.get(Cryptocurrency, suggestion.crypto_id)
    assert crypto is not None  # a foreign key without ON DELETE keeps it
    if suggestion.suggestion_type == "add":
        return add_asset(
            session,
            watchlist,
            crypto,
            by,
            position=suggestion.target_position,
            weight=suggestion.target_weight,
            insert=True,
        )
    item = held(session, watchlist.id, crypto.id)
    if item is None:
        raise Conflict(f"{crypto.symbol} is not in watchlist {watchlist.id}")
    if suggestion.suggestion_type == "remove":
        remove_asset(session, watchlist, item)
        return None
    if suggestion.target_weight is None:
        raise Conflict(f"suggestion {suggestion.id} names no target_weight to rebalance to")
    item.weight = suggestion.target_weight
    item.last_modified_by = by
    touch(watchlist, item)
    return item
