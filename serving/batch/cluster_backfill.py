"""A backfill of many hours spread over a Dask cluster's workers (`analyze --since --cluster`).

One hour is one cross-section of the market, analysed in a second or two; a backfill of a
span is many independent hours. The span is cut into runs of consecutive hours, one task
each: a worker reads its run's window of candles from the database, loads the active
versions from the tracking store, analyses and writes its hours itself
(`serving.batch.backfill.analysed_hours`, the in-process code), and sends back only what it
wrote. What travels is where the stores are, not data; the workers must reach the database
and the tracking store (and its artifacts) at the same addresses as this process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from distributed import Client, as_completed
from sqlalchemy import Engine

from db.engine import make_engine
from serving.batch.backfill import Written, analysed_hours
from serving.inference.models_cache import ActiveModels
from serving.inference.predictor import Predictor
from store.tracking import configure_tracking

# Hours one task analyses: a day amortises reading the features' window (about 2,400 hours
# of candles) over 24 analyses, and a long backfill still makes many tasks.
DEFAULT_RUN_HOURS = 24


@dataclass(frozen=True)
class Stores:
    """Where a worker finds the candles and the active versions: what travels to it."""

    database_url: str
    tracking_uri: str
    artifact_root: Path


def analyse_run(stores: Stores, hours: Sequence[datetime]) -> list[tuple[datetime, Written]]:
    """A cluster task: the hours of one run, analysed and written on the worker."""
    engine, predictor = _worker_state(stores)
    return list(analysed_hours(engine, predictor, hours))


def backfill_on_cluster(
    client: Client,
    stores: Stores,
    hours: Sequence[datetime],
    run_hours: int = DEFAULT_RUN_HOURS,
    on_run: Callable[[int], None] | None = None,
) -> list[tuple[datetime, Written]]:
    """`hours` analysed on the workers of `client`, `run_hours` consecutive hours a task;
    `on_run` hears how many hours each finished task analysed. In time order."""
    if run_hours < 1:
        raise ValueError(f"a run holds at least one hour, got {run_hours}")
    ordered = sorted(hours)
    runs = [ordered[start : start + run_hours] for start in range(0, len(ordered), run_hours)]
    futures = client.map(analyse_run, [stores] * len(runs), runs, pure=False)
    done: list[tuple[datetime, Written]] = []
    for future in as_completed(futures):
        analysed = future.result()
        done.extend(analysed)
        if on_run:
            on_run(len(analysed))
    return sorted(done, key=lambda item: item[0])


@lru_cache(maxsize=2)
def _worker_state(stores: Stores) -> tuple[Engine, Predictor]:
    """One engine and one cache of loaded versions per worker process and stores, kept
    between its tasks so that each version's artifacts load once per worker."""
    configure_tracking(stores.tracking_uri, stores.artifact_root)
    engine = make_engine(stores.database_url)
    return engine, Predictor(ActiveModels(engine))
