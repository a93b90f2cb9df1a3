"""Shapes shared by every area."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

Item = TypeVar("Item")


class Schema(BaseModel):
    """Base of every response body: read from ORM rows, NUMERIC served as JSON numbers."""

    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    total: int
    limit: int
    offset: int


class Message(BaseModel):
    detail: str
