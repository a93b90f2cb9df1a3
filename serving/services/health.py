"""The health check: database, models, data freshness, recorded as a `system_health` row.

`GET /system/health` is open to monitors without a token, so a check is memoised per worker
for `HealthMonitor.interval`: however often it is polled, each worker runs the checks and
writes a row at most once per interval, and callers in between get that row.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from db.schema import AiModel, Cryptocurrency, PriceData, SystemHealth
from models.families import layer_of
from models.layers import LAYERS
from serving.inference.models_cache import active_rows, line_horizons, primary_line

HEALTH_INTERVAL = timedelta(seconds=30)

# Points of the 0-100 score: the API answers, the database answers, the share of layers
# whose active model loads, the share of coins with fresh candles.
API_POINTS, DATABASE_POINTS, MODEL_POINTS, DATA_POINTS = 10, 30, 30, 30


class ModelLoader(Protocol):
    def get(self, layer: str) -> Any: ...


@dataclass
class Finding:
    status: dict[str, Any]
    score: float
    errors: list[str]


def check(
    session: Session, models: ModelLoader, app_version: str, stale_after: timedelta
) -> SystemHealth:
    """Run every check and add their `system_health` row to the session (not committed).

    Candles older than `stale_after` count as stale: the age past which `POST /predictions`
    refuses to forecast from them.
    """
    started = time.perf_counter()
    moment = datetime.now(UTC)
    database = check_database(session)
    models_found = check_models(session, models)
    data = check_data(session, moment, stale_after)
    score = API_POINTS + database.score + models_found.score + data.score
    row = SystemHealth(
        check_time=moment,
        api_status={"status": "up", "version": app_version, "pid": os.getpid()},
        database_status=database.status,
        ml_models_status=models_found.status,
        data_pipeline_status=data.status,
        overall_health_score=Decimal(f"{score:.2f}"),
        performance_metrics={"check_ms": round((time.perf_counter() - started) * 1000, 2)},
        error_logs=database.errors + models_found.errors + data.errors,
    )
    session.add(row)
    session.flush()
    return row


def check_database(session: Session) -> Finding:
    """A round trip and its latency; a database that does not answer never gets here (503)."""
    started = time.perf_counter()
    session.execute(text("SELECT 1"))
    latency = (time.perf_counter() - started) * 1000
    dialect = session.get_bind().dialect.name
    status = {"status": "up", "dialect": dialect, "latency_ms": round(latency, 2)}
    if latency > 1000:
        return Finding({**status, "status": "slow"}, DATABASE_POINTS / 2, ["database is slow"])
    return Finding(status, DATABASE_POINTS, [])


def check_models(session: Session, models: ModelLoader) -> Finding:
    """Each layer's active version (of its primary line), whether it loads, and the horizons
    its active lines forecast."""
    active = active_rows(session)
    training_names = session.scalars(select(AiModel.name).where(AiModel.status == "training"))
    training = {layer_of(name) for name in training_names}
    layers: dict[str, Any] = {}
    errors = []
    for layer in LAYERS:
        line = primary_line(active, layer)
        entry: dict[str, Any] = {"training": layer in training}
        row = None if line is None else session.get(AiModel, line.row_id)
        if row is None:
            entry["status"] = "missing"
            errors.append(f"{layer}: no active model version")
        else:
            entry.update(name=row.name, version=row.version, model_id=row.id)
            entry["horizons"] = line_horizons(active, layer)
            entry["last_trained"] = row.last_trained.isoformat() if row.last_trained else None
            problem = _load_problem(models, layer)
            entry["status"] = "ok" if problem is None else "error"
            if problem is not None:
                entry["error"] = problem
                errors.append(f"{layer}: {row.name} v{row.version} does not load: {problem}")
        layers[layer] = entry
    loaded = sum(entry["status"] == "ok" for entry in layers.values())
    status = {"status": _share_status(loaded, len(LAYERS)), "layers": layers}
    return Finding(status, MODEL_POINTS * loaded / len(LAYERS), errors)


def check_data(session: Session, moment: datetime, stale_after: timedelta) -> Finding:
    """The newest candle of each active coin; one index lookup per coin, in one query."""
    newest = (
        select(func.max(PriceData.timestamp))
        .where(PriceData.crypto_id == Cryptocurrency.id)
        .scalar_subquery()
    )
    coins = session.execute(
        select(Cryptocurrency.symbol, newest.label("newest"))
        .where(Cryptocurrency.is_active.is_(True))
        .order_by(Cryptocurrency.symbol)
    ).all()
    newest_times: dict[str, datetime | None] = {symbol: value for symbol, value in coins}
    without = sorted(symbol for symbol, value in newest_times.items() if value is None)
    stale = {
        symbol: round((moment - value).total_seconds() / 3600, 1)
        for symbol, value in newest_times.items()
        if value is not None and moment - value > stale_after
    }
    fresh = len(coins) - len(without) - len(stale)
    known = [value for value in newest_times.values() if value is not None]
    status = {
        "status": "no_data" if not known else _share_status(fresh, len(coins)),
        "coins": len(coins),
        "fresh": fresh,
        "stale_after_hours": stale_after.total_seconds() / 3600,
        "stale_hours": stale,
        "without_candles": without,
        "newest_candle": max(known).isoformat() if known else None,
        "oldest_newest_candle": min(known).isoformat() if known else None,
    }
    errors = [f"{symbol}: newest candle is {hours} h old" for symbol, hours in stale.items()]
    errors += [f"{symbol}: no candles" for symbol in without]
    if not coins:
        errors.append("no active coins")
    score = DATA_POINTS * fresh / len(coins) if coins else 0.0
    return Finding(status, score, errors)


class HealthMonitor:
    """Memoises the last check of one worker for `interval`; one check runs at a time."""

    def __init__(self, interval: timedelta = HEALTH_INTERVAL) -> None:
        self.interval = interval
        self._last: tuple[float, Any] | None = None
        self._lock = threading.Lock()

    def current(self, run: Callable[[], Any]) -> Any:
        with self._lock:
            if self._last is not None and time.monotonic() - self._last[0] < (
                self.interval.total_seconds()
            ):
                return self._last[1]
            result = run()
            self._last = (time.monotonic(), result)
            return result


def _load_problem(models: ModelLoader, layer: str) -> str | None:
    """Why the active version of `layer` cannot be loaded, or None when it loads."""
    try:
        loaded = models.get(layer)
    except Exception as error:  # any failure to load is what this check reports
        return f"{type(error).__name__}: {error}"[:300]
    return None if loaded is not None else "no active version at load time"


def _share_status(good: int, total: int) -> str:
    if total and good == total:
        return "ok"
    return "degraded" if good else "down"
