"""Shapes shared by every area."""

from __future__ import annotations

import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

Item = TypeVar("Item")

# Every id column is PostgreSQL's `integer`; bounding ids here makes both databases answer
# 422 alike (SQLite cannot even bind an int past 2^63 - 1, PostgreSQL refuses past 2^31 - 1).
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
# A coin named by symbol or id.
Crypto = Annotated[str, Field(min_length=1, max_length=20)] | Id

# JSON a user writes (risk rules, preferences) is stored as it is and copied into the activity
# log: bounded so that every later read can serialise it.
MAX_JSON_DEPTH = 16
MAX_JSON_BYTES = 16_384
# Reads stop short of pydantic's own serialisation depth limit (a stored deeper value is
# replaced by a note, never a 500).
READABLE_JSON_DEPTH = 64


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


def json_depth(value: Any, stop: int) -> int:
    """How deep `value` nests (a scalar is 0), counting no further than `stop` + 1;
    iterative, so that no input can exhaust the stack."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if depth > stop:
                return depth
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth) for child in children)
    return deepest


def _bounded_json(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if json_depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ValueError(f"nested too deep: at most {MAX_JSON_DEPTH} levels")
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > MAX_JSON_BYTES:
        raise ValueError(f"too large: {size} bytes of JSON, at most {MAX_JSON_BYTES}")
    return value


def _readable_json(value: Any) -> Any:
    if json_depth(value, READABLE_JSON_DEPTH) > READABLE_JSON_DEPTH:
        return {"unreadable": f"stored value nested deeper than {READABLE_JSON_DEPTH} levels"}
    return value


UserJson = Annotated[
    dict[str, Any] | None,
    AfterValidator(_bounded_json),
    Field(description=f"At most {MAX_JSON_DEPTH} levels deep and {MAX_JSON_BYTES} bytes."),
]
StoredJson = Annotated[dict[str, Any], BeforeValidator(_readable_json)]


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any string (or key) in a parsed JSON body holds a lone UTF-16 surrogate,
    which no database can store and no answer can encode."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class Input(BaseModel):
    """Base of every request body: text must be valid Unicode."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if _has_lone_surrogate(data):
            raise ValueError("text must be valid Unicode: a lone UTF-16 surrogate is refused")
        return data
