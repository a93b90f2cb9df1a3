"""Training on a two-worker LocalCluster end to end, beside the same training in-process.

One small market is written to two databases; the four families are trained on it once
in-process and once on the cluster (`cluster.source.ClusterSource`: the rows built there
block by block, the sector and asset boosters fitted there by xgboost.dask), with the same
settings and seed. The cluster-trained versions are then analysed and served
like any other; a worker killed while the blocks are computed costs a rerun, not the run, and
one killed in the middle of an xgboost.dask fit ends the run as `error`, soon, with the active
version still serving.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli.cli_runner import run_cli
from distributed import Client
from distributed.client import FutureCancelledError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from xgboost.core import XGBoostError

from cluster import trees
from cluster.connect import connect
from cluster.rows import BlockRows
from cluster.source import ClusterSource
from db.schema import Prediction
from models.families import FAMILIES, TradeTimingFamily
from serving.inference.models_cache import ActiveModels
from serving.inference.predictor import Predictor, recent
from small_training import LAYERS, SETTINGS, LocalStores
from store.datasets import load_panel
from store.tracking import configure_tracking
from training.ingest import write_market
from training.synthetic import generate_market
from training.train import TrainOutcome, train_layers

# Several blocks on this 100-day market, so that a lost worker has blocks to lose.
BLOCK_HOURS = 400
# The rows agree to rounding (tests/cluster/test_blocks.py). Macro and timing fit in the
# training process on those rows with the same seed: their metrics agree to rounding. The
# sector and asset boosters are built by xgboost.dask on two workers, whose merged quantile
# sketches give other trees: measured 0.05 % apart (sector MAE), allowed 1 %.
RELATIVE_TOLERANCE = {"macro": 1e-9, "timing": 1e-9, "sector": 0.01, "asset": 0.01}


class Store(LocalStores):
    """A migrated SQLite database holding the market, and an MLflow store beside it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        market = generate_market(6, 100, seed=11)
        write_market(self.engine, market.candles, market.coins)

    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "DATA_DIR": str(self.root),
        }


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Client]:
    with connect("local:2", worker_memory="1GiB") as client:
        yield client


@pytest.fixture
def scheduler_apart(tmp_path: Path) -> Iterator[Client]:
    """A client of a scheduler and two workers in processes of their own.

    xgboost.dask runs its tracker in the scheduler's process, and when a worker it serves
    has died the tracker may abort that process from a C++ thread (`terminate called after
    throwing an instance of 'dmlc::Error' ... Connection reset by peer`, about one run in
    four here; dmlc/xgboost#11804). With a LocalCluster that process is the test's own.
    """
    scheduler_file = tmp_path / "scheduler.json"
    command = Path(sys.executable).with_name("dask")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = ["scheduler", "--scheduler-file", str(scheduler_file), "--port", "0"]
    workers = ["worker", "--scheduler-file", str(scheduler_file), "--nworkers", "2"]
    workers += ["--nthreads", "1", "--memory-limit", "1GiB"]
    processes = [subprocess.Popen([command, *scheduler, "--dashboard-address", ":0"], **quiet)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        processes.append(subprocess.Popen([command, *workers], **quiet))
        with Client(scheduler_file=str(scheduler_file), timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)
            yield client
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, list[TrainOutcome]]:
    store = Store(tmp_path_factory.mktemp("in_process"))
    return store, train_layers(store.stores(), load_panel(store.engine), LAYERS, SETTINGS)


@pytest.fixture(scope="module")
def on_cluster(
    tmp_path_factory: pytest.TempPathFactory, dask_client: Client
) -> tuple[Store, list[TrainOutcome]]:
    store = Store(tmp_path_factory.mktemp("on_cluster"))
    source = ClusterSource.open(dask_client, store.database_url, block_hours=BLOCK_HOURS)
    return store, train_layers(store.stores(), source, LAYERS, SETTINGS)


@pytest.mark.slow
def test_the_cluster_registers_the_same_versions_as_in_process(
    in_process: tuple[Store, list[TrainOutcome]], on_cluster: tuple[Store, list[TrainOutcome]]
) -> None:
    mine, theirs = on_cluster[0].rows(), in_process[0].rows()
    assert [(row.name, row.version, row.status) for row in mine] == [
        (row.name, row.version, row.status) for row in theirs
    ]
    assert all(row.status == "active" for row in mine)
    for row, other in zip(mine, theirs, strict=True):
        for key in ("features", "training_rows", "training_start", "training_end", "symbols"):
            assert row.configuration[key] == other.configuration[key], (row.name, key)


@pytest.mark.slow
@pytest.mark.parametrize("layer", LAYERS)
def test_validation_metrics_equal_the_in_process_ones(
    in_process: tuple[Store, list[TrainOutcome]],
    on_cluster: tuple[Store, list[TrainOutcome]],
    layer: str,
) -> None:
    [mine] = [outcome for outcome in on_cluster[1] if outcome.layer == layer]
    [theirs] = [outcome for outcome in in_process[1] if outcome.layer == layer]
    metric = FAMILIES[layer].primary_metric
    for found, expected in (
        (mine.model_metrics, theirs.model_metrics),
        (mine.baseline_metrics, theirs.baseline_metrics),
    ):
        assert np.isclose(found[metric], expected[metric], rtol=RELATIVE_TOLERANCE[layer], atol=0)
    assert mine.skill["edge"] == theirs.skill["edge"]


@pytest.mark.slow
def test_cluster_trained_versions_are_analysed_and_served(
    on_cluster: tuple[Store, list[TrainOutcome]],
) -> None:
    store, _ = on_cluster
    result = run_cli(["analyze"], store.env())
    assert result.returncode == 0, result.stderr
    with Session(store.engine) as session:
        written = session.scalar(select(func.count()).select_from(Prediction))
    assert written and written > 0
    configure_tracking(store.tracking_uri, store.artifacts)
    predictor = Predictor(ActiveModels(store.engine))
    panel = recent(load_panel(store.engine), predictor.history_hours())
    served = predictor.serve(panel, predictor.market_view(panel), "asset").frame
    assert len(served) == 6
    assert np.isfinite(served["predicted_price"]).all()
    assert served["confidence"].between(0, 1).all()


@pytest.mark.slow
def test_a_family_fitted_here_fits_on_a_bounded_sample_of_whole_hours(
    tmp_path: Path, dask_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path)
    source = ClusterSource.open(
        dask_client, store.database_url, block_hours=BLOCK_HOURS, local_fit_rows=1000
    )
    rows = source.rows(SETTINGS.family("timing"))
    assert isinstance(rows, BlockRows)
    fitted_on: list[pd.DataFrame] = []
    monkeypatch.setattr(TradeTimingFamily, "fit", lambda self, X, y: fitted_on.append(X) or self)
    rows.fit(SETTINGS.family("timing"), slice(None))
    [X] = fitted_on
    assert 900 < len(X) <= 1000
    assert list(X.columns) == rows.columns
    hours = X.index.get_level_values("timestamp")
    every_coin = rows.y.index.get_level_values("timestamp").value_counts()
    assert (hours.value_counts() == every_coin.reindex(hours.unique())).all()


@pytest.mark.slow
def test_a_worker_killed_midway_costs_a_rerun_not_the_run(
    tmp_path: Path, in_process: tuple[Store, list[TrainOutcome]], dask_client: Client
) -> None:
    store = Store(tmp_path)
    killed: list[int] = []
    killer = threading.Thread(target=_kill_a_busy_worker, args=(dask_client, killed, "block_rows-"))
    killer.start()
    source = ClusterSource.open(dask_client, store.database_url, block_hours=BLOCK_HOURS)
    [outcome] = train_layers(store.stores(), source, ["sector"], SETTINGS)
    killer.join()
    assert killed, "no worker was killed while blocks were computed"
    [theirs] = [outcome for outcome in in_process[1] if outcome.layer == "sector"]
    assert outcome.status == "active"
    metric = FAMILIES["sector"].primary_metric
    assert np.isclose(
        outcome.model_metrics[metric],
        theirs.model_metrics[metric],
        rtol=RELATIVE_TOLERANCE["sector"],
        atol=0,
    )


@pytest.mark.slow
# XGBoost's tracker of a failed fit complains from its thread and its destructor.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_worker_lost_in_a_tree_fit_ends_the_run_cleanly_and_soon(
    tmp_path: Path, scheduler_apart: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed during an xgboost.dask fit, a worker takes the fit down (the surviving one
    would wait in its allreduce for ever without the collective timeout, or the scheduler
    cancels the fit whose worker and partitions are gone): the run ends as `error` and the
    active version keeps serving. When the kill lands as a fit's last task is finishing, the
    run completes instead; either way nothing is left half done."""
    store = Store(tmp_path)
    [active] = train_layers(store.stores(), load_panel(store.engine), ["sector"], SETTINGS)
    monkeypatch.setattr(trees, "COLLECTIVE_TIMEOUT_SECONDS", 5)
    killed: list[int] = []
    killer = threading.Thread(target=_kill_a_busy_worker, args=(scheduler_apart, killed, "fn-"))
    killer.start()
    source = ClusterSource.open(scheduler_apart, store.database_url, block_hours=BLOCK_HOURS)
    started = time.monotonic()
    try:
        train_layers(store.stores(), source, ["sector"], replace(SETTINGS, force=True))
        failed = False
    except (ValueError, XGBoostError, FutureCancelledError):
        failed = True
    killer.join()
    assert killed, "no worker was killed during a fit"
    assert time.monotonic() - started < 90
    statuses = [(row.version, row.status) for row in store.rows()]
    assert statuses[0] == (active.version, "active" if failed else "inactive")
    assert statuses[1][1] == ("error" if failed else "active")


def _kill_a_busy_worker(
    client: Client, killed: list[int], prefix: str, patience: float = 60.0
) -> None:
    """SIGKILL the process of the first worker seen computing a task whose key starts with
    `prefix` (xgboost.dask's training tasks are `fn-...`); its nanny restarts it."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        busy = client.run_on_scheduler(_busy_workers, prefix=prefix)
        if busy:
            pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.02)


def _busy_workers(dask_scheduler: object, prefix: str) -> list[str]:
    workers = dask_scheduler.workers.values()  # type: ignore[attr-defined]
    return [
        worker.address
        for worker in workers
        if any(str(task.key).startswith(prefix) for task in worker.processing)
    ]


def test_an_unreachable_scheduler_is_one_line_and_a_failure(
    sqlite_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": sqlite_url, "DATA_DIR": str(tmp_path)}
    result = run_cli(["train", "--layer", "macro", "--cluster", "tcp://127.0.0.1:9"], env)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "no Dask scheduler answered at tcp://127.0.0.1:9" in line
    assert "Traceback" not in result.stderr


def test_a_malformed_cluster_address_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": sqlite_url,
        "DATA_DIR": str(tmp_path),
        "DASK_SCHEDULER_ADDRESS": "local:0",
    }
    result = run_cli(["train", "--layer", "macro"], env)
    assert result.returncode == 1
    assert "local:N needs N >= 1 workers" in result.stderr.strip()
