"""Training settings small enough for tests: every family in tens of seconds on two cores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db import migrate
from db.engine import make_engine
from db.schema import AiModel
from store.tracking import configure_tracking
from training.presets import QUICK
from training.train import TrainingStores

LAYERS = ["macro", "sector", "asset", "timing"]
SETTINGS = QUICK


@dataclass(frozen=True)
class TrainedStore:
    """A PostgreSQL template holding a fresh synthetic market and four trained families."""

    template: str
    tracking_uri: str
    data_dir: Path
    last_candle: datetime


class LocalStores:
    """A migrated SQLite database and an MLflow store in one folder: where a test trains."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.database_url = f"sqlite:///{root / 'cryptopredict.db'}"
        self.tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
        self.artifacts = root / "mlartifacts"
        migrate.upgrade(self.database_url)
        self.engine: Engine = make_engine(self.database_url)

    def stores(self) -> TrainingStores:
        # MLflow's tracking URI is process-wide: point it at this store before each run.
        client = configure_tracking(self.tracking_uri, self.artifacts)
        return TrainingStores(self.engine, client, self.artifacts)

    def rows(self) -> list[AiModel]:
        with Session(self.engine) as session:
            return list(session.scalars(select(AiModel).order_by(AiModel.id)))
