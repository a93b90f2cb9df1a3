"""Shapes shared by every area."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

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


class ValidationIssue(BaseModel):
    """One invalid field, as FastAPI reports it."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None


class ErrorOut(BaseModel):
    """Every error answer: a one-line message (some add fields naming what conflicted), or
    FastAPI's list of invalid fields when the request does not match the schema (422)."""

    model_config = ConfigDict(extra="allow")

    detail: str | list[ValidationIssue]
