"""`cryptopredict analyze --since`: a backfill of many hours, in-process and on a cluster.

One market is trained once (in-process, small settings) and its database copied, so that the
in-process backfill and the one spread over a two-worker `LocalCluster` start from the same
stores: they must write the same rows, each hour once, and a rerun must write nothing.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import datetime, timedelta

import pytest
from cli.cli_runner import run_cli
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.engine import make_engine
from db.schema import MarketRegimeAnalysis, Prediction
from small_training import LAYERS, SETTINGS, LocalStores
from store.datasets import load_panel
from training.ingest import write_market
from training.synthetic import generate_market
from training.train import train_layers

HOURS = 6


class Store(LocalStores):
    """A trained market in a SQLite database, with an MLflow store beside it."""

    def env(self, database_url: str | None = None) -> dict[str, str]:
        return {
            "DATABASE_URL": database_url or self.database_url,
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "DATA_DIR": str(self.root),
        }

    def copy(self, name: str) -> str:
        """A copy of the database (candles and active versions), by SQLite's backup."""
        target = self.root / name
        with (
            closing(sqlite3.connect(self.root / "cryptopredict.db")) as source,
            closing(sqlite3.connect(target)) as copy,
        ):
            source.backup(copy)
        return f"sqlite:///{target}"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("backfill"))
    market = generate_market(6, 100, seed=7)
    write_market(store.engine, market.candles, market.coins)
    train_layers(store.stores(), load_panel(store.engine), LAYERS, SETTINGS)
    store.engine.dispose()
    return store


def backfill(env: dict[str, str], last: datetime, *more: str) -> tuple[int, str]:
    since = last - timedelta(hours=HOURS - 1)
    args = ["analyze", "--since", f"{since:%Y-%m-%dT%H:%M}", "--as-of", f"{last:%Y-%m-%dT%H:%M}"]
    result = run_cli([*args, *more], env)
    return result.returncode, result.stdout + result.stderr


def written(database_url: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            predictions = session.execute(
                select(
                    Prediction.crypto_id,
                    Prediction.model_name,
                    Prediction.target_datetime,
                    Prediction.predicted_price,
                    Prediction.confidence_score,
                ).order_by(Prediction.target_datetime, Prediction.model_name, Prediction.crypto_id)
            ).all()
            regimes = session.execute(
                select(
                    MarketRegimeAnalysis.analysis_time,
                    MarketRegimeAnalysis.regime,
                    MarketRegimeAnalysis.confidence_score,
                ).order_by(MarketRegimeAnalysis.analysis_time)
            ).all()
    finally:
        engine.dispose()
    return [tuple(row) for row in predictions], [tuple(row) for row in regimes]


def last_hour(store: Store) -> datetime:
    panel = load_panel(make_engine(store.database_url))
    return panel.hours[-1].to_pydatetime()


@pytest.mark.slow
def test_a_backfill_writes_each_hour_once_and_a_rerun_nothing(store: Store) -> None:
    database_url = store.copy("in_process.db")
    last = last_hour(store)
    code, output = backfill(store.env(database_url), last)
    assert code == 0, output
    predictions, regimes = written(database_url)
    assert len(regimes) == HOURS
    assert len({row[2] for row in predictions}) >= HOURS  # a target hour per analysed hour
    code, output = backfill(store.env(database_url), last)
    assert code == 0, output
    assert f"{HOURS} of them had been before" in output
    assert written(database_url) == (predictions, regimes)


@pytest.mark.slow
def test_the_cluster_backfill_writes_what_the_in_process_one_does(store: Store) -> None:
    here, there = store.copy("here.db"), store.copy("there.db")
    last = last_hour(store)
    code, output = backfill(store.env(here), last)
    assert code == 0, output
    code, output = backfill(store.env(there), last, "--cluster", "local:2", "--run-hours", "2")
    assert code == 0, output
    assert "on the cluster at local:2" in output
    assert "distributed.scheduler" not in output  # Dask's INFO narration is kept quiet
    expected = written(here)
    assert len(expected[1]) == HOURS
    assert written(there) == expected


def test_since_after_as_of_is_one_line_and_writes_nothing(store: Store) -> None:
    database_url = store.copy("refused.db")
    last = last_hour(store)
    later = f"{last + timedelta(hours=1):%Y-%m-%dT%H:%M}"
    result = run_cli(
        ["analyze", "--since", later, "--as-of", f"{last:%Y-%m-%dT%H:%M}"],
        store.env(database_url),
    )
    assert result.returncode == 1
    assert "is after --as-of" in result.stderr
    engine = make_engine(database_url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(MarketRegimeAnalysis)) == 0
    engine.dispose()
