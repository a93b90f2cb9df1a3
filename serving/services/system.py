"""System management: health checks, model versions, retraining, the activity log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.schema import AiModel, UserActivity
from serving.errors import NotFound
from serving.lookups import find
from serving.schemas.common import Page
from serving.schemas.system import ActivityOut, HealthOut, ModelOut, ModelVersionRef, RetrainJobOut
from serving.services import health
from serving.services.callers import Caller, record_and_commit
from serving.services.pagination import Paging, TimeRange, equal_to, paginate, within
from serving.services.retraining import Job, Retrainer, rows_of, start_retrain

JobLink = Callable[[str], str]
"""The path where a retraining job is followed, by job id."""


def check_health(
    session: Session,
    monitor: health.HealthMonitor,
    models: health.ModelLoader,
    app_version: str,
    stale_after: timedelta,
) -> HealthOut:
    """The monitor's latest check, or a new one recorded as a `system_health` row."""

    def run() -> HealthOut:
        row = health.check(session, models, app_version, stale_after)
        session.commit()
        return HealthOut.model_validate(row)

    result: HealthOut = monitor.current(run)
    return result


def list_models(
    session: Session,
    page: Paging,
    period: TimeRange,
    *,
    model_type: str | None = None,
    status: str | None = None,
    name: str | None = None,
) -> Page[ModelOut]:
    """Registered model versions, newest first."""
    statement = equal_to(
        select(AiModel),
        {AiModel.model_type: model_type, AiModel.status: status, AiModel.name: name},
    )
    statement = within(statement, AiModel.created_at, period)
    statement = statement.order_by(AiModel.created_at.desc(), AiModel.id.desc())
    return paginate(session, statement, page, ModelOut)


def get_model(session: Session, model_id: int) -> ModelOut:
    return ModelOut.model_validate(find(session, AiModel, model_id, "model"))


def retrain(
    session: Session, caller: Caller, retrainer: Retrainer, model_id: int, link: JobLink
) -> RetrainJobOut:
    """Start training the version's family again in the background
    (`serving.services.retraining`)."""
    model = find(session, AiModel, model_id, "model")
    job = start_retrain(session, retrainer, model, caller.user_id)
    details = {"job_id": job.id, "layer": job.layer, "command": job.command}
    record_and_commit(session, caller, "model_retrain", "start", "ai_model", model.id, details)
    return _job_out(session, retrainer, job, link)


def retrain_job(
    session: Session, retrainer: Retrainer, job_id: str, link: JobLink
) -> RetrainJobOut:
    """A retraining job as it stands, with the model versions it registered."""
    job = retrainer.find(job_id)
    if job is None:
        raise NotFound(f"retraining job {job_id} not found")
    return _job_out(session, retrainer, job, link)


def activities(
    session: Session,
    page: Paging,
    period: TimeRange,
    *,
    user_id: int | None = None,
    activity_type: str | None = None,
    entity_type: str | None = None,
    entity_id: int | None = None,
) -> Page[ActivityOut]:
    """The activity log, newest first."""
    statement = equal_to(
        select(UserActivity),
        {
            UserActivity.user_id: user_id,
            UserActivity.activity_type: activity_type,
            UserActivity.entity_type: entity_type,
            UserActivity.entity_id: entity_id,
        },
    )
    statement = within(statement, UserActivity.created_at, period)
    statement = statement.order_by(UserActivity.created_at.desc(), UserActivity.id.desc())
    return paginate(session, statement, page, ActivityOut)


def _job_out(session: Session, retrainer: Retrainer, job: Job, link: JobLink) -> RetrainJobOut:
    return RetrainJobOut(
        id=job.id,
        layer=job.layer,
        state=job.state,
        command=job.command,
        requested_by=job.requested_by,
        requested_at=job.requested_at,
        trainer_pid=job.trainer_pid,
        exit_code=job.exit_code,
        finished_at=job.finished_at,
        follow=link(job.id),
        models=[ModelVersionRef.model_validate(row) for row in rows_of(session, job)],
        log_tail=retrainer.log_tail(job.id),
    )
