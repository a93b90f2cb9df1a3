"""System management: health checks, model versions, retraining, the activity log."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import select

from db.schema import AiModel, UserActivity
from models.layers import LAYERS
from serving import health
from serving.deps import (
    AdminCaller,
    AppSettings,
    CurrentCaller,
    DbSession,
    OptionalCaller,
    PageParams,
    Period,
)
from serving.errors import NotFound
from serving.lookups import find
from serving.pagination import equal_to, paginate, within
from serving.retraining import Job, Retrainer, rows_of, start_retrain
from serving.schemas.common import Page, PathId, QueryId
from serving.schemas.system import (
    ActivityOut,
    HealthOut,
    HealthStatus,
    ModelOut,
    ModelVersionRef,
    RetrainJobOut,
)

router = APIRouter(tags=["system"])

Layer = Literal["macro", "sector", "asset", "timing"]
ModelStatus = Literal["active", "training", "inactive", "error"]
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="From the retrain answer.")]
assert set(get_args(Layer)) == set(LAYERS)


def get_retrainer(settings: AppSettings) -> Retrainer:
    """Overridden in tests to run a fast stand-in for `cryptopredict train`."""
    return Retrainer.from_settings(settings)


def get_health_monitor(request: Request) -> health.HealthMonitor:
    """One monitor per app (per worker process), created on first use."""
    state = request.app.state
    if not hasattr(state, "health_monitor"):
        state.health_monitor = health.HealthMonitor()
    monitor: health.HealthMonitor = state.health_monitor
    return monitor


@router.get(
    "/system/health",
    response_model=HealthOut | HealthStatus,
    # The bearer token is optional here: OpenAPI's empty requirement says so.
    openapi_extra={"security": [{}]},
)
def system_health(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    monitor: Annotated[health.HealthMonitor, Depends(get_health_monitor)],
    caller: OptionalCaller,
) -> HealthOut | HealthStatus:
    """Database, models and data freshness, recorded as a `system_health` row; each worker
    checks at most every 30 s and answers with its latest check in between. A database that
    does not answer gives 503.

    Open to monitors without a token, who learn only that the service is up; the details
    (process, database, model versions, data freshness) are for administrators.
    """

    def run() -> HealthOut:
        row = health.check(
            session,
            request.app.state.models,
            request.app.version,
            timedelta(hours=settings.max_candle_age_hours),
        )
        session.commit()
        return HealthOut.model_validate(row)

    result: HealthOut = monitor.current(run)
    if caller is None or not caller.is_admin:
        return HealthStatus(status="up")
    return result


@router.get("/system/models", response_model=Page[ModelOut])
def list_models(
    _caller: CurrentCaller,
    session: DbSession,
    page: PageParams,
    period: Period,
    model_type: Annotated[Layer | None, Query(description="The layer.")] = None,
    status: Annotated[ModelStatus | None, Query()] = None,
    name: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[ModelOut]:
    """Registered model versions, newest first (any logged-in user: nothing in them is secret)."""
    statement = equal_to(
        select(AiModel),
        {AiModel.model_type: model_type, AiModel.status: status, AiModel.name: name},
    )
    statement = within(statement, AiModel.created_at, period)
    statement = statement.order_by(AiModel.created_at.desc(), AiModel.id.desc())
    return paginate(session, statement, page, ModelOut)


@router.get("/system/models/{model_id}", response_model=ModelOut)
def get_model(model_id: PathId, _caller: CurrentCaller, session: DbSession) -> ModelOut:
    return ModelOut.model_validate(find(session, AiModel, model_id, "model"))


@router.post(
    "/system/models/{model_id}/retrain",
    response_model=RetrainJobOut,
    status_code=202,
    responses={409: {"description": "A training run of this family is already in progress."}},
)
def retrain(
    model_id: PathId,
    caller: AdminCaller,
    session: DbSession,
    request: Request,
    response: Response,
    retrainer: Annotated[Retrainer, Depends(get_retrainer)],
) -> RetrainJobOut:
    """Train this version's family again in a background process (administrators).

    Follow it at the `Location` given (`GET /system/retrains/{job_id}`); the run registers a
    new `ai_models` row, `training` until it ends `inactive`, `active` or `error`.
    """
    model = find(session, AiModel, model_id, "model")
    job = start_retrain(session, retrainer, model, caller.user.id)
    details = {"job_id": job.id, "layer": job.layer, "command": job.command}
    caller.record(session, "model_retrain", "start", "ai_model", model.id, details)
    session.commit()
    body = _job_out(request, session, retrainer, job)
    response.headers["Location"] = body.follow
    return body


@router.get("/system/retrains/{job_id}", response_model=RetrainJobOut)
def retrain_job(
    job_id: JobId,
    _admin: AdminCaller,
    request: Request,
    session: DbSession,
    retrainer: Annotated[Retrainer, Depends(get_retrainer)],
) -> RetrainJobOut:
    """A retraining job: running, succeeded, failed or lost (its supervisor vanished), the
    model versions it registered and the end of its output.
    """
    job = retrainer.find(job_id)
    if job is None:
        raise NotFound(f"retraining job {job_id} not found")
    return _job_out(request, session, retrainer, job)


@router.get("/system/activities", response_model=Page[ActivityOut])
def activities(
    _admin: AdminCaller,
    session: DbSession,
    page: PageParams,
    period: Period,
    user_id: QueryId = None,
    activity_type: Annotated[str | None, Query(max_length=50)] = None,
    entity_type: Annotated[str | None, Query(max_length=50)] = None,
    entity_id: QueryId = None,
) -> Page[ActivityOut]:
    """The activity log, newest first (administrators)."""
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


def _job_out(request: Request, session: DbSession, retrainer: Retrainer, job: Job) -> RetrainJobOut:
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
        follow=str(request.app.url_path_for("retrain_job", job_id=job.id)),
        models=[ModelVersionRef.model_validate(row) for row in rows_of(session, job)],
        log_tail=retrainer.log_tail(job.id),
    )
