"""The FastAPI application: every endpoint of the spec under /api/v1, OpenAPI at /docs."""

from __future__ import annotations

import gc
import logging
import re

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.pool import NullPool
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from config.settings import Settings, get_settings
from db.engine import make_engine, session_factory
from serving.api.body_limit import BodyLimit
from serving.api.routers import ROUTERS
from serving.errors import ApiError, TooManyRequests, safe_text, validation_issues
from serving.inference.forecasts import ForecastCache
from serving.inference.models_cache import ActiveModels
from serving.lookups import CoinDirectory
from serving.schemas.common import ErrorOut
from store.tracking import configure_tracking

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"

# The error contract, documented on every route: an `ErrorOut` body with one of these codes.
ERRORS = {
    400: "The body is not valid JSON.",
    401: "No token, or an invalid, expired or revoked one; at login, wrong credentials.",
    403: "The caller's role, or the row's owner, does not allow it.",
    404: "The row named in the path, query or body does not exist.",
    409: "The current state refuses it: a limit, a duplicate, a stale or closed row.",
    408: "The request body stopped arriving (BODY_READ_TIMEOUT_SECONDS).",
    413: "The request body is larger than MAX_REQUEST_BYTES.",
    422: "Invalid input: FastAPI's list of fields, or the rule the input breaks.",
    429: "Too many failed password attempts from this address: wait `Retry-After` seconds.",
    503: "The database or the active model is unavailable; retry shortly.",
}
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut, "description": description} for code, description in ERRORS.items()
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """An app bound to the database `settings` name (default: the environment's)."""
    settings = settings or get_settings()
    # Statement parameters (token digests, emails) stay out of logs and error messages.
    engine = make_engine(settings.resolved_database_url, hide_parameters=True)
    app = FastAPI(
        title="CryptoPredict",
        version="0.1.0",
        summary="Four-layer crypto market models: regime, sectors, assets, trade timing.",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    # Model and panel lookups do not take from the request pool: a request holds one of its
    # connections and must never wait for a second one (16 requests at once deadlocked it
    # until the pool timed out). Unpooled, they keep no connection open between uses.
    app.state.lookups = make_engine(settings.resolved_database_url, poolclass=NullPool)
    app.state.models = ActiveModels(app.state.lookups)
    app.state.forecasts = ForecastCache(app.state.lookups)
    app.state.coins = CoinDirectory()
    # Active versions load their artifacts from the tracking store training wrote to.
    configure_tracking(settings.resolved_mlflow_tracking_uri, settings.artifact_root)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_request_bytes,
        read_timeout=settings.body_read_timeout_seconds,
    )
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    app.state.path_methods = path_methods()
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(DataError, _out_of_range)
    app.add_exception_handler(DBAPIError, _database_error)
    return app


def create_served_app() -> FastAPI:
    """`create_app` for a server process (`cryptopredict serve`, one per worker).

    Start-up leaves about half a million objects (the libraries, the app) that live as long
    as the process; each full collection of the garbage collector scanned them all, a pause
    of 250 to 290 ms that set the tail of `POST /predictions` (measured). Frozen, the
    collector skips them: a full collection then took 25 ms with the models loaded.
    """
    app = create_app()
    gc.collect()
    gc.freeze()
    return app


def path_methods() -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """Every API path (as the router matches it) with the methods its routes answer."""
    table = []
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            pattern, _, _ = compile_path(API_PREFIX + route.path)
            table.append((pattern, frozenset(route.methods or ())))
    return table


async def _http_error(request: Request, error: Exception) -> Response:
    """A 405's `Allow` names every method of the path: the router stops at the first route
    whose path matches (`/predictions` has POST and GET routes), and names only that one's."""
    assert isinstance(error, HTTPException)
    if error.status_code == 405:
        path = request.scope["path"]
        allowed = sorted(
            {
                method
                for pattern, methods in request.app.state.path_methods
                if pattern.match(path)
                for method in methods
            }
        )
        if allowed:
            return JSONResponse(
                {"detail": f"{safe_text(request.method, 20)} is not allowed here"},
                status_code=405,
                headers={"Allow": ", ".join(allowed)},
            )
    return await http_exception_handler(request, error)


async def _api_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if error.status_code == 401 else {}
    if isinstance(error, TooManyRequests):
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(
        {"detail": safe_text(error.detail), **error.extra},
        status_code=error.status_code,
        headers=headers,
    )


async def _invalid(_request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422, bounded: no secret, no large input, nothing that cannot be encoded."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": validation_issues(error.errors())}, status_code=422)


async def _database_down(_request: Request, error: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", str(error).splitlines()[0] if str(error) else error)
    return JSONResponse(
        {"detail": "the database is unavailable; retry shortly"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def _out_of_range(request: Request, error: Exception) -> JSONResponse:
    """A value PostgreSQL cannot store (an id past its integer column, a NUL character in
    text) came from the client: 422, not 500."""
    assert isinstance(error, DataError)
    log.info("unstorable value on %s %s: %s", request.method, request.url.path, error.orig)
    detail = "a value cannot be stored: out of range for its column, or a NUL character"
    return JSONResponse({"detail": detail}, status_code=422)


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DBAPIError)
    if error.connection_invalidated:
        return await _database_down(request, error)
    log.exception("database error on %s %s", request.method, request.url.path, exc_info=error)
    return JSONResponse({"detail": "internal database error"}, status_code=500)
