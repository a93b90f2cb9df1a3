"""The `ai_models` table as the app's registry: one row per registered model version.

MLflow's Model Registry holds the artifacts; this table says which version serves. A row is
`training` while its run is in progress, then `inactive` or `active` (or `error` if the run
failed). A trainer killed outright (SIGKILL, OOM, power) cannot mark its own row: its host and
pid are in the row's configuration, and `reap_abandoned` marks such rows `error` once that
process is gone. At most one version of a name is active (a partial unique index enforces it), and
every activation is stamped into the row's configuration, so a rollback knows what served
before.
"""

from __future__ import annotations

import platform
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.schema import AiModel
from store.processes import parse_time, process_alive, process_started

ACTIVATIONS_KEY = "activations"
ABANDONED = "its training process is gone"
# A process that started this long after its row's `started_at` is a reused pid.
START_SLACK = timedelta(seconds=2)


class RegistryError(ValueError):
    """A promotion or rollback that cannot be done; the message says why."""


def begin_training(
    session: Session, name: str, model_type: str, configuration: dict[str, Any]
) -> AiModel:
    """A `training` row with a provisional version until MLflow assigns the real one."""
    row = AiModel(
        name=name,
        version=f"pending-{uuid.uuid4().hex[:12]}",
        model_type=model_type,
        status="training",
        configuration=configuration,
        performance_metrics={},
    )
    session.add(row)
    session.flush()
    return row


def finish_training(
    session: Session,
    row: AiModel,
    version: str,
    configuration: dict[str, Any],
    metrics: dict[str, Any],
) -> None:
    """Record the registered version; it is `inactive` until promoted."""
    row.version = version
    row.status = "inactive"
    row.configuration = configuration
    row.performance_metrics = metrics
    row.last_trained = datetime.now(UTC)


def mark_failed(session: Session, row: AiModel, error: str) -> None:
    row.status = "error"
    row.health_status = {"error": error, "failed_at": datetime.now(UTC).isoformat()}


def reap_abandoned(session: Session, model_type: str | None = None) -> list[AiModel]:
    """Mark `error` every `training` row (of `model_type`, or all) whose trainer is gone.

    Only rows whose trainer ran on this host can be judged (configuration `host` and `pid`,
    written by `training.train.run_configuration`); a row from another host stays as it is.
    A live process that started after the row's `started_at` is another program that reused
    the pid, so the trainer is gone as well. Returns the rows marked; the caller commits.
    """
    query = select(AiModel).where(AiModel.status == "training")
    if model_type is not None:
        query = query.where(AiModel.model_type == model_type)
    reaped = [row for row in session.scalars(query) if trainer_gone(row.configuration or {})]
    for row in reaped:
        mark_failed(session, row, ABANDONED)
    session.flush()
    return reaped


def trainer_gone(configuration: dict[str, Any]) -> bool:
    """True when the configuration names a trainer on this host that no longer runs."""
    pid = configuration.get("pid")
    if not isinstance(pid, int) or configuration.get("host") != platform.node():
        return False
    if not process_alive(pid):
        return True
    started = process_started(pid)
    recorded = parse_time(configuration.get("started_at"))
    return started is not None and recorded is not None and started > recorded + START_SLACK


def active_version(session: Session, name: str) -> AiModel | None:
    return session.scalars(
        select(AiModel).where(AiModel.name == name, AiModel.status == "active")
    ).one_or_none()


def find_version(session: Session, name: str, version: str) -> AiModel:
    row = session.scalars(
        select(AiModel).where(AiModel.name == name, AiModel.version == version)
    ).one_or_none()
    if row is None:
        known = ", ".join(
            session.scalars(
                select(AiModel.version).where(AiModel.name == name).order_by(AiModel.id)
            )
        )
        raise RegistryError(
            f"no version {version} of model {name!r}"
            + (f" (versions: {known})" if known else " (no versions registered)")
        )
    return row


def promote(session: Session, name: str, version: str) -> AiModel:
    """Make `version` the one that serves; the previously active version becomes inactive."""
    row = find_version(session, name, version)
    if row.status in ("training", "error"):
        raise RegistryError(f"{name} version {version} is {row.status} and cannot serve")
    if row.status == "active":
        return row
    session.execute(
        update(AiModel)
        .where(AiModel.name == name, AiModel.status == "active")
        .values(status="inactive")
    )
    session.flush()
    row.status = "active"
    configuration = dict(row.configuration or {})
    configuration[ACTIVATIONS_KEY] = [
        *configuration.get(ACTIVATIONS_KEY, []),
        datetime.now(UTC).isoformat(),
    ]
    row.configuration = configuration
    session.flush()
    return row


def rollback(session: Session, name: str) -> AiModel:
    """Re-activate the version that served before the current one."""
    current = active_version(session, name)
    if current is None:
        raise RegistryError(f"model {name!r} has no active version to roll back from")
    candidates = [
        row
        for row in session.scalars(
            select(AiModel).where(
                AiModel.name == name, AiModel.id != current.id, AiModel.status == "inactive"
            )
        )
        if (row.configuration or {}).get(ACTIVATIONS_KEY)
    ]
    if not candidates:
        raise RegistryError(f"model {name!r} has no earlier active version to roll back to")
    previous = max(candidates, key=lambda row: (row.configuration or {})[ACTIVATIONS_KEY][-1])
    return promote(session, name, previous.version)


def list_models(session: Session) -> list[AiModel]:
    return list(session.scalars(select(AiModel).order_by(AiModel.name, AiModel.id)))
