"""One router per area of the spec's endpoint list."""

from fastapi import APIRouter

from serving.api.routers import (
    auth,
    dashboards,
    market,
    predictions,
    signals,
    suggestions,
    system,
    users,
    watchlists,
)

ROUTERS: list[APIRouter] = [
    auth.router,
    users.router,
    market.router,
    watchlists.router,
    suggestions.router,
    signals.router,
    predictions.router,
    dashboards.router,
    system.router,
]
