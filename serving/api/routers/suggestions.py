"""AI suggestions for watchlists, and their review (see `serving.services.suggestions`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from serving.api.deps import CurrentCaller, DbSession, PageParams, Period
from serving.schemas.common import DIGITS, Page, PathId, QueryId
from serving.schemas.suggestions import (
    ReviewIn,
    ReviewOut,
    SuggestionOut,
    SuggestionStatus,
    SuggestionType,
)
from serving.services import suggestions

router = APIRouter(tags=["suggestions"])


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
    return suggestions.list_visible(
        session,
        caller,
        page,
        period,
        status=status,
        suggestion_type=suggestion_type,
        watchlist_id=watchlist_id,
        crypto=crypto,
        ai_layer=ai_layer,
    )


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
    return suggestions.review(session, caller, suggestion_id, body)
