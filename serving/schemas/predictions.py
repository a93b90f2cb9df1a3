"""Forecast requests and the persisted `predictions` rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, computed_field

from serving.schemas.common import Crypto, Id, Input, Schema

MAX_BATCH = 100


class PredictionRequest(Input):
    crypto: Crypto = Field(description="Symbol (e.g. BTC) or id.", examples=["BTC"])
    horizon_hours: int | None = Field(
        default=None,
        ge=1,
        le=720,
        description="Hours ahead: one the active asset models are trained for (422 names "
        "them otherwise); by default the primary one, 24.",
    )
    watchlist_id: Id | None = Field(default=None, description="The watchlist this serves.")
    layer: Literal[3] = Field(
        default=3,
        description="Price forecasts come from layer 3; layers 1, 2 and 4 are served by "
        "/macro/regime, /sectors/rotation and /signals.",
    )


class BatchPredictionRequest(Input):
    cryptos: list[Crypto] = Field(min_length=1, max_length=MAX_BATCH)
    horizon_hours: int | None = Field(default=None, ge=1, le=720)
    watchlist_id: Id | None = None
    layer: Literal[3] = 3


class PredictionUpdate(Input):
    notes: str | None = Field(max_length=5000, description="The only editable field.")


class PriceInterval(Schema):
    lower: float = Field(description="The price the actual should not fall below.")
    upper: float = Field(description="The price it should not rise above.")
    level: float = Field(description="The share of actual prices the interval is made to hold.")


class PredictionOut(Schema):
    id: int
    crypto_id: int
    symbol: str | None = None
    watchlist_id: int | None
    user_id: int | None
    model_name: str
    model_version: str
    layer_source: int | None
    prediction_type: str | None
    predicted_price: float
    predicted_value: dict[str, Any] | None
    confidence_score: float
    prediction_horizon: int
    target_datetime: datetime
    features_used: list[str] | None
    model_parameters: dict[str, Any] | None
    input_price: float
    input_features: dict[str, float | None] | None
    context_data: dict[str, Any] | None
    accuracy_threshold: float | None
    training_data_end: datetime | None
    market_conditions: str | None
    volatility_level: str | None
    model_training_time: float | None
    prediction_time: float | None
    notes: str | None
    is_realized: bool
    actual_price: float | None
    accuracy_percentage: float | None
    is_accurate: bool | None
    created_at: datetime | None
    evaluated_at: datetime | None

    @computed_field(  # type: ignore[prop-decorator]
        description="The central interval of the price forecast (also in predicted_value)."
    )
    @property
    def interval(self) -> PriceInterval | None:
        return price_interval(self.predicted_value)

    @computed_field(  # type: ignore[prop-decorator]
        description="Once realised: whether the actual price fell inside the interval."
    )
    @property
    def within_interval(self) -> bool | None:
        return holds(self.interval, self.actual_price)


def price_interval(value: dict[str, Any] | None) -> PriceInterval | None:
    """The interval a stored forecast carries; None for one made before intervals."""
    if not value or any(key not in value for key in ("lower", "upper", "level")):
        return None
    return PriceInterval(lower=value["lower"], upper=value["upper"], level=value["level"])


def holds(interval: PriceInterval | None, actual: float | None) -> bool | None:
    """Whether the realised price lies in the interval (bounds included); None until both
    exist. The nightly evaluation counts it by the same rule (`training.live_metrics`)."""
    if interval is None or actual is None:
        return None
    return interval.lower <= actual <= interval.upper


class AccuracyOut(Schema):
    id: int
    state: Literal["pending", "awaiting_candle", "realized"] = Field(
        description="pending: target time not reached; awaiting_candle: reached, but its "
        "candle has not been evaluated yet; realized: evaluated."
    )
    target_datetime: datetime
    predicted_price: float
    input_price: float
    actual_price: float | None
    absolute_error: float | None
    squared_error: float | None
    accuracy_percentage: float | None
    accuracy_threshold: float | None
    is_accurate: bool | None
    direction_correct: bool | None
    interval: PriceInterval | None = Field(description="The forecast's central price interval.")
    within_interval: bool | None = Field(
        description="Once realised: whether the actual price fell inside the interval."
    )
    evaluated_at: datetime | None
