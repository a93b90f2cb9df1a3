"""On-demand asset forecasts for `POST /predictions`, persisted as complete `predictions` rows.

The coins' latest candles are the decision time: the panel is cut there, so the features are
the ones training computed at that hour, and nothing later can leak in. A candle older than
`max_candle_age` is refused rather than silently forecast from stale data.

The market at an hour (the panel, the upper layers' view and every coin's asset outputs) is
the same for every request at that hour and horizon, so `ForecastCache` computes it once per
process and shares it; the panel and the view, once for all the horizons. Its key holds the
hour, the horizon, the data version (`db.versions`: bumped by triggers in the transaction of
any candle, coin, sector or activation change, so checking it reads two rows, whatever the
size of the history) and the active versions that computed it.
The coins' latest candle hours are cached under the same data version.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from db.schema import Base, Prediction, PriceData
from models.families import FAMILIES
from models.panel import MarketPanel
from serving.errors import Conflict, ServiceUnavailable, Unprocessable
from serving.inference.models_cache import LoadedModel, ModelSet
from serving.inference.prediction_rows import prediction_row
from serving.inference.predictor import NO_ASSET_MODEL, MarketView, Predictor
from serving.lookups import Coin
from store.datasets import load_panel

CACHED_HOURS = 4
# On the table, not the mapped class, and built once: the ORM's bulk insert and building the
# statement per request each cost more than the database did (profiled), and the answer needs
# the row's values, not an entity. Only what the database fills in comes back (the id, the
# defaults, the times); the rest of the stored row is what was sent, already at the columns'
# precision, and returning it all parsed its JSON back on every request (profiled).
_PREDICTIONS = Base.metadata.tables[Prediction.__tablename__]
_FILLED_IN = [column for column in _PREDICTIONS.c if column.primary_key or column.server_default]
_INSERT_PREDICTIONS = insert(_PREDICTIONS).returning(*_FILLED_IN, sort_by_parameter_order=True)
_UNSET = dict.fromkeys(_PREDICTIONS.c.keys())
FORECAST_LAYER = "asset"  # the layer whose price forecasts POST /predictions serves


@dataclass(frozen=True)
class MarketSnapshot:
    """The market at `view.as_of`: the panel, the upper layers' view, every coin's outputs."""

    panel: MarketPanel
    view: MarketView
    assets: pd.DataFrame
    # Kept out of `assets.attrs`: pandas deep-copies attrs into every frame derived from it,
    # which copied the model's booster on each request (17 % of a request's time, profiled).
    model: LoadedModel
    history_hours: int  # the hours of candles before `view.as_of` that the features read
    # Each coin's `predictions` row, built on its first request: the same for every request
    # of the snapshot but for who asked.
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)

    def row(self, coin: Coin) -> dict[str, Any]:
        """A fresh copy of the coin's row: the caller fills in who asked."""
        built = self.rows.get(coin.id)
        if built is None:
            forecast = self.assets.loc[coin.symbol]
            built = prediction_row(
                self.model, self.view, self.panel, coin.symbol, forecast, coin.id
            )
            self.rows[coin.id] = built
        return dict(built)


class ForecastCache:
    """Market snapshots computed once per process and shared by the requests of an hour.

    `engine` loads the panels; it must not draw from the request pool (see `create_app`), so
    that a request holding one of its connections never waits for a second one.
    """

    def __init__(self, engine: Engine, size: int = CACHED_HOURS) -> None:
        self.engine = engine
        self.size = size  # hours, each with its market and a snapshot per horizon
        self.loads = 0  # markets loaded: panels read and upper layers' views computed
        self._markets: OrderedDict[tuple[Any, ...], tuple[MarketPanel, MarketView]] = OrderedDict()
        self._snapshots: OrderedDict[tuple[Any, ...], MarketSnapshot] = OrderedDict()
        self._latest: tuple[int | None, dict[int, datetime | None]] = (None, {})
        self._lock = threading.Lock()

    def snapshot(self, models: ModelSet, as_of: datetime, horizon: int) -> MarketSnapshot:
        """The market at `as_of` with `models` and the asset line at `horizon`, computed once
        per data version."""
        # The market at an hour depends on the active versions of the layers the forecasts
        # carry as context; each horizon's outputs on its line's version too.
        context = tuple(
            None if line is None else line.version
            for line in (models.row(layer) for layer in FAMILIES[FORECAST_LAYER].upstream)
        )
        line = models.row(FORECAST_LAYER, horizon)
        key = (as_of, horizon, models.data_version, context, None if line is None else line.version)
        cached = self._snapshots.get(key)
        if cached is not None:
            return cached
        # One computation at a time: the requests of a new hour wait for the first one's.
        with self._lock:
            cached = self._snapshots.get(key)
            if cached is not None:
                self._snapshots.move_to_end(key)
                return cached
            predictor = Predictor(models)
            hours = predictor.history_hours([FORECAST_LAYER])
            panel, view = self._market(models, as_of, hours, context)
            served = predictor.serve(panel, view, FORECAST_LAYER, horizon)
            snapshot = MarketSnapshot(panel, view, served.frame, served.model, hours)
            self._snapshots[key] = snapshot
            horizons = max(1, len(models.horizons(FORECAST_LAYER)))
            _trim(self._snapshots, self.size * horizons)
            return snapshot

    def _market(
        self, models: ModelSet, as_of: datetime, hours: int, context: tuple[Any, ...]
    ) -> tuple[MarketPanel, MarketView]:
        """The panel of the `hours` before `as_of` and the upper layers' view then, shared by
        every horizon: reading the panel is most of a new hour's first request (4 of 6 s at
        100 coins, measured)."""
        key = (as_of, models.data_version, context)
        market = self._markets.get(key)
        if market is not None:
            self._markets.move_to_end(key)
        else:
            since = as_of - timedelta(hours=hours)
            panel = load_panel(self.engine, since=since, until=as_of)
            market = (panel, Predictor(models).market_view(panel, [FORECAST_LAYER]))
            self.loads += 1
            self._markets[key] = market
            _trim(self._markets, self.size)
        return market

    def latest_candles(
        self, session: Session, data_version: int, crypto_ids: list[int]
    ) -> dict[int, datetime]:
        """Each coin's latest candle hour, read once per data version: it can only change
        with a candle write, which bumps the version."""
        latest = self._latest
        if latest[0] != data_version:
            latest = (data_version, {})
        known = latest[1]
        missing = [crypto_id for crypto_id in crypto_ids if crypto_id not in known]
        if missing:
            found = _latest_candles(session, missing)
            known.update({crypto_id: found.get(crypto_id) for crypto_id in missing})
            self._latest = latest
        return {crypto_id: moment for crypto_id in crypto_ids if (moment := known[crypto_id])}


def forecast(
    session: Session,
    cache: ForecastCache,
    models: ModelSet,
    coins: Sequence[Coin],
    *,
    horizon_hours: int | None,
    max_candle_age: timedelta,
    now: datetime,
    user_id: int | None,
    watchlist_id: int | None,
) -> list[dict[str, Any]]:
    """Forecast each coin from its latest candle; insert the rows in `session`'s transaction
    and return them as stored, every column.

    All coins are checked before anything is written, so a batch is written whole or not
    at all.
    """
    horizon = forecast_horizon(models, horizon_hours)
    latest = cache.latest_candles(session, models.data_version, [coin.id for coin in coins])
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
        rows.extend(_forecast_at(cache.snapshot(models, as_of, horizon), batch))
    for row in rows:
        row.update(user_id=user_id, watchlist_id=watchlist_id)
    filled = session.execute(_INSERT_PREDICTIONS, rows).mappings()
    return [{**_UNSET, **row, **database} for row, database in zip(rows, filled, strict=True)]


def forecast_horizon(models: ModelSet, asked: int | None) -> int:
    """The horizon to forecast: the one asked for if an active line forecasts it, else 422
    naming those that do (nothing is interpolated between two); by default the primary."""
    trained = models.horizons(FORECAST_LAYER)
    if not trained:
        raise ServiceUnavailable(NO_ASSET_MODEL)
    if asked is None:
        line = models.row(FORECAST_LAYER)
        assert line is not None  # there are lines, so there is a primary one
        return line.horizon
    if asked not in trained:
        hours = ", ".join(str(hour) for hour in trained)
        raise Unprocessable(
            f"no active asset model forecasts {asked} hours ahead; trained horizons: {hours} "
            f"(train another with `cryptopredict train --layer asset --horizon {asked}`)",
            trained_horizons=trained,
        )
    return asked


def _trim(cache: OrderedDict[tuple[Any, ...], Any], size: int) -> None:
    """Drop the oldest entries past `size`."""
    while len(cache) > size:
        cache.popitem(last=False)


def _forecast_at(snapshot: MarketSnapshot, coins: Sequence[Coin]) -> list[dict[str, Any]]:
    """Rows for coins whose latest candle is the snapshot's hour, from the market then."""
    missing = sorted(coin.symbol for coin in coins if coin.symbol not in snapshot.assets.index)
    if missing:
        raise Conflict(
            f"not enough history at {snapshot.view.as_of.isoformat()} to compute the features "
            f"of {', '.join(missing)}; the models read the {snapshot.history_hours} hours of "
            "candles before it"
        )
    return [snapshot.row(coin) for coin in coins]


def _latest_candles(session: Session, crypto_ids: list[int]) -> dict[int, datetime]:
    rows = session.execute(
        select(PriceData.crypto_id, func.max(PriceData.timestamp))
        .where(PriceData.crypto_id.in_(crypto_ids))
        .group_by(PriceData.crypto_id)
    )
    return {crypto_id: moment for crypto_id, moment in rows if moment is not None}
