"""Asset price forecasts: made on request, listed, annotated, and checked against reality."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import TypeAdapter

from serving.api.deps import (
    AsCaller,
    CurrentCaller,
    DbSession,
    Forecasting,
    PageParams,
    Period,
)
from serving.schemas.common import DIGITS, TRUE_OR_FALSE, Page, PathId, QueryId
from serving.schemas.predictions import (
    AccuracyOut,
    BatchPredictionRequest,
    PredictionOut,
    PredictionRequest,
    PredictionUpdate,
)
from serving.services import predictions

router = APIRouter(prefix="/predictions", tags=["predictions"])
_PREDICTION_LIST = TypeAdapter(list[PredictionOut])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PredictionOut)
async def create_prediction(
    body: PredictionRequest,
    as_caller: AsCaller,
    forecaster: Forecasting,
) -> Response:
    """Forecast one coin from its latest candle with the active asset model, and persist it.

    404 unknown crypto or watchlist; 422 a horizon the active model does not forecast;
    409 candles older than `MAX_CANDLE_AGE_HOURS` (the answer names the last candle time)
    or too little history; 503 no active asset model.
    """
    created = await as_caller(
        lambda session, caller: predictions.create(
            session,
            caller,
            [body.crypto],
            horizon_hours=body.horizon_hours,
            watchlist_id=body.watchlist_id,
            forecaster=forecaster,
        )
    )
    return _created(created[0].model_dump_json())


@router.post("/batch", status_code=status.HTTP_201_CREATED, response_model=list[PredictionOut])
async def create_predictions(
    body: BatchPredictionRequest,
    as_caller: AsCaller,
    forecaster: Forecasting,
) -> Response:
    """Forecast many coins in one call: all are written, or (on any error) none."""
    created = await as_caller(
        lambda session, caller: predictions.create(
            session,
            caller,
            body.cryptos,
            horizon_hours=body.horizon_hours,
            watchlist_id=body.watchlist_id,
            forecaster=forecaster,
        )
    )
    return _created(_PREDICTION_LIST.dump_json(created))


def _created(answer: bytes | str) -> Response:
    """A 201 with the answer serialised once. Given a model, FastAPI validates it again
    against `response_model` and then serialises it, on a worker thread (profiled)."""
    return Response(answer, status_code=status.HTTP_201_CREATED, media_type="application/json")


@router.get("", response_model=Page[PredictionOut])
def list_predictions(
    caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    period: Period,
    crypto: Annotated[str | None, Query(description="Symbol or id.")] = None,
    model_name: Annotated[str | None, Query(max_length=50)] = None,
    layer: Annotated[int | None, Query(ge=1, le=4), DIGITS] = None,
    realized: Annotated[
        bool | None, Query(description="Only evaluated (or pending) ones."), TRUE_OR_FALSE
    ] = None,
    watchlist_id: QueryId = None,
    mine: Annotated[
        bool, Query(description="Only the caller's own requests."), TRUE_OR_FALSE
    ] = False,
) -> Page[PredictionOut]:
    """Predictions the caller may see, newest first: their own and the system's (`analyze`).

    Administrators see every user's.
    """
    return predictions.list_visible(
        session,
        caller,
        page,
        period,
        crypto=crypto,
        model_name=model_name,
        layer=layer,
        realized=realized,
        watchlist_id=watchlist_id,
        mine=mine,
    )


@router.get("/{prediction_id:int}", response_model=PredictionOut)
def get_prediction(
    prediction_id: PathId, caller: CurrentCaller, session: DbSession
) -> PredictionOut:
    return predictions.get(session, caller, prediction_id)


@router.put("/{prediction_id:int}", response_model=PredictionOut)
def update_prediction(
    prediction_id: PathId, body: PredictionUpdate, caller: CurrentCaller, session: DbSession
) -> PredictionOut:
    """Annotate a prediction. What was forecast is a record and cannot be changed.

    The owner may annotate their own; system predictions only an administrator.
    """
    return predictions.annotate(session, caller, prediction_id, body.notes)


@router.get("/{prediction_id:int}/accuracy", response_model=AccuracyOut)
def prediction_accuracy(
    prediction_id: PathId, caller: CurrentCaller, session: DbSession
) -> AccuracyOut:
    """How the forecast turned out, as the nightly evaluation recorded it."""
    return predictions.accuracy(session, caller, prediction_id)
