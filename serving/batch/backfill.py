"""Many hours analysed as each stood then: `cryptopredict analyze --since`, and the demo's.

Hours already analysed by the same versions are skipped (`analyze`), so a backfill can be
rerun; on a Dask cluster, `serving.batch.cluster_backfill`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Engine

from serving.batch.analyze import analyze
from serving.inference.predictor import Predictor
from store.datasets import load_window

HOUR = timedelta(hours=1)
# What each analysed hour wrote, by table.
Written = dict[str, int]


def analysed_hours(
    engine: Engine, predictor: Predictor, hours: Sequence[datetime]
) -> Iterator[tuple[datetime, Written]]:
    """Analyse each hour (in order) as it stood then, and yield it with what it wrote:
    nothing for an hour analysed before, which `analyze` skips.

    The candles are read once, from the window the first hour's features need to the last.
    """
    if not hours:
        return
    span = (hours[-1] - hours[0]) // HOUR
    panel = load_window(engine, predictor.history_hours() + span, until=hours[-1])
    for hour in hours:
        report = analyze(engine, predictor, panel.between(None, pd.Timestamp(hour)))
        yield hour, report.written
