"""Errors the API answers with a status code and a one-line message, never a 500.

Every error body is small and safe to send: text is cut to a bound and escaped where it is not
valid Unicode, and a validation error echoes an input only when it is a short scalar of a
field that holds no secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MAX_DETAIL_CHARS = 500
MAX_ISSUES = 20
MAX_ECHOED_CHARS = 100
# A field whose name contains one of these is never echoed, wherever it is in a body.
SECRET_WORDS = ("password", "token")


class ApiError(Exception):
    """An expected failure: `status_code` and `detail` go to the client as they are."""

    status_code = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class Unauthorized(ApiError):
    status_code = 401


class Forbidden(ApiError):
    status_code = 403


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class Unprocessable(ApiError):
    status_code = 422


class TooManyRequests(ApiError):
    """Answered with `Retry-After`: the seconds until the caller may try again."""

    status_code = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


class ServiceUnavailable(ApiError):
    status_code = 503


def safe_text(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """`text` cut to `limit` characters, lone surrogates escaped so that it encodes."""
    cut = text[:limit] + ("..." if len(text) > limit else "")
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


def validation_issues(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's list of invalid fields, bounded: the first `MAX_ISSUES`, each with its
    location, message and type, and its input only when `_echoable`."""
    issues = []
    for error in list(errors)[:MAX_ISSUES]:
        loc = [
            part if isinstance(part, int) else safe_text(str(part), 100) for part in error["loc"]
        ]
        issue: dict[str, Any] = {
            "loc": loc,
            "msg": safe_text(str(error.get("msg", ""))),
            "type": safe_text(str(error.get("type", "")), 100),
        }
        if _echoable(loc, error.get("input")):
            issue["input"] = error["input"]
        issues.append(issue)
    return issues


def _echoable(loc: list[str | int], value: Any) -> bool:
    """A short scalar outside any secret field (a password change's `current` and `new`
    lie under `password`)."""
    names = [part.lower() for part in loc if isinstance(part, str)]
    if any(word in name for word in SECRET_WORDS for name in names):
        return False
    if value is not None and not isinstance(value, str | bool | int | float):
        return False
    text = str(value)
    return len(text) <= MAX_ECHOED_CHARS and safe_text(text) == text
