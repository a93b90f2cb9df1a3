"""Active model versions, loaded once per process and swapped when `ai_models` changes.

Each lookup reads the (name, version) of the active rows, a cheap indexed query, and loads a
family only when that pair is new; a promotion or rollback takes effect on the next call
without a restart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.schema import AiModel
from models.families import FAMILIES, ModelFamily
from training.pyfunc import load_registered


@dataclass(frozen=True)
class LoadedModel:
    layer: str
    name: str
    version: str
    row_id: int
    family: ModelFamily
    configuration: dict[str, Any]
    performance: dict[str, Any]


class ActiveModels:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def get(self, layer: str) -> LoadedModel | None:
        """The active version of a layer's family, or None when none is active."""
        name = FAMILIES[layer].name
        with Session(self.engine) as session:
            row = session.scalars(
                select(AiModel).where(AiModel.name == name, AiModel.status == "active")
            ).one_or_none()
            if row is None:
                return None
            key = (row.id, row.version)
            cached = self._loaded.get(layer)
            if cached is not None and (cached.row_id, cached.version) == key:
                return cached
            configuration = dict(row.configuration or {})
            performance = dict(row.performance_metrics or {})
        with self._lock:
            loaded = LoadedModel(
                layer=layer,
                name=name,
                version=key[1],
                row_id=key[0],
                family=load_registered(configuration),
                configuration=configuration,
                performance=performance,
            )
            self._loaded[layer] = loaded
        return loaded
