"""Shapes shared by every area."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar

from fastapi import Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from config.settings import Settings
from serving.errors import Unprocessable

Item = TypeVar("Item")

# Query and path values arrive as text, which pydantic reads leniently (`0`, `yes` and `on` as
# booleans, `5.0` and `5_000` as integers, a bare number as a Unix time). These read them as
# the OpenAPI schema declares them, and nothing else.
_INTEGER = re.compile(r"-?[0-9]+")
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def _text_bool(value: Any) -> Any:
    if isinstance(value, str) and value not in ("true", "false"):
        raise ValueError("a boolean is 'true' or 'false'")
    return value


def _text_int(value: Any) -> Any:
    if isinstance(value, str) and not _INTEGER.fullmatch(value):
        raise ValueError("an integer is written in decimal digits, e.g. 42")
    return value


def _text_time(value: Any) -> Any:
    if isinstance(value, str) and not _DATE_TIME.match(value):
        raise ValueError("a date-time is ISO 8601 with a zone, e.g. 2026-01-01T00:00:00Z")
    return value


# Placed after Query() or Path() in an `Annotated` (so that the bounds stay in the schema):
# `Annotated[int | None, Query(ge=1, le=4), DIGITS]`.
TRUE_OR_FALSE = BeforeValidator(_text_bool)
DIGITS = BeforeValidator(_text_int)
ISO_TIME = BeforeValidator(_text_time)

# Every id column is PostgreSQL's `integer`; bounding ids here makes both databases answer
# 422 alike (SQLite cannot even bind an int past 2^63 - 1, PostgreSQL refuses past 2^31 - 1).
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID), DIGITS]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID), DIGITS]
# A coin named by symbol or id.
Crypto = Annotated[str, Field(min_length=1, max_length=20)] | Id

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


def check_user_json(settings: Settings, **fields: dict[str, Any] | None) -> None:
    """422 unless each JSON object a user writes (risk rules, preferences) is within
    `MAX_JSON_DEPTH` and `MAX_JSON_BYTES`: it is stored as it is and copied into the activity
    log, so every later read must be able to serialise it."""
    depth, most = settings.max_json_depth, settings.max_json_bytes
    for name, value in fields.items():
        if value is None:
            continue
        if json_depth(value, depth) > depth:
            raise Unprocessable(f"{name} is nested too deep: at most {depth} levels")
        size = len(json.dumps(value, ensure_ascii=False).encode())
        if size > most:
            raise Unprocessable(f"{name} is too large: {size} bytes of JSON, at most {most}")


def _readable_json(value: Any) -> Any:
    if json_depth(value, READABLE_JSON_DEPTH) > READABLE_JSON_DEPTH:
        return {"unreadable": f"stored value nested deeper than {READABLE_JSON_DEPTH} levels"}
    return value


UserJson = Annotated[
    dict[str, Any] | None,
    Field(
        description="At most MAX_JSON_DEPTH levels deep and MAX_JSON_BYTES bytes of JSON "
        "(settings; 16 and 16,384 by default)."
    ),
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
    """Base of every request body: values of the JSON types the schema declares (strict: no
    `"5"` for an integer, no `0` or `"yes"` for a boolean, no `true` for an id), and text
    that is valid Unicode."""

    model_config = ConfigDict(strict=True)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if _has_lone_surrogate(data):
            raise ValueError("text must be valid Unicode: a lone UTF-16 surrogate is refused")
        return data


def _declare_not_null(schema: dict[str, Any], model: type[Any]) -> None:
    """The schema of a `Patch`: its `not_null` fields are optional, of their own type only."""
    properties = schema.get("properties", {})
    for name in getattr(model, "not_null", ()):
        field = properties[name]
        branches = [branch for branch in field.pop("anyOf", []) if branch != {"type": "null"}]
        if len(branches) == 1:
            field.update(branches[0])
        elif branches:
            field["anyOf"] = branches
        field.pop("default", None)


class Patch(Input):
    """Base of a partial update. A field in `not_null` may be left out (it keeps its value)
    but not given as null: validation refuses null, and the schema declares no null."""

    not_null: ClassVar[tuple[str, ...]] = ()
    model_config = ConfigDict(json_schema_extra=_declare_not_null)

    @model_validator(mode="after")
    def _refuse_null(self) -> Self:
        given = sorted(
            name
            for name in self.not_null
            if name in self.model_fields_set and getattr(self, name) is None
        )
        if given:
            raise ValueError(f"{', '.join(given)} may not be null; leave it out to keep it")
        return self
