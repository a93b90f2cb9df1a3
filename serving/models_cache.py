"""Active model versions, loaded once per process and swapped when `ai_models` changes.

Whether anything changed is one small read: the data version (`db.versions`), which a
trigger bumps in the transaction that activates or deactivates a version. Only when it moved
are the active rows read again, and a family loaded only when its (id, version) is
new; a promotion or rollback takes effect on the next call, in every worker, without a
restart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.schema import AiModel
from db.versions import data_version
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


class ModelLookup(Protocol):
    def get(self, layer: str) -> LoadedModel | None: ...


@dataclass(frozen=True)
class ActiveRow:
    row_id: int
    version: str
    configuration: dict[str, Any]
    performance: dict[str, Any]


class ModelSet:
    """The active versions as of `data_version`: what one request serves with throughout.

    A family is loaded on first use, so a layer whose artifact fails to load fails only the
    calls that need it.
    """

    def __init__(self, models: ActiveModels, data_version: int, rows: dict[str, ActiveRow]):
        self._models = models
        self.data_version = data_version
        self.rows = rows

    def get(self, layer: str) -> LoadedModel | None:
        row = self.rows.get(layer)
        return None if row is None else self._models.load(layer, row)


class ActiveModels:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._current: ModelSet | None = None
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def at(self, session: Session) -> ModelSet:
        """The active versions, checked on `session`: one row read unless they changed."""
        version = data_version(session)
        current = self._current
        if current is not None and current.data_version == version:
            return current
        names = {family.name: layer for layer, family in FAMILIES.items()}
        rows = session.execute(
            select(
                AiModel.name,
                AiModel.id,
                AiModel.version,
                AiModel.configuration,
                AiModel.performance_metrics,
            ).where(AiModel.status == "active", AiModel.name.in_(list(names)))
        ).all()
        # Rows read after the version are at least that new: filing them under it can only
        # cost one needless check on the next call, never a stale answer.
        current = ModelSet(
            self,
            version,
            {
                names[name]: ActiveRow(row_id, row_version, dict(config or {}), dict(perf or {}))
                for name, row_id, row_version, config, perf in rows
            },
        )
        self._current = current
        return current

    def load(self, layer: str, row: ActiveRow) -> LoadedModel:
        """The family of an active row, loaded once per (id, version)."""
        cached = self._loaded.get(layer)
        if _is_loaded(cached, row):
            return cached
        with self._lock:
            cached = self._loaded.get(layer)
            if _is_loaded(cached, row):
                return cached
            loaded = LoadedModel(
                layer=layer,
                name=FAMILIES[layer].name,
                version=row.version,
                row_id=row.row_id,
                family=load_registered(row.configuration),
                configuration=row.configuration,
                performance=row.performance,
            )
            self._loaded[layer] = loaded
            return loaded

    def current(self) -> ModelSet:
        """The active versions, checked on a connection of the models' own engine."""
        with Session(self.engine) as session:
            return self.at(session)

    def get(self, layer: str) -> LoadedModel | None:
        """The active version of a layer's family, or None when none is active."""
        return self.current().get(layer)


def _is_loaded(cached: LoadedModel | None, row: ActiveRow) -> TypeGuard[LoadedModel]:
    """Whether `cached` is the family of `row` (the same id and version)."""
    return cached is not None and (cached.row_id, cached.version) == (row.row_id, row.version)
