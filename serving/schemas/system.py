"""Health checks, registered model versions, retraining jobs and the activity log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, computed_field

from serving.schemas.common import Schema, StoredJson

# PostgreSQL's INET comes back as an ipaddress object.
Address = Annotated[
    str | None, BeforeValidator(lambda value: None if value is None else str(value))
]


class HealthStatus(BaseModel):
    """What anyone may know without a token: the service answers (a database outage is 503)."""

    status: Literal["up"] = Field(description="The API and its database answer.")


class HealthOut(Schema):
    id: int
    check_time: datetime | None
    overall_health_score: float | None
    api_status: dict[str, Any] | None
    database_status: dict[str, Any] | None
    ml_models_status: dict[str, Any] | None
    data_pipeline_status: dict[str, Any] | None
    performance_metrics: dict[str, Any] | None
    error_logs: list[Any] | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> str:
        """healthy (score 90+), degraded (50+) or unhealthy."""
        score = self.overall_health_score or 0.0
        if score >= 90:
            return "healthy"
        return "degraded" if score >= 50 else "unhealthy"


class ModelOut(Schema):
    id: int
    name: str
    version: str
    model_type: str
    status: str | None
    configuration: dict[str, Any] | None
    performance_metrics: dict[str, Any] | None
    last_trained: datetime | None
    last_prediction: datetime | None
    health_status: dict[str, Any] | None
    created_at: datetime | None
    updated_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def edge(self) -> str | None:
        """'demonstrated' where the served output's skill interval lies above 0, else
        'no demonstrated edge'; None for a version that never finished training."""
        edge = (self.performance_metrics or {}).get("edge")
        return None if edge is None else str(edge)


class ModelVersionRef(Schema):
    id: int
    name: str
    version: str
    status: str | None


class RetrainJobOut(BaseModel):
    id: str
    layer: str
    state: str
    command: list[str]
    requested_by: int
    requested_at: datetime
    trainer_pid: int | None
    exit_code: int | None
    finished_at: datetime | None
    follow: str
    models: list[ModelVersionRef]
    log_tail: str


class ActivityOut(Schema):
    id: int
    user_id: int | None
    activity_type: str
    action: str
    entity_type: str | None
    entity_id: int | None
    details: StoredJson | None
    ip_address: Address
    user_agent: str | None
    session_id: str | None
    created_at: datetime | None
