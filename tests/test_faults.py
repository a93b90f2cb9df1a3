"""Faults without corruption: the real commands killed with SIGKILL midway, then checked.

Each test starts `python -m cryptopredict ...` in a subprocess on a throwaway database, waits
until it is visibly in the middle of its work (its `training` row exists, or its transaction
has written and is still open), kills it outright, and checks what a crash leaves behind:
a training row that is marked `error` by the next run instead of staying `training` for ever
while the active version keeps serving; no candle of a killed ingest; no half-evaluated
prediction, and a rerun of the evaluation that counts every prediction exactly once.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from db.engine import make_engine
from db.schema import AiModel
from serving.inference.models_cache import ActiveModels
from serving.inference.predictor import Predictor
from small_training import SETTINGS
from store import registry
from store.datasets import load_panel
from store.processes import proc_stat
from store.tracking import configure_tracking
from training.ingest import ingest, write_candles
from training.synthetic import generate_market, write_csv
from training.train import TrainingStores, train_layers

POLL_S = 0.01
WAIT_S = 180.0


def wait_for(condition: Callable[[], Any], what: str, process: subprocess.Popen[bytes]) -> Any:
    """Poll until `condition()` is truthy; fail if `process` ends first or time runs out."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process.poll() is not None:
            pytest.fail(f"the command ended ({process.returncode}) before {what}")
        time.sleep(POLL_S)
    process.kill()
    process.wait()
    pytest.fail(f"timed out waiting for {what}")


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


def command(
    arguments: list[str], environment: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "cryptopredict", *arguments],
            env={**os.environ, **environment},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def scalar(engine: Engine, query: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(query), params).scalar_one()


# --- the registry's reaper -------------------------------------------------------------


def _training_row(engine: Engine, configuration: dict[str, Any]) -> int:
    with Session(engine) as session, session.begin():
        return registry.begin_training(session, "macro_regime", "macro", configuration).id


def _status(engine: Engine, row_id: int) -> str | None:
    with Session(engine) as session:
        row = session.get(AiModel, row_id)
        assert row is not None
        return row.status


def test_reap_abandoned_marks_only_trainers_gone_from_this_host(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    host = platform.node()
    now = datetime.now(UTC).isoformat()
    finished = subprocess.Popen(["true"])
    finished.wait()
    # Exited but not yet collected by its parent: a zombie is not a running trainer.
    zombie = subprocess.Popen(["true"])
    while proc_stat(zombie.pid)[:1] != ["Z"]:
        time.sleep(POLL_S)
    rows = {
        "dead": _training_row(engine, {"host": host, "pid": finished.pid}),
        "zombie": _training_row(engine, {"host": host, "pid": zombie.pid}),
        # This process is alive, but it started long after that run: the pid was reused.
        "reused": _training_row(
            engine, {"host": host, "pid": os.getpid(), "started_at": "2001-01-01T00:00:00+00:00"}
        ),
        "alive": _training_row(engine, {"host": host, "pid": os.getpid(), "started_at": now}),
        "elsewhere": _training_row(engine, {"host": f"not-{host}", "pid": finished.pid}),
        "unrecorded": _training_row(engine, {}),
    }
    with Session(engine) as session, session.begin():
        reaped = {row.id for row in registry.reap_abandoned(session)}
    zombie.wait()

    assert reaped == {rows["dead"], rows["zombie"], rows["reused"]}
    statuses = {name: _status(engine, row_id) for name, row_id in rows.items()}
    assert statuses == {
        "dead": "error",
        "zombie": "error",
        "reused": "error",
        "alive": "training",
        "elsewhere": "training",
        "unrecorded": "training",
    }
    with Session(engine) as session:
        dead = session.get(AiModel, rows["dead"])
        assert dead is not None and dead.health_status is not None
        assert dead.health_status["error"] == registry.ABANDONED
    engine.dispose()


# --- a training process killed midway ----------------------------------------------------


def _row_of(engine: Engine, pid: int) -> tuple[int, str] | None:
    """The `ai_models` row the trainer with `pid` registered, as (id, status)."""
    with Session(engine) as session:
        for row in session.scalars(select(AiModel).order_by(AiModel.id)):
            if (row.configuration or {}).get("pid") == pid:
                return row.id, str(row.status)
    return None


def test_killed_training_run_is_marked_error_and_the_active_version_keeps_serving(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    market = generate_market(4, 60, seed=3)
    frames = {
        symbol: frame.drop(columns="symbol").reset_index(drop=True)
        for symbol, frame in market.candles.groupby("symbol")
    }
    write_candles(engine, frames, market.coins)
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    artifacts = tmp_path / "mlartifacts"
    client = configure_tracking(tracking_uri, artifacts)
    (trained,) = train_layers(
        TrainingStores(engine, client, artifacts), load_panel(engine), ["macro"], SETTINGS
    )
    assert trained.status == "active"
    environment = {
        "DATABASE_URL": sqlite_url,
        "DATA_DIR": str(tmp_path),
        "MLFLOW_TRACKING_URI": tracking_uri,
    }
    log = tmp_path / "commands.log"

    first = command(["train", "--layer", "macro"], environment, log)
    first_row, status = wait_for(lambda: _row_of(engine, first.pid), "a training row", first)
    assert status == "training"
    kill(first)
    # Killed outright, the trainer could not mark its own row.
    assert _status(engine, first_row) == "training"

    # A new run reaps the dead one before it registers its own row.
    second = command(["train", "--layer", "macro"], environment, log)
    second_row, _ = wait_for(lambda: _row_of(engine, second.pid), "a second training row", second)
    assert _status(engine, first_row) == "error"
    kill(second)
    assert _status(engine, second_row) == "training"

    # Listing the models reaps it too.
    listing = subprocess.run(
        [sys.executable, "-m", "cryptopredict", "models", "list"],
        env={**os.environ, **environment, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert _status(engine, second_row) == "error"
    assert "training" not in listing.stdout

    # The version that was active still is, and the predictor loads and runs it.
    with Session(engine) as session:
        active = registry.active_version(session, "macro_regime")
        assert active is not None and active.version == trained.version
        assert session.scalar(select(func.count()).where(AiModel.status == "training")) == 0
    view = Predictor(ActiveModels(engine)).market_view(load_panel(engine))
    assert view.versions["macro"] == trained.version
    assert view.regime["regime"] in {"bull", "bear", "sideways", "volatile"}
    engine.dispose()


# --- an ingest killed midway ---------------------------------------------------------------


def _open_write(engine: Engine) -> bool:
    """Another connection to this database holds an open transaction that has written."""
    return bool(
        scalar(
            engine,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL "
            "AND query ILIKE '%price_data%'",
        )
    )


def _other_backends(engine: Engine) -> int:
    return int(
        scalar(
            engine,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()",
        )
    )


def _wait_for_backends_to_end(engine: Engine) -> None:
    """The killed client's server process ends (and rolls back) on its own."""
    deadline = time.monotonic() + WAIT_S
    while _other_backends(engine) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _other_backends(engine) == 0


@pytest.mark.postgres
def test_killed_ingest_leaves_nothing_and_a_rerun_loads_everything(
    postgres_url: str, tmp_path: Path
) -> None:
    market = generate_market(30, 365, seed=11)
    csv_dir = tmp_path / "candles"
    write_csv(market, csv_dir)
    # The coins file beside the candle directory, not in it.
    coins_file = (csv_dir / "coins.csv").rename(tmp_path / "coins.csv")
    engine = make_engine(postgres_url)
    environment = {"DATABASE_URL": postgres_url, "DATA_DIR": str(tmp_path)}

    job = command(
        ["ingest", str(csv_dir), "--coins", str(coins_file)], environment, tmp_path / "log"
    )
    wait_for(lambda: _open_write(engine), "the ingest started writing", job)
    kill(job)
    _wait_for_backends_to_end(engine)

    # Killed mid-write: not one candle, coin or sector of it is stored.
    for table in ("price_data", "cryptocurrencies", "crypto_sector_mapping"):
        assert scalar(engine, f"SELECT count(*) FROM {table}") == 0, table

    report = ingest(engine, csv_dir, coins_file=coins_file)
    assert report.totals.inserted == len(market.candles)
    assert scalar(engine, "SELECT count(*) FROM price_data") == len(market.candles)
    engine.dispose()


# --- the evaluation job killed midway ------------------------------------------------------

COINS = 20
HOURS = 4000
HORIZON = 24
START = datetime(2024, 1, 1, tzinfo=UTC)
ACCURACY_COLUMNS = (
    "actual_price",
    "absolute_error",
    "squared_error",
    "accuracy_percentage",
    "is_accurate",
    "evaluated_at",
)


@pytest.fixture
def due_predictions(postgres_url: str) -> Iterator[Engine]:
    """COINS x HOURS unrealized predictions, all due, each with its target candle stored."""
    engine = make_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO cryptocurrencies (symbol, name) "
                "SELECT 'C' || i, 'Coin ' || i FROM generate_series(1, :coins) i"
            ),
            {"coins": COINS},
        )
        connection.execute(
            text(
                "INSERT INTO price_data (crypto_id, timestamp, open_price, high_price, "
                "low_price, close_price) "
                "SELECT c.id, :start + h * interval '1 hour', x.p, x.p, x.p, x.p "
                "FROM cryptocurrencies c CROSS JOIN generate_series(0, :hours) h "
                "CROSS JOIN LATERAL (SELECT round((c.id * 10 + 50 * (1 + sin(h / 50.0)))"
                "::numeric, 8) AS p) x"
            ),
            {"start": START, "hours": HOURS + HORIZON},
        )
        connection.execute(
            text(
                "INSERT INTO ai_models (name, version, model_type, status, performance_metrics) "
                "VALUES ('asset_price', '1', 'asset', 'active', "
                '\'{"validation": {"accuracy_rate": 0.5}, "live_sums": {}}\')'
            )
        )
        # Predicted prices scatter around the target close, so some are accurate and some not.
        connection.execute(
            text(
                "INSERT INTO predictions (crypto_id, model_name, model_version, predicted_price, "
                "confidence_score, prediction_horizon, target_datetime, input_price, "
                "accuracy_threshold) "
                "SELECT t.crypto_id, 'asset_price', '1', "
                "round(t.close_price * (0.9 + 0.2 * ((t.id * 2654435761) % 1000) / 1000.0), 8), "
                "0.5, :horizon, t.timestamp, t.close_price, 5.0 "
                "FROM price_data t WHERE t.timestamp >= :start + :horizon * interval '1 hour'"
            ),
            {"start": START, "horizon": HORIZON},
        )
    yield engine
    engine.dispose()


def _half_evaluated(engine: Engine) -> int:
    """Rows whose accuracy columns disagree with `is_realized` (all set iff realized)."""
    all_set = " AND ".join(f"{column} IS NOT NULL" for column in ACCURACY_COLUMNS)
    none_set = " AND ".join(f"{column} IS NULL" for column in ACCURACY_COLUMNS)
    return int(
        scalar(
            engine,
            f"SELECT count(*) FROM predictions WHERE NOT ((is_realized AND {all_set}) "
            f"OR (NOT is_realized AND {none_set}))",
        )
    )


def _evaluation_running(engine: Engine) -> bool:
    return bool(
        scalar(
            engine,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'active' "
            "AND query ILIKE '%UPDATE predictions%'",
        )
    )


@pytest.mark.postgres
def test_killed_evaluation_leaves_no_half_evaluated_row_and_a_rerun_completes(
    due_predictions: Engine, postgres_url: str, tmp_path: Path
) -> None:
    engine = due_predictions
    total = int(scalar(engine, "SELECT count(*) FROM predictions"))
    assert total == COINS * (HOURS + 1)
    environment = {"DATABASE_URL": postgres_url, "DATA_DIR": str(tmp_path)}
    log = tmp_path / "evaluate.log"

    job = command(["evaluate"], environment, log)
    wait_for(lambda: _evaluation_running(engine), "the evaluation UPDATE started", job)
    time.sleep(0.3)
    kill(job)

    # Nothing of the killed run is visible: no row is realized, none half-evaluated.
    assert scalar(engine, "SELECT count(*) FROM predictions WHERE is_realized") == 0
    assert _half_evaluated(engine) == 0

    # The rerun waits for the killed run's server process to roll back, then does it all.
    rerun = command(["evaluate"], environment, log)
    assert rerun.wait(timeout=WAIT_S) == 0, log.read_text()
    assert _half_evaluated(engine) == 0
    assert scalar(engine, "SELECT count(*) FROM predictions WHERE is_realized") == total
    # Evaluated exactly once: one run's stamp on every row, one job record, live figures
    # that count each row once.
    assert scalar(engine, "SELECT count(DISTINCT evaluated_at) FROM predictions") == 1
    assert scalar(engine, "SELECT count(*) FROM system_health") == 1
    assert (
        scalar(
            engine,
            "SELECT (data_pipeline_status ->> 'predictions_evaluated')::int FROM system_health",
        )
        == total
    )
    with Session(engine) as session:
        version = registry.active_version(session, "asset_price")
        assert version is not None
        assert version.performance_metrics["live"]["n_evaluated"] == total
    # The right values, recomputed here from the target candles.
    wrong = scalar(
        engine,
        "SELECT count(*) FROM predictions p JOIN price_data t "
        "ON t.crypto_id = p.crypto_id AND t.timestamp = p.target_datetime "
        "WHERE p.actual_price <> t.close_price "
        "OR p.absolute_error <> abs(p.predicted_price - t.close_price) "
        "OR p.squared_error <> round((p.predicted_price - t.close_price) "
        "* (p.predicted_price - t.close_price), 8) "
        "OR p.accuracy_percentage <> round(greatest(-999.99, "
        "100 - abs(p.predicted_price - t.close_price) * 100 / t.close_price), 2) "
        "OR p.is_accurate <> (abs(p.predicted_price - t.close_price) * 100 "
        "<= 5.0 * t.close_price)",
    )
    assert wrong == 0
    accurate = scalar(engine, "SELECT count(*) FROM predictions WHERE is_accurate")
    assert 0 < accurate < total
    # A third run finds nothing left to do.
    again = command(["evaluate"], environment, log)
    assert again.wait(timeout=WAIT_S) == 0
    assert scalar(engine, "SELECT count(DISTINCT evaluated_at) FROM predictions") == 1
