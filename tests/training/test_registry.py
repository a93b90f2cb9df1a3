"""The ai_models registry: versions, one active per name, promotion and rollback."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.schema import AiModel
from store import registry


def _version(session: Session, version: str, status: str = "inactive") -> AiModel:
    row = registry.begin_training(session, "asset_price", "asset", {"hyperparameters": {}})
    registry.finish_training(session, row, version, {"hyperparameters": {}}, {"mae": 0.01})
    row.status = status
    session.flush()
    return row


def _statuses(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        rows = session.execute(select(AiModel.version, AiModel.status)).all()
    return {version: status for version, status in rows}


def test_training_row_starts_as_training_with_a_provisional_version(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        row = registry.begin_training(session, "macro_regime", "macro", {"a": 1})
        status, version = row.status, row.version
    assert status == "training"
    assert version.startswith("pending-")


def test_promote_switches_the_active_version(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        _version(session, "1")
        _version(session, "2")
        registry.promote(session, "asset_price", "1")
    with Session(engine) as session, session.begin():
        registry.promote(session, "asset_price", "2")
    assert _statuses(engine) == {"1": "inactive", "2": "active"}


def test_rollback_reactivates_the_previous_active_version(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        for version in ("1", "2", "3"):
            _version(session, version)
        registry.promote(session, "asset_price", "1")
        registry.promote(session, "asset_price", "3")
    with Session(engine) as session, session.begin():
        restored = registry.rollback(session, "asset_price").version
    assert restored == "1"
    assert _statuses(engine) == {"1": "active", "2": "inactive", "3": "inactive"}


def test_rollback_without_history_is_a_clear_error(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        _version(session, "1")
        registry.promote(session, "asset_price", "1")
    with (
        pytest.raises(registry.RegistryError, match="no earlier active version"),
        Session(engine) as session,
        session.begin(),
    ):
        registry.rollback(session, "asset_price")
    assert _statuses(engine) == {"1": "active"}


@pytest.mark.parametrize(
    ("status", "version", "message"),
    [("error", "1", "is error and cannot serve"), ("inactive", "9", "no version 9")],
)
def test_promote_refuses_failed_or_unknown_versions(
    engine: Engine, status: str, version: str, message: str
) -> None:
    with Session(engine) as session, session.begin():
        _version(session, "1", status=status)
    with (
        pytest.raises(registry.RegistryError, match=message),
        Session(engine) as session,
        session.begin(),
    ):
        registry.promote(session, "asset_price", version)


def test_database_refuses_two_active_versions(engine: Engine) -> None:
    with (
        pytest.raises(IntegrityError),
        Session(engine) as session,
        session.begin(),
    ):
        _version(session, "1", status="active")
        _version(session, "2", status="active")
