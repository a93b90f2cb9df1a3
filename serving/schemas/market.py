"""Layers 1 and 2: market regime, sentiment, dominance, macro indicators, sectors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from serving.schemas.common import Schema


class RegimeOut(Schema):
    id: int
    regime: str = Field(description="bull, bear or sideways over the coming period.")
    confidence_score: float
    indicators: dict[str, Any] | None
    analysis_data: dict[str, Any] | None
    analysis_time: datetime | None
    created_at: datetime | None


class SentimentOut(Schema):
    id: int
    fear_greed_index: float | None
    social_sentiment: float | None
    sentiment_sources: dict[str, Any] | None
    analysis_metrics: dict[str, Any] | None
    timestamp: datetime | None
    created_at: datetime | None


class DominanceOut(Schema):
    id: int
    btc_dominance: float
    eth_dominance: float
    alt_dominance: float
    trend_analysis: dict[str, Any] | None
    timestamp: datetime | None
    created_at: datetime | None


class IndicatorOut(Schema):
    id: int
    indicator_name: str
    value: float
    timeframe: str
    metadata: dict[str, Any] | None = Field(validation_alias="metadata_")
    timestamp: datetime | None
    created_at: datetime | None


class SectorPerformanceOut(Schema):
    id: int
    sector_id: int
    performance_24h: float | None = Field(description="Percent change over 24 hours.")
    performance_7d: float | None
    performance_30d: float | None
    volume_change: float | None
    market_cap_change: float | None
    performance_metrics: dict[str, Any] | None
    analysis_time: datetime | None
    created_at: datetime | None


class SectorOut(Schema):
    id: int
    name: str
    description: str | None
    characteristics: dict[str, Any] | None
    is_active: bool | None
    created_at: datetime | None
    updated_at: datetime | None
    latest_performance: SectorPerformanceOut | None = Field(
        default=None, description="The sector's newest sector_performance row, if any."
    )


class RotationOut(Schema):
    id: int
    from_sector_id: int | None
    from_sector: str | None = Field(default=None, description="Name of the weaker sector.")
    to_sector_id: int | None
    to_sector: str | None = Field(default=None, description="Name of the stronger sector.")
    rotation_strength: float | None
    confidence_score: float | None
    rotation_indicators: dict[str, Any] | None
    analysis_time: datetime | None
    created_at: datetime | None


class SectorCryptoOut(Schema):
    id: int = Field(description="The crypto_sector_mapping row.")
    crypto_id: int
    symbol: str | None = None
    name: str | None = None
    sector_id: int
    allocation_percentage: float | None
    is_primary_sector: bool | None
    created_at: datetime | None
    updated_at: datetime | None
