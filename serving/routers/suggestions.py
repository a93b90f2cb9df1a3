"""AI suggestions for watchlists, and their review.

The spec's endpoint list names a `suggestion_reviews` table that the schema does not have; a
review is recorded on the suggestion itself (`status`, `reviewed_by`, `reviewed_at`,
`implemented_at`) and in `user_activities`, whose details keep the reviewer's notes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.schema import AiSuggestion, Watchlist, WatchlistAsset
from serving import watchlist_changes as changes
from serving.auth import now
from serving.deps import Caller, CurrentCaller, DbSession, PageParams, Period
from serving.errors import Conflict, NotFound
from serving.lookups import find, find_crypto, symbols
from serving.pagination import equal_to, paginate, within
from serving.schemas.common import DIGITS, Page, PathId, QueryId
from serving.schemas.suggestions import (
    ReviewIn,
    ReviewOut,
    SuggestionOut,
    SuggestionStatus,
    SuggestionType,
)
from serving.schemas.watchlists import ItemOut

router = APIRouter(tags=["suggestions"])


def _described(session: Session, suggestions: list[SuggestionOut]) -> list[SuggestionOut]:
    by_id = symbols(session, {s.crypto_id for s in suggestions})
    return [s.model_copy(update={"symbol": by_id.get(s.crypto_id)}) for s in suggestions]


@router.get("/suggestions", response_model=Page[SuggestionOut])
def list_suggestions(
    caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    period: Period,
    status: Annotated[SuggestionStatus | None, Query()] = None,
    suggestion_type: Annotated[SuggestionType | None, Query()] = None,
    watchlist_id: QueryId = None,
    crypto: Annotated[str | None, Query(description="Id or symbol.", max_length=20)] = None,
    ai_layer: Annotated[int | None, Query(ge=1, le=4), DIGITS] = None,
) -> Page[SuggestionOut]:
    """Suggestions for the watchlists the caller may read, newest first: a user's own personal
    watchlists and the default one; every watchlist for an admin."""
    statement = select(AiSuggestion)
    if not caller.is_admin:
        statement = statement.join(Watchlist, Watchlist.id == AiSuggestion.watchlist_id).where(
            changes.visible_to(caller)
        )
    if watchlist_id is not None:
        changes.readable_watchlist(session, caller, watchlist_id)
        statement = statement.where(AiSuggestion.watchlist_id == watchlist_id)
    if crypto is not None:
        statement = statement.where(AiSuggestion.crypto_id == find_crypto(session, crypto).id)
    statement = equal_to(
        statement,
        {
            AiSuggestion.status: status,
            AiSuggestion.suggestion_type: suggestion_type,
            AiSuggestion.ai_layer: ai_layer,
        },
    )
    statement = within(statement, AiSuggestion.created_at, period).order_by(
        AiSuggestion.created_at.desc(), AiSuggestion.id.desc()
    )
    result = paginate(session, statement, page, SuggestionOut)
    result.items = _described(session, result.items)
    return result


def _reviewable(session: Session, caller: Caller, suggestion_id: int) -> AiSuggestion:
    """The suggestion, locked after its watchlist, if the caller may review it now."""
    found = find(session, AiSuggestion, suggestion_id, "suggestion")
    changes.writable_watchlist(session, caller, found.watchlist_id)
    suggestion = session.scalars(
        select(AiSuggestion)
        .where(AiSuggestion.id == suggestion_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if suggestion is None:
        raise NotFound(f"suggestion {suggestion_id} not found")
    if suggestion.status != "pending":
        raise Conflict(
            f"suggestion {suggestion_id} is {suggestion.status}; only a pending one is reviewed"
        )
    if suggestion.expires_at is not None and suggestion.expires_at <= now():
        raise Conflict(f"suggestion {suggestion_id} expired at {suggestion.expires_at.isoformat()}")
    return suggestion


@router.post("/suggestions/{suggestion_id}/review", response_model=ReviewOut)
def review_suggestion(
    suggestion_id: PathId, body: ReviewIn, caller: CurrentCaller, session: DbSession
) -> ReviewOut:
    """Approve or reject a pending, unexpired suggestion (409 otherwise).

    Who reviews is who may change the watchlist: administrators for the default watchlist,
    the owner for a personal one (an admin included only for their own; 403 for anyone else).
    Approving an add, remove or rebalance applies it to the watchlist in this transaction and
    marks the suggestion `implemented`; if that would break a limit (watchlist full, asset
    held already or not held) it is refused with 409 and nothing changes. A `tier_change`
    carries no target tier to apply, so approving it marks it `approved` for an administrator
    to carry out.
    """
    suggestion = _reviewable(session, caller, suggestion_id)
    watchlist = session.get(Watchlist, suggestion.watchlist_id)
    assert watchlist is not None  # locked by _reviewable
    reviewed_at = now()
    item: WatchlistAsset | None = None
    if body.decision == "reject":
        suggestion.status = "rejected"
    elif suggestion.suggestion_type == "tier_change":
        suggestion.status = "approved"
    else:
        item = changes.apply_suggestion(session, suggestion, watchlist, caller.user.id)
        suggestion.status = "implemented"
        suggestion.implemented_at = reviewed_at
    suggestion.reviewed_by = caller.user.id
    suggestion.reviewed_at = reviewed_at
    caller.record(
        session,
        "suggestion_review",
        body.decision,
        "suggestion",
        suggestion.id,
        {
            "notes": body.notes,
            "status": suggestion.status,
            "suggestion_type": suggestion.suggestion_type,
            "watchlist_id": watchlist.id,
            "crypto_id": suggestion.crypto_id,
            "item_id": item.id if item else None,
        },
    )
    session.commit()
    suggestion_out = _described(session, [SuggestionOut.model_validate(suggestion)])[0]
    item_out = (
        None
        if item is None
        else ItemOut.model_validate(item).model_copy(update={"symbol": suggestion_out.symbol})
    )
    return ReviewOut(suggestion=suggestion_out, item=item_out)
