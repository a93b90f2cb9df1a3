"""On-demand asset forecasts for `POST /predictions`, persisted as complete `predictions` rows.

The coins' latest candles are the decision time: the panel is cut there, so the features are
the ones training computed at that hour, and nothing later can leak in. A candle older than
`max_candle_age` is refused rather than silently forecast from stale data.

The market at an hour (the panel, the upper layers' view and every coin's asset outputs) is
the same for every request at that hour, so `ForecastCache` computes it once per process and
shares it. Its key holds the hour, a fingerprint of the candles and coin sectors the panel is
built from, and the active versions: a new or corrected candle, a sector change or a
promotion makes a new entry.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from db.schema import Cryptocurrency, CryptoSectorMapping, Prediction, PriceData
from models.panel import MarketPanel
from serving.errors import Conflict, ServiceUnavailable, Unprocessable
from serving.prediction_rows import prediction_row
from serving.predictor import HISTORY_HOURS, MarketView, ModelUnavailable, Predictor, recent
from training.datasets import load_panel

CACHED_HOURS = 4
# The layers whose active versions the market at an hour depends on.
SNAPSHOT_LAYERS = ("macro", "sector", "asset")


@dataclass(frozen=True)
class MarketSnapshot:
    """The market at `view.as_of`: the panel, the upper layers' view, every coin's outputs."""

    panel: MarketPanel
    view: MarketView
    assets: pd.DataFrame


class ForecastCache:
    """Market snapshots computed once per process and shared by the requests of an hour.

    `engine` loads the panels; it must not draw from the request pool (see `create_app`), so
    that a request holding one of its connections never waits for a second one.
    """

    def __init__(self, engine: Engine, size: int = CACHED_HOURS) -> None:
        self.engine = engine
        self.size = size
        self.loads = 0
        self._snapshots: OrderedDict[tuple[Any, ...], MarketSnapshot] = OrderedDict()
        self._lock = threading.Lock()

    def snapshot(self, session: Session, predictor: Predictor, as_of: datetime) -> MarketSnapshot:
        since = as_of - timedelta(hours=HISTORY_HOURS)
        data = _fingerprint(session, since, as_of)
        versions = tuple(
            None if (loaded := predictor.models.get(layer)) is None else loaded.version
            for layer in SNAPSHOT_LAYERS
        )
        key = (as_of, data, versions)
        # One computation at a time: the requests of a new hour wait for the first one's.
        with self._lock:
            cached = self._snapshots.get(key)
            if cached is not None:
                self._snapshots.move_to_end(key)
                return cached
            panel = recent(load_panel(self.engine, since=since, until=as_of), pd.Timestamp(as_of))
            view = predictor.market_view(panel)
            assets = predictor.assets(panel, view)
            self.loads += 1
            snapshot = MarketSnapshot(panel, view, assets)
            # Filed under the versions that computed it, should one have changed meanwhile.
            used = (view.versions.get("macro"), view.versions.get("sector"))
            model = assets.attrs.get("model")
            self._snapshots[(as_of, data, (*used, model.version if model else None))] = snapshot
            while len(self._snapshots) > self.size:
                self._snapshots.popitem(last=False)
            return snapshot


def _fingerprint(session: Session, since: datetime, until: datetime) -> tuple[Any, ...]:
    """What `load_panel` would read, summed up: changes with any candle or coin sector."""
    candles = session.execute(
        select(
            func.count(),
            func.sum(
                PriceData.open_price
                + PriceData.high_price
                + PriceData.low_price
                + PriceData.close_price
                + func.coalesce(PriceData.volume, 0)
                + func.coalesce(PriceData.market_cap, 0)
            ),
        )
        .join(Cryptocurrency, Cryptocurrency.id == PriceData.crypto_id)
        .where(
            Cryptocurrency.is_active.is_(True),
            PriceData.timestamp >= since,
            PriceData.timestamp <= until,
        )
    ).one()
    sectors = session.execute(
        select(func.count(), func.max(CryptoSectorMapping.updated_at), func.max(Cryptocurrency.id))
        .select_from(Cryptocurrency)
        .outerjoin(CryptoSectorMapping, CryptoSectorMapping.crypto_id == Cryptocurrency.id)
        .where(Cryptocurrency.is_active.is_(True))
    ).one()
    return (*candles, *sectors)


def forecast(
    session: Session,
    cache: ForecastCache,
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
        rows.extend(_forecast_at(cache.snapshot(session, predictor, as_of), batch))
    for row in rows:
        row.update(user_id=user_id, watchlist_id=watchlist_id)
    return list(session.scalars(insert(Prediction).returning(Prediction.id), rows))


def _forecast_at(snapshot: MarketSnapshot, coins: Sequence[Cryptocurrency]) -> list[dict[str, Any]]:
    """Rows for coins whose latest candle is the snapshot's hour, from the market then."""
    symbols = [coin.symbol for coin in coins]
    missing = sorted(set(symbols) - set(snapshot.assets.index))
    if missing:
        raise Conflict(
            f"not enough history at {snapshot.view.as_of.isoformat()} to compute the features "
            f"of {', '.join(missing)}; the model needs about {HISTORY_HOURS} hours of candles"
        )
    model = snapshot.assets.attrs["model"]
    ids = {coin.symbol: coin.id for coin in coins}
    return [
        prediction_row(model, snapshot.view, snapshot.panel, symbol, row, ids[symbol])
        for symbol, row in snapshot.assets.loc[symbols].iterrows()
    ]


def _latest_candles(session: Session, crypto_ids: list[int]) -> dict[int, datetime]:
    rows = session.execute(
        select(PriceData.crypto_id, func.max(PriceData.timestamp))
        .where(PriceData.crypto_id.in_(crypto_ids))
        .group_by(PriceData.crypto_id)
    )
    return {crypto_id: moment for crypto_id, moment in rows if moment is not None}
