"""AI suggestions for watchlists, and their review.

The spec's endpoint list names a `suggestion_reviews` table that the schema does not have; a
review is recorded on the suggestion itself (`status`, `reviewed_by`, `reviewed_at`,
`implemented_at`) and in `user_activities`, whose details keep the reviewer's notes.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.schema import AiSuggestion, Watchlist, WatchlistAsset
from serving.errors import Conflict, NotFound
from serving.lookups import find, find_crypto, symbols
from serving.schemas.common import Page
from serving.schemas.suggestions import ReviewIn, ReviewOut, SuggestionOut
from serving.schemas.watchlists import ItemOut
from serving.services import watchlist_changes as changes
from serving.services.auth import now
from serving.services.callers import Caller, record_and_commit
from serving.services.pagination import Paging, TimeRange, equal_to, paginate, within


def list_visible(
    session: Session,
    caller: Caller,
    page: Paging,
    period: TimeRange,
    *,
    status: str | None = None,
    suggestion_type: str | None = None,
    watchlist_id: int | None = None,
    crypto: str | None = None,
    ai_layer: int | None = None,
) -> Page[SuggestionOut]:
    """Suggestions for the watchlists the caller may read, newest first."""
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


def review(session: Session, caller: Caller, suggestion_id: int, body: ReviewIn) -> ReviewOut:
    """Reject, approve (a `tier_change`) or implement (approve and apply) a suggestion.

    Applying it to the watchlist happens in this transaction, so a change that would break
    a limit refuses the review whole.
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
        item = changes.apply_suggestion(session, suggestion, watchlist, caller.user_id)
        suggestion.status = "implemented"
        suggestion.implemented_at = reviewed_at
    suggestion.reviewed_by = caller.user_id
    suggestion.reviewed_at = reviewed_at
    record_and_commit(
        session,
        caller,
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
    suggestion_out = _described(session, [SuggestionOut.model_validate(suggestion)])[0]
    item_out = (
        None
        if item is None
        else ItemOut.model_validate(item).model_copy(update={"symbol": suggestion_out.symbol})
    )
    return ReviewOut(suggestion=suggestion_out, item=item_out)


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


def _described(session: Session, suggestions: list[SuggestionOut]) -> list[SuggestionOut]:
    by_id = symbols(session, {s.crypto_id for s in suggestions})
    return [s.model_copy(update={"symbol": by_id.get(s.crypto_id)}) for s in suggestions]
