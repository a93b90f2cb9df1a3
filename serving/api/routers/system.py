"""System management: health checks, model versions, retraining, the activity log."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Path, Query, Request, Response

from models.layers import LAYERS
from serving.api.deps import (
    AdminCaller,
    AppSettings,
    CurrentCaller,
    DbSession,
    Models,
    Monitor,
    OptionalCaller,
    PageParams,
    Period,
    Retraining,
)
from serving.schemas.common import Page, PathId, QueryId
from serving.schemas.system import (
    ActivityOut,
    HealthOut,
    HealthStatus,
    ModelOut,
    RetrainJobOut,
)
from serving.services import system

router = APIRouter(tags=["system"])

Layer = Literal["macro", "sector", "asset", "timing"]
ModelStatus = Literal["active", "training", "inactive", "error"]
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="From the retrain answer.")]
assert set(get_args(Layer)) == set(LAYERS)


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
    monitor: Monitor,
    models: Models,
    caller: OptionalCaller,
) -> HealthOut | HealthStatus:
    """Database, models and data freshness, recorded as a `system_health` row; each worker
    checks at most every 30 s and answers with its latest check in between. A database that
    does not answer gives 503.

    Open to monitors without a token, who learn only that the service is up; the details
    (process, database, model versions, data freshness) are for administrators.
    """
    result = system.check_health(
        session,
        monitor,
        models,
        request.app.version,
        timedelta(hours=settings.max_candle_age_hours),
    )
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
    return system.list_models(
        session, page, period, model_type=model_type, status=status, name=name
    )


@router.get("/system/models/{model_id}", response_model=ModelOut)
def get_model(model_id: PathId, _caller: CurrentCaller, session: DbSession) -> ModelOut:
    return system.get_model(session, model_id)


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
    retrainer: Retraining,
) -> RetrainJobOut:
    """Train this version's family again in a background process (administrators).

    Follow it at the `Location` given (`GET /system/retrains/{job_id}`); the run registers a
    new `ai_models` row, `training` until it ends `inactive`, `active` or `error`.
    """
    body = system.retrain(session, caller, retrainer, model_id, _job_link(request))
    response.headers["Location"] = body.follow
    return body


@router.get("/system/retrains/{job_id}", response_model=RetrainJobOut)
def retrain_job(
    job_id: JobId,
    _admin: AdminCaller,
    request: Request,
    session: DbSession,
    retrainer: Retraining,
) -> RetrainJobOut:
    """A retraining job: running, succeeded, failed or lost (its supervisor vanished), the
    model versions it registered and the end of its output.
    """
    return system.retrain_job(session, retrainer, job_id, _job_link(request))


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
    return system.activities(
        session,
        page,
        period,
        user_id=user_id,
        activity_type=activity_type,
        entity_type=entity_type,
        entity_id=entity_id,
    )


def _job_link(request: Request) -> system.JobLink:
    """Where a job is followed: the path of `retrain_job`."""
    return lambda job_id: str(request.app.url_path_for("retrain_job", job_id=job_id))
