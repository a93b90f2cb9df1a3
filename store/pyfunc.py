"""A family as an MLflow pyfunc model: `mlflow.pyfunc.load_model("models:/NAME/VERSION")`
gives back an object whose `predict` takes a DataFrame of the family's features and returns
its calibrated outputs, in any Python where this package is installed.
"""

from __future__ import annotations

import importlib
import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.families.base import ModelFamily

FAMILY_ARTIFACT = "family"
CLASS_FILE = "family_class.json"


def save_bundle(family: ModelFamily, directory: Path) -> Path:
    """The family's own files plus the import path of its class."""
    family.save(directory)
    cls = type(family)
    (directory / CLASS_FILE).write_text(
        json.dumps({"module": cls.__module__, "class": cls.__qualname__})
    )
    return directory


def load_bundle(directory: Path) -> ModelFamily:
    spec = json.loads((directory / CLASS_FILE).read_text())
    cls = getattr(importlib.import_module(spec["module"]), spec["class"])
    family: ModelFamily = cls.load(directory)
    return family


def load_registered(configuration: dict[str, Any]) -> ModelFamily:
    """The family of a registered `ai_models` version, from its MLflow run's artifacts."""
    run_id = configuration.get("mlflow_run_id")
    if not run_id:
        raise ValueError("this ai_models row records no MLflow run; was its training finished?")
    with tempfile.TemporaryDirectory() as scratch:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"runs:/{run_id}/model/artifacts/{FAMILY_ARTIFACT}", dst_path=scratch
        )
        return load_bundle(Path(path))


class FamilyModel(PythonModel):
    """Loads the bundle once per process; predicts calibrated outputs."""

    def load_context(self, context: Any) -> None:
        self.family = load_bundle(Path(context.artifacts[FAMILY_ARTIFACT]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return self.family.predict_calibrated(model_input).reset_index(drop=True)
