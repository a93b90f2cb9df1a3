"""The notebooks run top to bottom on a small prepared database, as a data scientist runs them.

One database is prepared per module with the demo's own steps (`cryptopredict.demo`): a small
synthetic market ending at the current hour, the four families trained with small settings up
to a cut-off, analyses of the hours after it (a second asset version takes over halfway, so
accuracy has two versions to compare), and the evaluation that backfills the accuracy columns.
Each notebook then runs in a fresh kernel of this interpreter, pointed at that database and
MLflow store through the environment and in quick mode; a failing cell (every notebook asserts
on what it shows) fails the test with the cell's traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from cryptopredict.demo import (
    MarketPlan,
    analysis_hours,
    backfill_analyses,
    ensure_market,
    ensure_models,
    realized_count,
)
from db.engine import make_engine
from small_training import SETTINGS
from store.datasets import load_panel
from store.tracking import configure_tracking
from training.evaluate import evaluate
from training.train import TrainingStores, train_layers

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(path.name for path in NOTEBOOKS_DIR.glob("*.ipynb"))
KERNEL = "cryptopredict-tests"
CELL_TIMEOUT_S = 300
MARKET = MarketPlan(data_dir=None, coins_file=None, coins=5, days=90, seed=5)
BACKFILL_DAYS = 3
STEP_HOURS = 8


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> dict[str, str]:
    """The kernel environment of a database holding trained models and evaluated history."""
    root = tmp_path_factory.mktemp("notebooks")
    data_dir = root / "var"
    data_dir.mkdir()
    database = data_dir / "cryptopredict.db"
    shutil.copyfile(sqlite_template, database)
    env = {
        "DATABASE_URL": f"sqlite:///{database}",
        "DATA_DIR": str(data_dir),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir / 'mlflow.db'}",
        "CRYPTOPREDICT_NOTEBOOK_QUICK": "1",
    }
    engine = make_engine(env["DATABASE_URL"])
    try:
        last = ensure_market(engine, MARKET, lambda _: None)
        cut_off = last - timedelta(days=BACKFILL_DAYS)
        artifacts = data_dir / "mlartifacts"
        client = configure_tracking(env["MLFLOW_TRACKING_URI"], artifacts)
        ensure_models(engine, client, artifacts, cut_off, lambda _: None, SETTINGS)
        hours = analysis_hours(cut_off, last, STEP_HOURS)
        half = len(hours) // 2
        backfill_analyses(engine, hours[:half], lambda _: None)
        # A second asset version serves the later half, so accuracy is shown per version.
        retrained = load_panel(engine, until=hours[half - 1])
        second = replace(SETTINGS, force=True, random_state=1)
        train_layers(TrainingStores(engine, client, artifacts), retrained, ["asset"], second)
        backfill_analyses(engine, hours[half:], lambda _: None)
        evaluate(engine, as_of=last)
        realized, total = realized_count(engine)
        assert 0 < realized < total, (realized, total)
    finally:
        engine.dispose()
    return env


def kernel_manager(directory: Path) -> AsyncKernelManager:
    """A kernel running this very interpreter, whatever kernelspecs the machine has."""
    spec = directory / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"})
    )
    specs = KernelSpecManager(kernel_dirs=[str(directory)])
    return AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    nbformat.validate(notebook)
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and "What it expects" in first.source
    assert "cryptopredict demo --no-serve" in first.source
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a cell was saved with its outputs"
            assert cell.execution_count is None, f"{name}: a cell was saved with its count"


def test_every_notebook_is_listed() -> None:
    assert NOTEBOOKS == [
        "01_data_tour.ipynb",
        "02_training_and_baselines.ipynb",
        "03_predictions_accuracy.ipynb",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name: str, prepared: dict[str, str], tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    client = NotebookClient(
        notebook,
        km=kernel_manager(tmp_path / "kernels"),
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    # A CellExecutionError names the failing cell and carries its traceback.
    client.execute(env={**os.environ, **prepared})
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert images, f"{name} drew no figure"
