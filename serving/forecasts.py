"""On-demand asset forecasts for `POST /predictions`, persisted as complete `predictions` rows.

The coins' latest candles are the decision time: the panel is cut there, so the features are
the ones training computed at that hour, and nothing later can leak in. A candle older than
`max_candle_age` is refused rather than silently forecast from stale data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from db.schema import Cryptocurrency, Prediction, PriceData
from serving.errors import Conflict, ServiceUnavailable, Unprocessable
from serving.prediction_rows import prediction_row
from serving.predictor import HISTORY_HOURS, ModelUnavailable, Predictor, recent
from training.datasets import load_panel


def forecast(
    session: Session,
    engine: Engine,
    predictor: Predictor,
    coins: Sequence[Cryptocurrency],
    *,
    horizon_hours: int | None,
    max_candle_age: timedelta,
    now: datetime,
    user_id: int | None,
    watchlist_id: int | None,
) -> list[int]:
    """Forecast each coin from its latest candle; add the rows to `session`; their ids.

    All coins are checked before anything is written, so a batch is written whole or not
    at all.
    """
    try:
        model = predictor.require("asset")
    except ModelUnavailable as error:
        raise ServiceUnavailable(str(error)) from None
    if horizon_hours is not None and horizon_hours != model.family.horizon:
        raise Unprocessable(
            f"the active {model.name} model (version {model.version}) forecasts "
            f"{model.family.horizon} hours ahead, not {horizon_hours}; ask for "
            f"horizon_hours={model.family.horizon} or train one with "
            f"`cryptopredict train --layer asset --horizon {horizon_hours}`"
        )
    latest = _latest_candles(session, [coin.id for coin in coins])
    for coin in coins:
        last = latest.get(coin.id)
        if last is None:
            raise Conflict(f"{coin.symbol} has no candles to forecast from", crypto=coin.symbol)
        if now - last > max_candle_age:
            raise Conflict(
                f"the latest {coin.symbol} candle ({last.isoformat()}) is older than "
                f"{max_candle_age}; ingest fresh candles first",
                crypto=coin.symbol,
                last_candle_time=last.isoformat(),
            )
    rows = []
    for as_of in sorted({latest[coin.id] for coin in coins}):
        batch = [coin for coin in coins if latest[coin.id] == as_of]
        rows.extend(_forecast_at(engine, predictor, batch, as_of))
    for row in rows:
        row.update(user_id=user_id, watchlist_id=watchlist_id)
    return list(session.scalars(insert(Prediction).returning(Prediction.id), rows))


def _forecast_at(
    engine: Engine, predictor: Predictor, coins: Sequence[Cryptocurrency], as_of: datetime
) -> list[dict[str, Any]]:
    """Rows for coins whose latest candle is `as_of`, from the market as it stood then."""
    since = as_of - timedelta(hours=HISTORY_HOURS)
    panel = recent(load_panel(engine, since=since, until=as_of), pd.Timestamp(as_of))
    view = predictor.market_view(panel)
    symbols = [coin.symbol for coin in coins]
    assets = predictor.assets(panel, view, symbols)
    missing = sorted(set(symbols) - set(assets.index))
    if missing:
        raise Conflict(
            f"not enough history at {as_of.isoformat()} to compute the features of "
            f"{', '.join(missing)}; the model needs about {HISTORY_HOURS} hours of candles"
        )
    model = assets.attrs["model"]
    ids = {coin.symbol: coin.id for coin in coins}
    return [
        prediction_row(model, view, panel, str(symbol), row, ids[str(symbol)])
        for symbol, row in assets.iterrows()
    ]


def _latest_candles(session: Session, crypto_ids: list[int]) -> dict[int, datetime]:
    rows = session.execute(
        select(PriceData.crypto_id, func.max(PriceData.timestamp))
        .where(PriceData.crypto_id.in_(crypto_ids))
        .group_by(PriceData.crypto_id)
    )
    return {crypto_id: moment for crypto_id, moment in rows if moment is not None}
