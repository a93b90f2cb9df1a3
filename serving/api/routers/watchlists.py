"""Watchlists and their items.

A user reads their own personal watchlists and the default one, and changes only their own;
administrators read every watchlist and manage the default one. The limits of a watchlist's
items are checked in `serving.services.watchlist_changes`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from serving.api.deps import CurrentCaller, DbSession, PageParams, Period
from serving.schemas.common import DIGITS, MAX_ID, TRUE_OR_FALSE, Page, PathId
from serving.schemas.watchlists import (
    ItemCreate,
    ItemOut,
    ItemUpdate,
    WatchlistCreate,
    WatchlistOut,
    WatchlistUpdate,
)
from serving.services import watchlists

router = APIRouter(tags=["watchlists"])


@router.get("/watchlists", response_model=Page[WatchlistOut])
def list_watchlists(
    caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    period: Period,
    type: Annotated[Literal["default", "personal"] | None, Query()] = None,
    user_id: Annotated[
        int | None,
        Query(
            ge=1, le=MAX_ID, description="Only this user's personal watchlists (administrators)."
        ),
        DIGITS,
    ] = None,
    is_active: Annotated[bool | None, Query(), TRUE_OR_FALSE] = None,
) -> Page[WatchlistOut]:
    """The caller's personal watchlists and the default one; every watchlist for an admin.

    Ordered by `sort_order`, then newest first. `in_ai_context` marks what
    `get_user_ai_context` returns for the caller (or for `user_id`, when an admin gives it).
    """
    return watchlists.list_visible(
        session, caller, page, period, type=type, user_id=user_id, is_active=is_active
    )


@router.post("/watchlists", response_model=WatchlistOut, status_code=status.HTTP_201_CREATED)
def create_watchlist(
    body: WatchlistCreate, caller: CurrentCaller, session: DbSession
) -> WatchlistOut:
    """A personal watchlist of the caller's; an admin may create the default one if none exists."""
    return watchlists.create(session, caller, body)


@router.put("/watchlists/{watchlist_id}", response_model=WatchlistOut)
def update_watchlist(
    watchlist_id: PathId, body: WatchlistUpdate, caller: CurrentCaller, session: DbSession
) -> WatchlistOut:
    """Rename, describe, (de)activate, reorder or change `max_assets` (given fields only)."""
    return watchlists.update(session, caller, watchlist_id, body)


@router.delete("/watchlists/{watchlist_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_watchlist(watchlist_id: PathId, caller: CurrentCaller, session: DbSession) -> Response:
    """Delete a watchlist with its items and suggestions (the foreign keys cascade)."""
    watchlists.delete(session, caller, watchlist_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/watchlists/{watchlist_id}/items", response_model=Page[ItemOut])
def list_items(
    watchlist_id: PathId,
    caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    is_active: Annotated[bool | None, Query(), TRUE_OR_FALSE] = None,
) -> Page[ItemOut]:
    """A watchlist's items in order of position."""
    return watchlists.list_items(session, caller, watchlist_id, page, is_active=is_active)


@router.post(
    "/watchlists/{watchlist_id}/items", response_model=ItemOut, status_code=status.HTTP_201_CREATED
)
def add_item(
    watchlist_id: PathId, body: ItemCreate, caller: CurrentCaller, session: DbSession
) -> ItemOut:
    """Add an asset: 404 for an unknown crypto, 409 when full, held already or the position
    is taken."""
    return watchlists.add_item(session, caller, watchlist_id, body)


@router.put("/watchlist-items/{item_id}", response_model=ItemOut)
def update_item(
    item_id: PathId, body: ItemUpdate, caller: CurrentCaller, session: DbSession
) -> ItemOut:
    """Move, reweight, annotate or (de)activate an item (given fields only)."""
    return watchlists.update_item(session, caller, item_id, body)


@router.delete("/watchlist-items/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_item(item_id: PathId, caller: CurrentCaller, session: DbSession) -> Response:
    watchlists.delete_item(session, caller, item_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
