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

# The router tries each route in turn until one matches: the forecasts, the hot path, first
# (`POST /predictions` was tried against some forty routes on each request, profiled).
ROUTERS: list[APIRouter] = [
    predictions.router,
    auth.router,
    users.router,
    market.router,
    watchlists.router,
    suggestions.router,
    signals.router,
    dashboards.router,
    system.router,
]
