"""The demo kept live: each new hour its synthetic market moves on, is analysed and is scored.

`LiveMarket.advance` does an hour's work for every hour after the last one it finished, up
to the hour it is given: the hour's candles are appended through ingest's writer (the same
seeded market continued, see `demo.append_candles`), `analyze` runs at that hour as the
demo's backfill does, and `evaluate` realises whatever has come due by then. On start the
demo calls it once to catch up the hours missed while it was stopped.

`LiveLoop` calls it from a background thread beside the server, reading the hour from a
clock it is given, so a test says what time it is. A failed hour is logged and tried again
at the next tick: it never stops the server, and no hour is skipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from cryptopredict.clock import Clock, current_hour, system_clock
from cryptopredict.demo import MarketRecipe, append_candles
from serving.batch.backfill import analysed_hours
from serving.inference.models_cache import ActiveModels
from serving.inference.predictor import Predictor
from training.evaluate import evaluate

logger = logging.getLogger(__name__)

TICK_SECONDS = 30.0


@dataclass(frozen=True)
class HourReport:
    """What one live hour did."""

    hour: datetime
    candles: int  # appended for this hour
    predictions: int  # made by its analysis
    evaluated: int  # predictions that came due by this hour and were scored

    def line(self) -> str:
        return (
            f"live {self.hour:%Y-%m-%d %H:%M} UTC: {self.candles} candles appended, "
            f"{self.predictions} predictions made, {self.evaluated} evaluated"
        )


class LiveMarket:
    """A generated market in the database, kept at the current hour.

    `done` is the last hour whose work is finished; hours after it are done by `advance`,
    in order, each only once it succeeds.
    """

    def __init__(self, engine: Engine, recipe: MarketRecipe, done: datetime) -> None:
        self.engine = engine
        self.recipe = recipe
        self.done = done
        self._predictor = Predictor(ActiveModels(engine))

    def advance(
        self, until: datetime, on_hour: Callable[[HourReport], None] | None = None
    ) -> list[HourReport]:
        """Append, analyse and evaluate every hour after `done` through `until`."""
        hours = []
        moment = self.done + timedelta(hours=1)
        while moment <= until:
            hours.append(moment)
            moment += timedelta(hours=1)
        if not hours:
            return []
        appended = append_candles(self.engine, self.recipe, hours[-1])
        reports = []
        for hour, written in analysed_hours(self.engine, self._predictor, hours):
            evaluation = evaluate(self.engine, as_of=hour)
            predictions = written["predictions"]
            report = HourReport(hour, appended.get(hour, 0), predictions, evaluation.evaluated)
            self.done = hour
            reports.append(report)
            if on_hour is not None:
                on_hour(report)
        return reports


class LiveLoop:
    """`LiveMarket.advance` to the clock's hour every `tick_seconds`, in a daemon thread."""

    def __init__(
        self,
        market: LiveMarket,
        report: Callable[[str], None],
        clock: Clock = system_clock,
        tick_seconds: float = TICK_SECONDS,
    ) -> None:
        self.market = market
        self.report = report
        self.clock = clock
        self.tick_seconds = tick_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-live", daemon=True)

    def tick(self) -> list[HourReport]:
        """Catch up to the clock's hour; a failure is logged, and its hour waits for the next
        tick."""
        try:
            return self.market.advance(current_hour(self.clock), self._report_hour)
        except Exception:
            following = self.market.done + timedelta(hours=1)
            logger.exception(
                "live %s UTC failed; trying again at the next tick", f"{following:%Y-%m-%d %H:%M}"
            )
            return []

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the tick in progress, if any."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.wait(self.tick_seconds):
            self.tick()

    def _report_hour(self, report: HourReport) -> None:
        self.report(report.line())
