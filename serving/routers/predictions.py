"""Asset price forecasts: made on request, listed, annotated, and checked against reality."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.orm import Session

from cryptopredict.settings import Settings
from db.schema import Cryptocurrency, Prediction
from serving.deps import AppSettings, Caller, CurrentCaller, DbSession, PageParams, Period
from serving.errors import Forbidden, Unprocessable
from serving.forecasts import forecast
from serving.lookups import crypto_filter, find
from serving.pagination import equal_to, within
from serving.schemas.common import DIGITS, TRUE_OR_FALSE, Page, PathId, QueryId
from serving.schemas.predictions import (
    AccuracyOut,
    BatchPredictionRequest,
    PredictionOut,
    PredictionRequest,
    PredictionUpdate,
    holds,
    price_interval,
)
from serving.watchlist_changes import readable_watchlist

router = APIRouter(prefix="/predictions", tags=["predictions"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PredictionOut)
def create_prediction(
    body: PredictionRequest,
    request: Request,
    caller: CurrentCaller,
    session: DbSession,
    settings: AppSettings,
) -> PredictionOut:
    """Forecast one coin from its latest candle with the active asset model, and persist it.

    404 unknown crypto or watchlist; 422 a horizon the active model does not forecast;
    409 candles older than `MAX_CANDLE_AGE_HOURS` (the answer names the last candle time)
    or too little history; 503 no active asset model.
    """
    return _create(request, caller, session, settings, [body.crypto], body)[0]


@router.post("/batch", status_code=status.HTTP_201_CREATED, response_model=list[PredictionOut])
def create_predictions(
    body: BatchPredictionRequest,
    request: Request,
    caller: CurrentCaller,
    session: DbSession,
    settings: AppSettings,
) -> list[PredictionOut]:
    """Forecast many coins in one call: all are written, or (on any error) none."""
    return _create(request, caller, session, settings, body.cryptos, body)


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
    statement = (
        select(Prediction, Cryptocurrency.symbol)
        .join(Cryptocurrency, Cryptocurrency.id == Prediction.crypto_id)
        .where(_visible_to(caller, mine))
    )
    if crypto is not None:
        statement = statement.where(crypto_filter(crypto))
    statement = equal_to(
        statement, {Prediction.model_name: model_name, Prediction.layer_source: layer}
    )
    if realized is not None:
        statement = statement.where(Prediction.is_realized.is_(realized))
    if watchlist_id is not None:
        statement = statement.where(Prediction.watchlist_id == watchlist_id)
    statement = within(statement, Prediction.created_at, period)
    statement = statement.order_by(Prediction.created_at.desc(), Prediction.id.desc())
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    rows = session.execute(statement.limit(page.limit).offset(page.offset)).all()
    return Page[PredictionOut](
        items=[_out(prediction, symbol) for prediction, symbol in rows],
        total=int(total or 0),
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{prediction_id:int}", response_model=PredictionOut)
def get_prediction(
    prediction_id: PathId, caller: CurrentCaller, session: DbSession
) -> PredictionOut:
    prediction = _readable(session, caller, prediction_id)
    return _out(prediction, _symbol(session, prediction))


@router.put("/{prediction_id:int}", response_model=PredictionOut)
def update_prediction(
    prediction_id: PathId, body: PredictionUpdate, caller: CurrentCaller, session: DbSession
) -> PredictionOut:
    """Annotate a prediction. What was forecast is a record and cannot be changed.

    The owner may annotate their own; system predictions only an administrator.
    """
    prediction = _readable(session, caller, prediction_id)
    if not (caller.is_admin or caller.owns(prediction.user_id)):
        raise Forbidden(f"prediction {prediction_id} is not yours to annotate")
    prediction.notes = body.notes
    caller.record(session, "prediction", "update", "prediction", prediction.id, {"notes": True})
    session.commit()
    return _out(prediction, _symbol(session, prediction))


@router.get("/{prediction_id:int}/accuracy", response_model=AccuracyOut)
def prediction_accuracy(
    prediction_id: PathId, caller: CurrentCaller, session: DbSession
) -> AccuracyOut:
    """How the forecast turned out, as the nightly evaluation recorded it."""
    prediction = _readable(session, caller, prediction_id)
    if prediction.is_realized:
        state = "realized"
    elif prediction.target_datetime > datetime.now(UTC):
        state = "pending"
    else:
        state = "awaiting_candle"
    direction = None
    if prediction.actual_price is not None:
        predicted_up = prediction.predicted_price >= prediction.input_price
        direction = predicted_up == (prediction.actual_price >= prediction.input_price)
    interval = price_interval(prediction.predicted_value)
    derived = {
        "state": state,
        "direction_correct": direction,
        "interval": interval,
        "within_interval": holds(
            interval, None if prediction.actual_price is None else float(prediction.actual_price)
        ),
    }
    recorded = {
        name: getattr(prediction, name) for name in AccuracyOut.model_fields if name not in derived
    }
    return AccuracyOut.model_validate({**recorded, **derived})


def _create(
    request: Request,
    caller: Caller,
    session: Session,
    settings: Settings,
    references: list[str | int],
    body: PredictionRequest | BatchPredictionRequest,
) -> list[PredictionOut]:
    models = request.app.state.models.at(session)
    coins = request.app.state.coins.find(session, models.data_version, references)
    counts = Counter(coin.symbol for coin in coins)
    duplicates = {symbol for symbol, count in counts.items() if count > 1}
    if duplicates:
        raise Unprocessable(f"each crypto once per batch: {', '.join(sorted(duplicates))}")
    if body.watchlist_id is not None:
        readable_watchlist(session, caller, body.watchlist_id)
    created = forecast(
        session,
        request.app.state.forecasts,
        models,
        coins,
        horizon_hours=body.horizon_hours,
        max_candle_age=timedelta(hours=settings.max_candle_age_hours),
        now=datetime.now(UTC),
        user_id=caller.user.id,
        watchlist_id=body.watchlist_id,
    )
    ids = [row.id for row in created]
    caller.record(
        session,
        "ai_interaction",
        "create",
        "prediction",
        ids[0] if len(ids) == 1 else None,
        {"prediction_ids": ids, "cryptos": [coin.symbol for coin in coins]},
    )
    # Read before the commit expires them; answered only once the commit succeeded.
    symbols = {coin.id: coin.symbol for coin in coins}
    answer = [_out(row, symbols[row.crypto_id]) for row in sorted(created, key=lambda r: r.id)]
    session.commit()
    return answer


def _visible_to(caller: Caller, mine: bool) -> ColumnElement[bool]:
    """Which predictions a list shows: the caller's own, plus the system's unless `mine`."""
    own = Prediction.user_id == caller.user.id
    if mine:
        return own
    if caller.is_admin:
        return true()
    return or_(own, Prediction.user_id.is_(None))


def _readable(session: Session, caller: Caller, prediction_id: int) -> Prediction:
    prediction = find(session, Prediction, prediction_id, "prediction")
    if not (caller.is_admin or prediction.user_id is None or caller.owns(prediction.user_id)):
        raise Forbidden(f"prediction {prediction_id} belongs to another user")
    return prediction


def _symbol(session: Session, prediction: Prediction) -> str | None:
    return session.scalar(
        select(Cryptocurrency.symbol).where(Cryptocurrency.id == prediction.crypto_id)
    )


def _out(prediction: Prediction, symbol: str | None) -> PredictionOut:
    out = PredictionOut.model_validate(prediction)
    out.symbol = symbol
    return out
