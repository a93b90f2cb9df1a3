"""MLflow set-up: one experiment per family, on the store MLFLOW_TRACKING_URI names.

With no MLFLOW_TRACKING_URI the store is SQLite in the data directory and artifacts go to
`<data_dir>/mlartifacts`, so `mlflow ui --backend-store-uri <the same URI>` shows every run and
nothing depends on the working directory.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

EXPERIMENT_PREFIX = "cryptopredict"


def configure_tracking(tracking_uri: str, artifact_root: Path) -> MlflowClient:
    """Point MLflow at the store and return a client bound to it."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    artifact_root.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def experiment_for(client: MlflowClient, family: str, artifact_root: Path) -> str:
    """The id of the family's experiment, created on first use."""
    name = f"{EXPERIMENT_PREFIX}-{family}"
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=(artifact_root / family).as_uri())


def ui_command(tracking_uri: str) -> str:
    """The command that opens the MLflow UI on this store."""
    return f".venv/bin/mlflow ui --backend-store-uri {tracking_uri}"
