"""Asset price forecasts: made on request, listed, annotated, and checked against reality."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Row, or_, select, true
from sqlalchemy.orm import Session

from db.schema import Cryptocurrency, Prediction
from serving.errors import Forbidden, Unprocessable
from serving.inference.forecasts import ForecastCache, forecast
from serving.inference.models_cache import ActiveModels
from serving.lookups import CoinDirectory, crypto_filter, find
from serving.schemas.common import Page
from serving.schemas.predictions import AccuracyOut, PredictionOut, holds, price_interval
from serving.services.callers import Caller, record_and_commit
from serving.services.pagination import Paging, TimeRange, equal_to, paginate, within
from serving.services.watchlist_changes import readable_watchlist


@dataclass(frozen=True)
class Forecaster:
    """What forecasting on request reads besides the caller: the active versions, the coins,
    the market snapshots shared by the requests of an hour, and how old a candle may be."""

    models: ActiveModels
    coins: CoinDirectory
    forecasts: ForecastCache
    max_candle_age: timedelta


def create(
    session: Session,
    caller: Caller,
    references: Sequence[str | int],
    *,
    horizon_hours: int | None,
    watchlist_id: int | None,
    forecaster: Forecaster,
) -> list[PredictionOut]:
    """Forecast each coin named (each once) and persist the rows: all of them, or none."""
    active = forecaster.models.at(session, caller.identity.data_version)
    named = forecaster.coins.find(session, active.data_version, references)
    counts = Counter(coin.symbol for coin in named)
    duplicates = {symbol for symbol, count in counts.items() if count > 1}
    if duplicates:
        raise Unprocessable(f"each crypto once per batch: {', '.join(sorted(duplicates))}")
    if watchlist_id is not None:
        readable_watchlist(session, caller, watchlist_id)
    created = forecast(
        session,
        forecaster.forecasts,
        active,
        named,
        horizon_hours=horizon_hours,
        max_candle_age=forecaster.max_candle_age,
        now=datetime.now(UTC),
        user_id=caller.user_id,
        watchlist_id=watchlist_id,
    )
    ids = [row["id"] for row in created]
    symbols = {coin.id: coin.symbol for coin in named}
    answer = [
        PredictionOut.model_validate({**row, "symbol": symbols[row["crypto_id"]]})
        for row in sorted(created, key=lambda row: row["id"])
    ]
    record_and_commit(
        session,
        caller,
        "ai_interaction",
        "create",
        "prediction",
        ids[0] if len(ids) == 1 else None,
        {"prediction_ids": ids, "cryptos": [coin.symbol for coin in named]},
    )
    return answer


def list_visible(
    session: Session,
    caller: Caller,
    page: Paging,
    period: TimeRange,
    *,
    crypto: str | None = None,
    model_name: str | None = None,
    layer: int | None = None,
    realized: bool | None = None,
    watchlist_id: int | None = None,
    mine: bool = False,
) -> Page[PredictionOut]:
    """The predictions the caller may see, newest first (see `_visible_to`)."""
    statement = (
        select(Prediction, Cryptocurrency.symbol)
        .join(Cryptocurrency, Cryptocurrency.id == Prediction.crypto_id)
        .where(_visible_to(caller, mine))
    )
    if crypto is not None:
        statement = statement.where(crypto_filter(crypto))
    statement = equal_to(
        statement,
        {
            Prediction.model_name: model_name,
            Prediction.layer_source: layer,
            Prediction.watchlist_id: watchlist_id,
        },
    )
    if realized is not None:
        statement = statement.where(Prediction.is_realized.is_(realized))
    statement = within(statement, Prediction.created_at, period)
    statement = statement.order_by(Prediction.created_at.desc(), Prediction.id.desc())
    return paginate(session, statement, page, PredictionOut, item=_row_out)


def get(session: Session, caller: Caller, prediction_id: int) -> PredictionOut:
    prediction = _readable(session, caller, prediction_id)
    return _out(prediction, _symbol(session, prediction))


def annotate(
    session: Session, caller: Caller, prediction_id: int, notes: str | None
) -> PredictionOut:
    """Set a prediction's notes: the owner's own, system ones an administrator's."""
    prediction = _readable(session, caller, prediction_id)
    if not (caller.is_admin or caller.owns(prediction.user_id)):
        raise Forbidden(f"prediction {prediction_id} is not yours to annotate")
    prediction.notes = notes
    record_and_commit(
        session, caller, "prediction", "update", "prediction", prediction.id, {"notes": True}
    )
    return _out(prediction, _symbol(session, prediction))


def accuracy(session: Session, caller: Caller, prediction_id: int) -> AccuracyOut:
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


def _visible_to(caller: Caller, mine: bool) -> ColumnElement[bool]:
    """Which predictions a list shows: the caller's own, plus the system's unless `mine`;
    every user's for an administrator."""
    own = Prediction.user_id == caller.user_id
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


def _row_out(row: Row[Prediction, str]) -> PredictionOut:
    prediction, symbol = row
    return _out(prediction, symbol)


def _out(prediction: Prediction, symbol: str | None) -> PredictionOut:
    out = PredictionOut.model_validate(prediction)
    out.symbol = symbol
    return out
