"""A limit on request bodies, counted as they stream in, and a time-out for slow senders.

uvicorn reads a body as fast as the client sends it and holds no limit of its own, so one
anonymous client could make a worker parse a 100 MB JSON document (seconds of CPU, and a 422
that echoed it back) or hold a request open by declaring a large body and sending little of
it. This middleware refuses a declared `Content-Length` over the limit before reading a byte,
counts a body without one (chunked) as it arrives, and answers 408 when the next part of a
body takes longer than the read time-out. A route that does not read its body costs nothing.
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware: 413 past `max_bytes`, 408 after `read_timeout` seconds of silence."""

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            refusal = JSONResponse(
                {"detail": self._too_large()}, status_code=413, headers={"Connection": "close"}
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        """`receive`, raising 413 once the body passes the limit and 408 when a part of it
        does not arrive in time. The HTTPException reaches FastAPI's handler, which answers
        it (FastAPI re-raises HTTPExceptions met while reading a body)."""
        received = 0
        complete = False

        async def counted() -> Message:
            nonlocal received, complete
            if complete:  # later calls wait for a disconnect: no time-out there
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout)
            except TimeoutError:
                raise HTTPException(
                    408, f"the request body stopped arriving for {self.read_timeout:g} s"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._too_large())
                complete = not message.get("more_body", False)
            return message

        return counted

    def _too_large(self) -> str:
        return f"the request body exceeds {self.max_bytes} bytes"


def _content_length(scope: Scope) -> int | None:
    """The declared body size; None when absent or unreadable (the server rejects those)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
