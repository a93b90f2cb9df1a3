"""Watchlists and their items."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from serving.schemas.common import Crypto, Input, Patch, Schema

MAX_POSITION = 100_000
MAX_ASSETS = 1000


class WatchlistCreate(Input):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    type: Literal["personal", "default"] = Field(
        default="personal", description="'default' is for administrators, and there is one."
    )
    is_active: bool = True
    is_public: bool = False
    max_assets: int = Field(
        default=25, ge=1, le=MAX_ASSETS, description="Most active assets it may hold."
    )
    sort_order: int = Field(default=0, ge=-1_000_000, le=1_000_000)


class WatchlistUpdate(Patch):
    not_null = ("name", "is_active", "is_public", "max_assets", "sort_order")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    is_active: bool | None = None
    is_public: bool | None = None
    max_assets: int | None = Field(default=None, ge=1, le=MAX_ASSETS)
    sort_order: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)


class WatchlistOut(Schema):
    id: int
    name: str
    description: str | None
    user_id: int | None
    type: str
    is_active: bool
    is_public: bool
    max_assets: int | None
    sort_order: int | None
    created_at: datetime | None
    updated_at: datetime | None
    item_count: int = Field(default=0, description="Active assets.")
    in_ai_context: bool = Field(
        default=False,
        description="Whether the AI works from it (get_user_ai_context): an active personal "
        "watchlist, or the active default for a user who has none.",
    )


class ItemCreate(Input):
    crypto: Crypto = Field(description="Cryptocurrency id or symbol.", examples=["BTC"])
    position: int | None = Field(
        default=None, ge=1, le=MAX_POSITION, description="A free place; default: after the last."
    )
    weight: float = Field(default=0.0, ge=0, le=1, description="Portfolio weight, 0 to 1.")
    target_allocation: float | None = Field(default=None, ge=0, le=1)
    notes: str | None = Field(default=None, max_length=2000)
    is_active: bool = True


class ItemUpdate(Patch):
    not_null = ("position", "weight", "is_active")

    position: int | None = Field(default=None, ge=1, le=MAX_POSITION)
    weight: float | None = Field(default=None, ge=0, le=1)
    target_allocation: float | None = Field(default=None, ge=0, le=1)
    notes: str | None = Field(default=None, max_length=2000)
    is_active: bool | None = None


class ItemOut(Schema):
    id: int
    watchlist_id: int
    crypto_id: int
    symbol: str | None = None
    position: int
    weight: float | None
    target_allocation: float | None
    notes: str | None
    is_active: bool
    added_at: datetime | None
    added_by: int | None
    last_modified_by: int | None
    updated_at: datetime | None
