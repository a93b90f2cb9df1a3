"""The demo kept live, in process, under a clock the test sets: a new hour's candles are
appended, analysed and evaluated; the hours missed while it was stopped are caught up on
restart, as the same market continued; a failed tick is logged and its hour done at the next.

A small generated market with the four families trained on it, on SQLite and a real MLflow
store, built once; each test works on its own copy of the database.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from cryptopredict.demo import (
    MARKET_FILE,
    MarketPlan,
    analysis_hours,
    backfill_analyses,
    ensure_market,
    ensure_models,
    last_candle,
    stored_recipe,
)
from cryptopredict.live import HourReport, LiveLoop, LiveMarket
from db.engine import make_engine
from db.schema import Prediction
from small_training import SETTINGS
from store.datasets import load_candles
from store.tracking import configure_tracking
from training.evaluate import evaluate
from training.synthetic import generate_until

HOUR = timedelta(hours=1)
MADE_AT = datetime(2026, 3, 2, 12, 20, tzinfo=UTC)  # when the demo generated its market
LAST = MADE_AT.replace(minute=0)  # so its last candle is this hour
PLAN = {"coins": 4, "days": 60, "seed": 3}
ASSET_HORIZON = SETTINGS.horizons["asset"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    """A demo's data directory, set up as `cryptopredict demo` leaves it: the market, the
    models trained before its last day, and analyses whose forecasts come due one and two
    hours after the last candle."""
    root = tmp_path_factory.mktemp("live")
    shutil.copyfile(sqlite_template, root / "cryptopredict.db")
    engine = make_engine(f"sqlite:///{root / 'cryptopredict.db'}")
    try:
        plan = MarketPlan(None, None, **PLAN, recipe_file=root / MARKET_FILE)
        last = ensure_market(engine, plan, lambda _: None, now=MADE_AT)
        assert last == LAST
        artifacts = root / "mlartifacts"
        client = configure_tracking(f"sqlite:///{root / 'mlflow.db'}", artifacts)
        train_until = last - timedelta(hours=ASSET_HORIZON)
        ensure_models(engine, client, artifacts, train_until, lambda _: None, SETTINGS)
        due_soon = [last - timedelta(hours=ASSET_HORIZON - k) for k in (1, 2)]
        assert backfill_analyses(engine, [*due_soon, last], lambda _: None) > 0
        evaluate(engine, as_of=last)
    finally:
        engine.dispose()
    return root


@pytest.fixture
def demo_dir(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained demo's database; the MLflow store is only read."""
    shutil.copyfile(trained / "cryptopredict.db", tmp_path / "cryptopredict.db")
    shutil.copyfile(trained / MARKET_FILE, tmp_path / MARKET_FILE)
    configure_tracking(f"sqlite:///{trained / 'mlflow.db'}", trained / "mlartifacts")
    return tmp_path


@pytest.fixture
def engine(demo_dir: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{demo_dir / 'cryptopredict.db'}")
    yield engine
    engine.dispose()


def _restarted(engine: Engine, demo_dir: Path) -> LiveMarket:
    """The live market as the demo builds it on start: from its recipe and last candle."""
    recipe = stored_recipe(engine, demo_dir / MARKET_FILE)
    last = last_candle(engine)
    assert recipe is not None and last is not None
    return LiveMarket(engine, recipe, done=last)


def _clock(*moments: datetime | Exception) -> Callable[[], datetime]:
    """A clock that reads each moment in turn (raising an exception given as one), then
    stays at the last."""
    remaining = list(moments)

    def now() -> datetime:
        moment = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        if isinstance(moment, Exception):
            raise moment
        return moment

    return now


def _predictions_at(engine: Engine, hour: datetime) -> int:
    """Predictions made at `hour`: their target less their horizon."""
    with Session(engine) as session:
        rows = session.execute(select(Prediction.target_datetime, Prediction.prediction_horizon))
        return sum(target - timedelta(hours=horizon) == hour for target, horizon in rows)


def _realized(engine: Engine) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(Prediction).where(Prediction.is_realized)
        return int(session.scalar(query) or 0)


def test_a_new_hour_is_appended_analysed_and_evaluated(engine: Engine, demo_dir: Path) -> None:
    lines: list[str] = []
    realized_before = _realized(engine)
    loop = LiveLoop(
        _restarted(engine, demo_dir),
        lines.append,
        clock=_clock(LAST + timedelta(minutes=59), LAST + HOUR + timedelta(minutes=1)),
    )

    assert loop.tick() == []  # still the market's last hour: nothing to do
    [report] = loop.tick()

    new_hour = LAST + HOUR
    assert report == HourReport(new_hour, PLAN["coins"], report.predictions, report.evaluated)
    assert last_candle(engine) == new_hour
    assert report.predictions > 0
    assert _predictions_at(engine, new_hour) == report.predictions
    # The forecasts analysed a horizon before this hour came due now and were scored.
    assert report.evaluated > 0
    assert _realized(engine) == realized_before + report.evaluated
    assert lines == [report.line()]
    assert lines[0].startswith(f"live {new_hour:%Y-%m-%d %H:%M} UTC: 4 candles appended")


def test_hours_missed_while_stopped_are_caught_up_as_the_same_market(
    engine: Engine, demo_dir: Path
) -> None:
    first_run = _restarted(engine, demo_dir)
    first_run.advance(LAST + HOUR)
    # Stopped for three hours, then started again.
    reports = _restarted(engine, demo_dir).advance(LAST + 4 * HOUR)

    assert [r.hour for r in reports] == [LAST + k * HOUR for k in (2, 3, 4)]
    assert all(r.candles == PLAN["coins"] and r.predictions > 0 for r in reports)
    assert reports[0].evaluated > 0  # the second forecast analysed before going live
    assert all(_predictions_at(engine, r.hour) == r.predictions for r in reports)
    # The continued market is the one a single run to the later hour generates.
    stored = load_candles(engine).sort_values(["symbol", "timestamp"], ignore_index=True)
    recipe = stored_recipe(engine, demo_dir / MARKET_FILE)
    assert recipe is not None
    expected = generate_until(PLAN["coins"], PLAN["seed"], recipe.start, LAST + 4 * HOUR)
    assert stored["timestamp"].tolist() == expected.candles["timestamp"].tolist()
    for column in ("open", "high", "low", "close"):
        assert np.allclose(stored[column], expected.candles[column], rtol=1e-9, atol=1e-8)
    # Nothing is left to do, and a run within the same hour repeats nothing.
    assert _restarted(engine, demo_dir).advance(LAST + 4 * HOUR) == []


def test_a_failed_tick_is_logged_and_its_hour_done_at_the_next(
    engine: Engine, demo_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    new_hour = LAST + HOUR
    done = threading.Event()
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        done.set()

    clock = _clock(RuntimeError("clock unavailable"), new_hour + timedelta(minutes=5))
    loop = LiveLoop(_restarted(engine, demo_dir), report, clock=clock, tick_seconds=0.01)
    with caplog.at_level(logging.ERROR, logger="cryptopredict.live"):
        loop.start()
        try:
            assert done.wait(timeout=120), caplog.text
            assert loop.running  # the failure did not stop the loop
        finally:
            loop.stop(timeout=120)

    assert not loop.running
    assert f"live {new_hour:%Y-%m-%d %H:%M} UTC failed; trying again" in caplog.text
    assert "clock unavailable" in caplog.text
    assert lines[0].startswith(f"live {new_hour:%Y-%m-%d %H:%M} UTC: 4 candles appended")
    assert last_candle(engine) == new_hour


def test_the_history_grid_stays_put_as_the_market_moves_on() -> None:
    # A rerun whose last candle is later finds its history analysed: each hour of its grid
    # was on the first run's grid or came after the first run's last hour (analysed live).
    first = analysis_hours(LAST - timedelta(days=2), LAST, 12)
    for later in range(1, 30):
        last = LAST + later * HOUR
        rerun = analysis_hours(last - timedelta(days=2), last, 12)
        assert rerun[-1] == last
        assert all(hour in first or hour > LAST for hour in rerun), later
    assert first[-1] == LAST and all(hour.hour % 12 == 0 for hour in first[:-1])
