"""AI suggestions for watchlists and their review."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from serving.schemas.common import Input, Schema
from serving.schemas.watchlists import ItemOut

SuggestionStatus = Literal["pending", "approved", "rejected", "implemented", "expired"]
SuggestionType = Literal["add", "remove", "rebalance", "tier_change"]


class SuggestionOut(Schema):
    id: int
    watchlist_id: int
    crypto_id: int
    symbol: str | None = None
    suggestion_type: str
    ai_layer: int
    confidence_score: float
    reasoning: dict[str, Any]
    context_data: dict[str, Any] | None
    target_position: int | None
    target_weight: float | None
    expected_return: float | None
    risk_score: float | None
    status: str
    reviewed_by: int | None
    reviewed_at: datetime | None
    implemented_at: datetime | None
    actual_return: float | None
    success_score: float | None
    created_at: datetime | None
    expires_at: datetime | None


class ReviewIn(Input):
    decision: Literal["approve", "reject"]
    notes: str | None = Field(
        default=None, max_length=2000, description="Kept in the review's user_activities row."
    )


class ReviewOut(BaseModel):
    suggestion: SuggestionOut
    item: ItemOut | None = Field(
        description="The watchlist item an approved add or rebalance left; null otherwise."
    )
