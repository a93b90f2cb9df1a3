"""The three dashboards: administrators', professionals' and casual users' one-screen views."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from serving.schemas.common import Schema
from serving.schemas.system import HealthOut


class RegimeView(Schema):
    regime: str
    confidence_score: float
    analysis_time: datetime | None


class SentimentView(Schema):
    fear_greed_index: float | None
    social_sentiment: float | None
    timestamp: datetime | None


class DominanceView(Schema):
    btc_dominance: float
    eth_dominance: float
    alt_dominance: float
    timestamp: datetime | None


class SectorView(BaseModel):
    sector_id: int
    name: str
    performance_24h: float | None
    performance_7d: float | None
    performance_30d: float | None
    analysis_time: datetime | None


class RotationView(BaseModel):
    from_sector: str | None
    to_sector: str | None
    rotation_strength: float | None
    confidence_score: float | None
    analysis_time: datetime | None


class SuggestionView(BaseModel):
    id: int
    watchlist_id: int
    watchlist_name: str
    symbol: str
    suggestion_type: str
    ai_layer: int
    confidence_score: float
    expected_return: float | None
    risk_score: float | None
    created_at: datetime | None
    expires_at: datetime | None


class SignalView(BaseModel):
    id: int
    symbol: str
    signal_type: str
    entry_price: float
    target_price: float
    stop_loss: float
    confidence_score: float
    risk_level: str
    risk_reward_ratio: float | None
    time_horizon_hours: int | None
    generated_at: datetime | None
    expires_at: datetime | None


class PredictionView(BaseModel):
    id: int
    model_name: str
    model_version: str
    input_price: float
    predicted_price: float
    expected_change_pct: float | None
    confidence_score: float
    prediction_horizon: int
    target_datetime: datetime
    created_at: datetime | None
    is_realized: bool
    actual_price: float | None
    is_accurate: bool | None


class AccuracyView(BaseModel):
    """Realized predictions: how many, how many accurate (within their threshold), errors."""

    evaluated: int
    accurate: int
    hit_rate: float | None
    mean_accuracy_percentage: float | None
    mean_abs_pct_error: float | None


class AssetView(BaseModel):
    crypto_id: int
    symbol: str
    name: str
    position: int
    weight: float | None
    current_price: float | None
    price_change_percentage_24h: float | None
    latest_prediction: PredictionView | None
    accuracy: AccuracyView | None


class WatchlistView(BaseModel):
    id: int
    name: str
    type: str
    assets: list[AssetView]


class ProfessionalDashboard(BaseModel):
    generated_at: datetime
    regime: RegimeView | None
    sentiment: SentimentView | None
    dominance: DominanceView | None
    sectors: list[SectorView]
    rotations: list[RotationView]
    using_default_watchlist: bool
    watchlists: list[WatchlistView]
    suggestions: list[SuggestionView]
    signals: list[SignalView]
    accuracy_window_days: int
    accuracy: AccuracyView


class CasualCoin(BaseModel):
    symbol: str
    name: str
    price: float | None
    outlook: Literal["up", "down", "flat"] | None
    expected_change_pct: float | None = None
    horizon_hours: int | None = None
    confidence_pct: int | None = None
    summary: str


class CasualIdea(BaseModel):
    kind: Literal["suggestion", "signal"]
    symbol: str
    confidence_pct: int
    summary: str


class CasualDashboard(BaseModel):
    generated_at: datetime
    market: str
    regime: str | None
    mood: str | None
    watchlists: list[str]
    using_default_watchlist: bool
    coins: list[CasualCoin]
    ideas: list[CasualIdea]
    track_record: str
    hit_rate: float | None


class UserCounts(BaseModel):
    total: int
    admins: int
    active: int
    new_7d: int
    logged_in_24h: int
    active_sessions: int
    users_with_sessions: int


class ActiveModelView(BaseModel):
    id: int
    name: str
    version: str
    last_trained: datetime | None
    last_prediction: datetime | None
    primary_metric: str | None
    validation: float | None
    baseline: float | None
    edge: str | None
    live_evaluated: int | None
    live_accuracy_rate: float | None
    live_ece: float | None


class LayerHealth(BaseModel):
    layer: str
    versions_by_status: dict[str, int]
    active: ActiveModelView | None


class SuggestionQueue(BaseModel):
    pending: int
    pending_by_layer: dict[str, int]
    oldest_pending_at: datetime | None
    newest: list[SuggestionView]


class ActivityView(BaseModel):
    id: int
    user_id: int | None
    email: str | None
    activity_type: str
    action: str
    entity_type: str | None
    entity_id: int | None
    created_at: datetime | None


class VersionAccuracy(AccuracyView):
    model_name: str
    model_version: str
    predictions: int
    mean_confidence: float | None
    last_evaluated_at: datetime | None


class AdminDashboard(BaseModel):
    generated_at: datetime
    users: UserCounts
    models: list[LayerHealth]
    latest_health: HealthOut | None
    suggestions: SuggestionQueue
    recent_activities: list[ActivityView]
    accuracy_window_days: int
    accuracy_by_version: list[VersionAccuracy]
