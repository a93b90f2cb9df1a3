"""Active model versions, loaded once per process and swapped when `ai_models` changes.

Whether anything changed is one small read: the data version (`db.versions`), which a
trigger bumps in the transaction that activates or deactivates a version. Only when it moved
are the active rows read again, and a family loaded only when its (id, version) is
new; a promotion or rollback takes effect on the next call, in every worker, without a
restart.

A layer may have several version lines, one per horizon (the asset forecasts); `get(layer)`
is its primary line, the one at the layer's default horizon, or its shortest.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.schema import AiModel
from db.versions import data_version
from models.families import FAMILIES, ModelFamily, layer_of
from store.pyfunc import load_registered


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
    def get(self, layer: str, horizon: int | None = None) -> LoadedModel | None: ...

    def horizons(self, layer: str) -> list[int]: ...


@dataclass(frozen=True)
class ActiveRow:
    name: str
    layer: str
    horizon: int
    row_id: int
    version: str
    configuration: dict[str, Any]
    performance: dict[str, Any]


class ModelSet:
    """The active versions as of `data_version`: what one request serves with throughout.

    A family is loaded on first use, so a layer whose artifact fails to load fails only the
    calls that need it.
    """

    def __init__(self, models: ActiveModels, data_version: int, rows: list[ActiveRow]):
        self._models = models
        self.data_version = data_version
        self.rows = rows

    def horizons(self, layer: str) -> list[int]:
        return line_horizons(self.rows, layer)

    def row(self, layer: str, horizon: int | None = None) -> ActiveRow | None:
        """The active row of `layer` at `horizon`, or of its primary line."""
        if horizon is None:
            return primary_line(self.rows, layer)
        return next((r for r in self.rows if (r.layer, r.horizon) == (layer, horizon)), None)

    def get(self, layer: str, horizon: int | None = None) -> LoadedModel | None:
        row = self.row(layer, horizon)
        return None if row is None else self._models.load(row)


class ActiveModels:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._current: ModelSet | None = None
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def at(self, session: Session, version: int | None = None) -> ModelSet:
        """The active versions as of the data `version` (read on `session` if not given):
        the active rows are read again only when it moved."""
        if version is None:
            version = data_version(session)
        current = self._current
        if current is not None and current.data_version == version:
            return current
        # Rows read after the version are at least that new: filing them under it can only
        # cost one needless check on the next call, never a stale answer.
        current = ModelSet(self, version, active_rows(session))
        self._current = current
        return current

    def load(self, row: ActiveRow) -> LoadedModel:
        """The family of an active row, loaded once per (id, version)."""
        cached = self._loaded.get(row.name)
        if _is_loaded(cached, row):
            return cached
        with self._lock:
            cached = self._loaded.get(row.name)
            if _is_loaded(cached, row):
                return cached
            loaded = LoadedModel(
                layer=row.layer,
                name=row.name,
                version=row.version,
                row_id=row.row_id,
                family=load_registered(row.configuration),
                configuration=row.configuration,
                performance=row.performance,
            )
            self._loaded[row.name] = loaded
            return loaded

    def current(self) -> ModelSet:
        """The active versions, checked on a connection of the models' own engine."""
        with Session(self.engine) as session:
            return self.at(session)

    def get(self, layer: str, horizon: int | None = None) -> LoadedModel | None:
        """The active version of a layer's line (its primary one by default), or None."""
        return self.current().get(layer, horizon)

    def horizons(self, layer: str) -> list[int]:
        return self.current().horizons(layer)


def active_rows(session: Session) -> list[ActiveRow]:
    """The active version of every line a family registers (other names are not ours)."""
    found = session.execute(
        select(
            AiModel.name,
            AiModel.id,
            AiModel.version,
            AiModel.configuration,
            AiModel.performance_metrics,
        ).where(AiModel.status == "active")
    ).all()
    rows = []
    for name, row_id, version, config, performance in found:
        layer = layer_of(name)
        if layer is None:
            continue
        configuration = dict(config or {})
        horizon = int(configuration.get("horizon_hours", FAMILIES[layer].default_horizon))
        rows.append(
            ActiveRow(name, layer, horizon, row_id, version, configuration, dict(performance or {}))
        )
    return rows


def line_horizons(rows: list[ActiveRow], layer: str) -> list[int]:
    """The horizons `layer` has an active version line for, shortest first."""
    return sorted(row.horizon for row in rows if row.layer == layer)


def primary_line(rows: list[ActiveRow], layer: str) -> ActiveRow | None:
    """The layer's line at its default horizon, else its shortest; None if it has none."""
    lines = {row.horizon: row for row in rows if row.layer == layer}
    if not lines:
        return None
    return lines.get(FAMILIES[layer].default_horizon) or lines[min(lines)]


def _is_loaded(cached: LoadedModel | None, row: ActiveRow) -> TypeGuard[LoadedModel]:
    """Whether `cached` is the family of `row` (the same id and version)."""
    return cached is not None and (cached.row_id, cached.version) == (row.row_id, row.version)
