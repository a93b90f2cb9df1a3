"""One-screen views: administrators', professionals' and casual users' dashboards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from serving.api.deps import AdminCaller, CurrentCaller, DbSession
from serving.schemas.common import DIGITS
from serving.schemas.dashboards import AdminDashboard, CasualDashboard, ProfessionalDashboard
from serving.services import dashboards

router = APIRouter(tags=["dashboards"])


@router.get("/dashboard/admin", response_model=AdminDashboard)
def admin_dashboard(
    _admin: AdminCaller,
    session: DbSession,
    days: Annotated[
        int, Query(ge=1, le=365, description="Window of the accuracy by model version."), DIGITS
    ] = 30,
) -> AdminDashboard:
    """Users and sessions, model health per layer, the latest health check, suggestions
    waiting for review, recent activity and live accuracy by model version (administrators).
    """
    moment = datetime.now(UTC)
    content = dashboards.admin_dashboard(session, moment, timedelta(days=days))
    return AdminDashboard.model_validate(content, from_attributes=True)


@router.get("/dashboard/professional", response_model=ProfessionalDashboard)
def professional_dashboard(caller: CurrentCaller, session: DbSession) -> ProfessionalDashboard:
    """Regime, sentiment, dominance, sector rotation, and for the caller's watchlists (the
    default one when they have none): top suggestions and signals, each coin's latest
    prediction and realized accuracy over 30 days.
    """
    content = dashboards.professional_dashboard(session, caller.user_id, datetime.now(UTC))
    return ProfessionalDashboard.model_validate(content, from_attributes=True)


@router.get("/dashboard/casual", response_model=CasualDashboard)
def casual_dashboard(caller: CurrentCaller, session: DbSession) -> CasualDashboard:
    """The market in a sentence, the caller's coins with their outlook, three ideas at most
    of each kind, and how often the predictions were right.
    """
    content = dashboards.casual_dashboard(session, caller.user_id, datetime.now(UTC))
    return CasualDashboard.model_validate(content, from_attributes=True)
