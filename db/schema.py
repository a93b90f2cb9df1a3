"""Every table of the spec as a typed SQLAlchemy 2 ORM class.

This module is the single declaration of the schema; the Alembic migration was generated from
it and `docs/schema-notes.md` lists where it deliberately departs from the spec's SQL.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DefaultClause,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.naming import conv

from db.base import Base
from db.types import Inet, Json, UtcDateTime, now_plus_days

EMPTY_OBJECT = text("'{}'")
EMPTY_ARRAY = text("'[]'")


def created_at() -> Mapped[datetime | None]:
    return mapped_column(UtcDateTime(), server_default=func.now())


def updated_at() -> Mapped[datetime | None]:
    """Refreshed by a trigger on every UPDATE (PostgreSQL and SQLite alike)."""
    return mapped_column(UtcDateTime(), server_default=func.now())


def json_object() -> Mapped[dict[str, Any] | None]:
    return mapped_column(Json, server_default=EMPTY_OBJECT)


def between_0_and_1(column: str) -> CheckConstraint:
    return CheckConstraint(f"{column} >= 0 AND {column} <= 1", name=column)


# --------------------------------------------------------------------------- users & auth


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'public')", name="role"),
        Index("idx_users_role", "role"),
        Index("idx_users_active", "is_active"),
        Index("idx_users_created_at", "created_at"),
        Index(
            "idx_users_admin_overview",
            "id",
            "email",
            "role",
            "is_active",
            "created_at",
            "last_login",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    first_name: Mapped[str | None] = mapped_column(String(50))
    last_name: Mapped[str | None] = mapped_column(String(50))
    role: Mapped[str] = mapped_column(String(20), server_default=text("'public'"))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    is_verified: Mapped[bool] = mapped_column(Boolean, server_default=false())
    is_premium: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime | None] = created_at()
    updated_at: Mapped[datetime | None] = updated_at()
    last_login: Mapped[datetime | None] = mapped_column(UtcDateTime())
    login_count: Mapped[int | None] = mapped_column(Integer, server_default=text("0"))
    preferences: Mapped[dict[str, Any] | None] = json_object()
    timezone: Mapped[str | None] = mapped_column(String(50), server_default=text("'UTC'"))
    language: Mapped[str | None] = mapped_column(String(10), server_default=text("'en'"))


class UserSession(Base):
    __tablename__ = "user_sessions"
    __table_args__ = (
        Index("idx_sessions_user_id", "user_id"),
        Index("idx_sessions_active", "is_active", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_token: Mapped[str] = mapped_column(String(255), unique=True)
    refresh_token: Mapped[str | None] = mapped_column(String(255))
    device_info: Mapped[dict[str, Any] | None] = mapped_column(Json)
    ip_address: Mapped[str | None] = mapped_column(Inet)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime | None] = created_at()
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), server_default=func.now())


class UserActivity(Base):
    __tablename__ = "user_activities"
    __table_args__ = (
        Index("idx_activity_log_user_id", "user_id"),
        Index("idx_activity_log_type", "activity_type"),
        Index("idx_activity_log_created_at", text("created_at DESC")),
        Index("idx_activity_log_entity", "entity_type", "entity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    activity_type: Mapped[str] = mapped_column(String(50))
    entity_type: Mapped[str | None] = mapped_column(String(50))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(50))
    details: Mapped[dict[str, Any] | None] = mapped_column(Json)
    ip_address: Mapped[str | None] = mapped_column(Inet)
    user_agent: Mapped[str | None] = mapped_column(Text)
    session_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime | None] = created_at()


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(
            "notification_type IN ('signal', 'alert', 'system', 'educational')",
            name="notification_type",
        ),
        CheckConstraint("status IN ('unread', 'read', 'dismissed')", name="status"),
        CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name="priority"),
        Index("idx_notifications_user_status", "user_id", "status", text("scheduled_for DESC")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    notification_type: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = json_object()
    status: Mapped[str | None] = mapped_column(String(20), server_default=text("'unread'"))
    priority: Mapped[str | None] = mapped_column(String(20), server_default=text("'normal'"))
    scheduled_for: Mapped[datetime | None] = mapped_column(UtcDateTime(), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(
        UtcDateTime(), server_default=now_plus_days(30)
    )
    created_at: Mapped[datetime | None] = created_at()


# --------------------------------------------------------------------------- market data


class Cryptocurrency(Base):
    __tablename__ = "cryptocurrencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    symbol: Mapped[str] = mapped_column(String(10), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    coingecko_id: Mapped[str | None] = mapped_column(String(50), unique=True)
    market_cap_rank: Mapped[int | None] = mapped_column(Integer)
    current_price: Mapped[Decimal | None] = mapped_column(Numeric(20, 8))
    market_cap: Mapped[Decimal | None] = mapped_column(Numeric(30, 2))
    total_volume: Mapped[Decimal | None] = mapped_column(Numeric(30, 2))
    circulating_supply: Mapped[Decimal | None] = mapped_column(Numeric(30, 2))
    total_supply: Mapped[Decimal | None] = mapped_column(Numeric(30, 2))
    max_supply: Mapped[Decimal | None] = mapped_column(Numeric(30, 2))
    price_change_percentage_24h: Mapped[Decimal | None] = mapped_column(Numeric(10, 4))
    price_change_percentage_7d: Mapped[Decimal | None] = mapped_column(Numeric(10, 4))
    price_change_percentage_30d: Mapped[Decimal | None] = mapped_column(Numeric(10, 4))
    description: Mapped[str | None] = mapped_column(Text)
    website_url: Mapped[str | None] = mapped_column(String(255))
    blockchain_site: Mapped[str | None] = mapped_column(String(255))
    whitepaper_url: Mapped[str | None] = mapped_column(String(255))
    twitter_username: Mapped[str | None] = mapped_column(String(100))
    telegram_channel: Mapped[str | None] = mapped_column(String(100))
    subreddit_url: Mapped[str | None] = mapped_column(String(255))
    github_repos: Mapped[list[Any] | None] = mapped_column(Json)
    sectors: Mapped[list[Any] | None] = mapped_column(Json)
    contract_address: Mapped[str | None] = mapped_column(String(100))
    decimals: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    is_supported: Mapped[bool] = mapped_column(Boolean, server_default=true())
    tier: Mapped[int | None] = mapped_column(Integer, server_default=text("2"))
    created_at: Mapped[datetime | None] = created_at()
    updated_at: Mapped[datetime | None] = updated_at()
    last_data_update: Mapped[datetime | None] = mapped_column(UtcDateTime())


class PriceData(Base):
    """Hourly OHLCV candles; (crypto_id, timestamp) is the natural key every reader uses."""

    __tablename__ = "price_data"
    __table_args__ = (
        UniqueConstraint("crypto_id", "timestamp", name=conv("unique_crypto_timestamp")),
        # No idx_price_data_timestamp (migration 0003): no query of ours needs a cross-coin
        # time index, and it costs every ingested row an index insertion.
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    crypto_id: Mapped[int] = mapped_column(ForeignKey("cryptocurrencies.id", ondelete="CASCADE"))
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime())
    open_price: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    high_price: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    low_price: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    close_price: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    volume: Mapped[Decimal | None] = mapped_column(Numeric(30, 8))
    market_cap: Mapped[Decimal | None] = mapped_column(Numeric(30, 2))
    technical_indicators: Mapped[dict[str, Any] | None] = json_object()
    created_at: Mapped[datetime | None] = created_at()


# --------------------------------------------------------------------------- layer 1: macro


class MarketRegimeAnalysis(Base):
    __tablename__ = "market_regime_analysis"
    __table_args__ = (
        CheckConstraint("regime IN ('bull', 'bear', 'sideways')", name="regime"),
        between_0_and_1("confidence_score"),
        Index("idx_market_regime_time", text("analysis_time DESC")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    regime: Mapped[str] = mapped_column(String(10))
    confidence_score: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    indicators: Mapped[dict[str, Any] | None] = json_object()
    analysis_data: Mapped[dict[str, Any] | None] = json_object()
    analysis_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), server_default=func.now())
    created_at: Mapped[datetime | None] = created_at()
    updated_at: Mapped[datetime | None] = updated_at()


class MarketSentimentData(Base):
    __tablename__ = "market_sentiment_data"
    __table_args__ = (Index("idx_sentiment_timestamp", text("timestamp DESC")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fear_greed_index: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    social_sentiment: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    sentiment_sources: Mapped[dict[str, Any] | None] = json_object()
    analysis_metrics: Mapped[dict[str, Any] | None] = json_object()
    timestamp: Mapped[datetime | None] = mapped_column(UtcDateTime(), server_default=func.now())
    created_at: Mapped[datetime | None] = created_at()


class DominanceData(Base):
    __tablename__ = "dominance_data"
    __table_args__ = (Index("idx_dominance_timestamp", text("timestamp DESC")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    btc_dominance: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    eth_dominance: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    alt_dominance: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    trend_analysis: Mapped[dict[str, Any] | None] = json_object()
    timestamp: Mapped[datetime | None] = mapped_column(UtcDateTime(), server_default=func.now())
    created_at: Mapped[datetime | None] = created_at()


class MacroIndicator(Base):
    __tablename__ = "macro_indicators"

    id: Mapped[int] = mapped_column(primary_key=True)
    indicator_name: Mapped[str] = mapped_column(String(50))
    value: Mapped[Decimal] = mapped_column(Numeric(15, 8))
    timeframe: Mapped[str] = mapped_column(String(20))
    # "metadata" is reserved on declarative classes; the column keeps the spec's name.
    metadata_: Mapped[dict[str, Any] | None] = mapped_column(
        "metadata", Json, server_default=EMPTY_OBJECT
    )
    timestamp: Mapped[datetime | None] = mapped_column(UtcDateTime(), server_default=func.now())
    created_at: Mapped[datetime | None] = created_at()


# --------------------------------------------------------------------------- layer 2: sectors


class CryptoSector(Base):
    __tablename__ = "crypto_sectors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    characteristics: Mapped[dict[str, Any] | None] = json_object()
    is_active: Mapped[bool | None] = mapped_column(Boolean, server_default=true())
    created_at: Mapped[datetime | None] = created_at()
    updated_at: Mapped[datetime | None] = updated_at()


class SectorPerformance(Base):
    __tablename__ = "sector_performance"
    __table_args__ = (
        Index("idx_sector_perf_sector_time", "sector_id", text("analysis_time DESC")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sector_id: Mapped[int] = mapped_column(ForeignKey("crypto_sectors.id", ondelete="CASCADE"))
    performance_24h: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    performance_7d: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    performance_30d: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    volume_change: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    market_cap_change: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    performance_metrics: Mapped[dict[str, Any] | None] = json_object()
    analysis_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), server_default=func.now())
    created_at: Mapped[datetime | None] = created_at()


class SectorRotationAnalysis(Base):
    __tablename__ = "sector_rotation_analysis"
    __table_args__ = (
        between_0_and_1("rotation_strength"),
        between_0_and_1("confidence_score"),
        Index("idx_sector_rotation_time", text("analysis_time DESC")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    from_sector_id: Mapped[int | None] = mapped_column(
        ForeignKey("crypto_sectors.id", ondelete="CASCADE")
    )
    to_sector_id: Mapped[int | None] = mapped_column(
        ForeignKey("crypto_sectors.id", ondelete="CASCADE")
    )
    rotation_strength: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    confidence_score: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    rotation_indicators: Mapped[dict[str, Any] | None] = json_object()
    analysis_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), server_default=func.now())
    created_at: Mapped[datetime | None] = created_at()


class CryptoSectorMapping(Base):
    __tablename__ = "crypto_sector_mapping"
    __table_args__ = (
        UniqueConstraint("crypto_id", "sector_id"),
        CheckConstraint(
            "allocation_percentage > 0 AND allocation_percentage <= 100",
            name="allocation_percentage",
        ),
        Index("idx_crypto_sector_sector", "sector_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    crypto_id: Mapped[int] = mapped_column(ForeignKey("cryptocurrencies.id", ondelete="CASCADE"))
    sector_id: Mapped[int] = mapped_column(ForeignKey("crypto_sectors.id", ondelete="CASCADE"))
    allocation_percentage: Mapped[Decimal | None] = mapped_column(
        Numeric(5, 2), server_default=text("100")
    )
    is_primary_sector: Mapped[bool | None] = mapped_column(Boolean, server_default=true())
    created_at: Mapped[datetime | None] = created_at()
    updated_at: Mapped[datetime | None] = updated_at()


# --------------------------------------------------------------------------- layer 3: assets


class Watchlist(Base):
    __tablename__ = "watchlists"
    __table_args__ = (
        CheckConstraint("type IN ('default', 'personal')", name=conv("check_watchlist_type")),
        CheckConstraint(
            "(type = 'default' AND user_id IS NULL) OR (type = 'personal' AND user_id IS NOT NULL)",
            name=conv("check_default_watchlist_user"),
        ),
        CheckConstraint("max_assets > 0", name="max_assets"),
        Index("idx_watchlists_type", "type"),
        Index("idx_watchlists_active", "is_active"),
        Index("idx_watchlist_user", "user_id", "type"),
        Index(
            "idx_watchlists_active_updated",
            "id",
            "updated_at",
            postgresql_where=text("is_active = true"),
            sqlite_where=text("is_active = 1"),
        ),
        Index(
            "idx_watchlists_default",
            "type",
            unique=True,
            postgresql_where=text("type = 'default'"),
            sqlite_where=text("type = 'default'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(20), server_default=text("'personal'"))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    is_public: Mapped[bool] = mapped_column(Boolean, server_default=false())
    max_assets: Mapped[int | None] = mapped_column(Integer, server_default=text("25"))
    sort_order: Mapped[int | None] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime | None] = created_at()
    updated_at: Mapped[datetime | None] = updated_at()


class WatchlistAsset(Base):
    __tablename__ = "watchlist_assets"
    __table_args__ = (
        UniqueConstraint("watchlist_id", "crypto_id"),
        # Deferred on PostgreSQL so a reorder that swaps positions can pass through a
        # transient duplicate; SQLite cannot defer UNIQUE, so it gets the plain constraint.
        UniqueConstraint("watchlist_id", "position", deferrable=True, initially="DEFERRED").ddl_if(
            dialect="postgresql"
        ),
        UniqueConstraint("watchlist_id", "position").ddl_if(dialect="sqlite"),
        CheckConstraint("position >= 1", name="position"),
        between_0_and_1("weight"),
        between_0_and_1("target_allocation"),
        Index("idx_watchlist_assets_crypto", "crypto_id"),
        Index("idx_watchlist_assets_active", "is_active"),
        Index("idx_watchlist_assets_composite", "watchlist_id", "is_active", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(ForeignKey("watchlists.id", ondelete="CASCADE"))
    crypto_id: Mapped[int] = mapped_column(ForeignKey("cryptocurrencies.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    weight: Mapped[Decimal | None] = mapped_column(Numeric(5, 4), server_default=text("0.0"))
    target_allocation: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    notes: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    added_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), server_default=func.now())
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    last_modified_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime | None] = updated_at()


class AiSuggestion(Base):
    __tablename__ = "ai_suggestions"
    __table_args__ = (
        CheckConstraint(
            "suggestion_type IN ('add', 'remove', 'rebalance', 'tier_change')",
            name=conv("check_suggestion_type"),
        ),
        CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'implemented', 'expired')",
            name=conv("check_status"),
        ),
        CheckConstraint("ai_layer BETWEEN 1 AND 4", name=conv("check_ai_layer")),
        between_0_and_1("confidence_score"),
        between_0_and_1("risk_score"),
        between_0_and_1("success_score"),
        Index("idx_ai_suggestions_watchlist_id", "watchlist_id"),
        Index("idx_ai_suggestions_crypto_id", "crypto_id"),
        Index("idx_ai_suggestions_layer", "ai_layer"),
        Index("idx_ai_suggestions_confidence", text("confidence_score DESC")),
        Index("idx_ai_suggestions_created_at", text("created_at DESC")),
        Index("idx_ai_suggestions_status_created", "status", text("created_at DESC")),
        Index("idx_ai_suggestions_composite", "status", "ai_layer", text("confidence_score DESC")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(ForeignKey("watchlists.id", ondelete="CASCADE"))
    crypto_id: Mapped[int] = mapped_column(ForeignKey("cryptocurrencies.id"))
    suggestion_type: Mapped[str] = mapped_column(String(50))
    ai_layer: Mapped[int] = mapped_column(Integer)
    confidence_score: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    reasoning: Mapped[dict[str, Any]] = mapped_column(Json)
    context_data: Mapped[dict[str, Any] | None] = mapped_column(Json)
    target_position: Mapped[int | None] = mapped_column(Integer)
    target_weight: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    expected_return: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    risk_score: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    status: Mapped[str] = mapped_column(String(20), server_default=text("'pending'"))
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    implemented_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    actual_return: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    success_score: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    created_at: Mapped[datetime | None] = created_at()
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


# --------------------------------------------------------------------------- layer 4: timing


class TradingSignal(Base):
    __tablename__ = "trading_signals"
    __table_args__ = (
        CheckConstraint("signal_type IN ('long', 'short')", name="signal_type"),
        between_0_and_1("confidence_score"),
        CheckConstraint("risk_level IN ('low', 'medium', 'high', 'extreme')", name="risk_level"),
        CheckConstraint("risk_reward_ratio > 0", name="risk_reward_ratio"),
        CheckConstraint("status IN ('active', 'executed', 'expired', 'cancelled')", name="status"),
        CheckConstraint(
            "(signal_type = 'long' AND stop_loss < entry_price AND entry_price < target_price)"
            " OR (signal_type = 'short' AND target_price < entry_price"
            " AND entry_price < stop_loss)",
            name="price_order",
        ),
        Index("idx_trading_signals_status", "crypto_id", "status", text("generated_at DESC")),
        Index("idx_trading_signals_generated", text("generated_at DESC")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    crypto_id: Mapped[int] = mapped_column(ForeignKey("cryptocurrencies.id", ondelete="CASCADE"))
    signal_type: Mapped[str] = mapped_column(String(10))
    entry_price: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    target_price: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    stop_loss: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    confidence_score: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    risk_level: Mapped[str] = mapped_column(String(10))
    risk_reward_ratio: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    time_horizon_hours: Mapped[int | None] = mapped_column(Integer, server_default=text("24"))
    ai_analysis: Mapped[dict[str, Any] | None] = json_object()
    market_context: Mapped[dict[str, Any] | None] = json_object()
    status: Mapped[str | None] = mapped_column(String(20), server_default=text("'active'"))
    generated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(
        UtcDateTime(), server_default=now_plus_days(7)
    )
    updated_at: Mapped[datetime | None] = updated_at()


class SignalExecution(Base):
    __tablename__ = "signal_executions"
    __table_args__ = (
        CheckConstraint("execution_type IN ('manual', 'automatic')", name="execution_type"),
        CheckConstraint(
            "status IN ('pending', 'filled', 'partially_filled', 'cancelled')", name="status"
        ),
        Index("idx_signal_executions_user", "user_id", text("executed_at DESC")),
        Index("idx_signal_executions_signal", "signal_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("trading_signals.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    execution_price: Mapped[Decimal | None] = mapped_column(Numeric(20, 8))
    position_size: Mapped[Decimal | None] = mapped_column(Numeric(30, 8))
    portfolio_percentage: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    execution_type: Mapped[str | None] = mapped_column(String(20), server_default=text("'manual'"))
    status: Mapped[str | None] = mapped_column(String(20), server_default=text("'pending'"))
    execution_details: Mapped[dict[str, Any] | None] = json_object()
    executed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), server_default=func.now())
    updated_at: Mapped[datetime | None] = updated_at()


class RiskManagement(Base):
    __tablename__ = "risk_management"
    __table_args__ = (between_0_and_1("max_portfolio_risk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    max_position_size: Mapped[Decimal | None] = mapped_column(
        Numeric(30, 8), server_default=text("1000")
    )
    max_portfolio_risk: Mapped[Decimal | None] = mapped_column(
        Numeric(5, 4), server_default=text("0.02")
    )
    risk_rules: Mapped[dict[str, Any] | None] = json_object()
    current_exposure: Mapped[dict[str, Any] | None] = json_object()
    risk_metrics: Mapped[dict[str, Any] | None] = json_object()
    last_calculated: Mapped[datetime | None] = mapped_column(
        UtcDateTime(), server_default=func.now()
    )
    updated_at: Mapped[datetime | None] = updated_at()


# --------------------------------------------------------------------------- predictions


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (
        CheckConstraint("layer_source BETWEEN 1 AND 4", name="layer_source"),
        between_0_and_1("confidence_score"),
        CheckConstraint("prediction_horizon > 0", name="prediction_horizon"),
        Index("idx_predictions_crypto_layer", "crypto_id", "layer_source", text("created_at DESC")),
        Index("idx_predictions_layer_source", "layer_source", text("created_at DESC")),
        Index("idx_predictions_context_data", "context_data", postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
        Index("idx_predictions_layer_type", "layer_source", "prediction_type"),
        Index("idx_predictions_crypto_type", "crypto_id", "prediction_type"),
        Index("idx_predictions_type_time", "prediction_type", text("created_at DESC")),
        # Without the spec's is_realized column (migration 0003): no index may name a column
        # the evaluation job sets, or its updates cannot be heap-only (HOT).
        Index("idx_predictions_composite", "crypto_id", text("created_at DESC")),
        # Room on each page for the evaluated version of its rows (HOT updates, migration
        # 0003), and the wide JSONB values out of line so that a row is narrow (0004).
        {"postgresql_with": {"fillfactor": 45, "toast_tuple_target": 128}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    crypto_id: Mapped[int] = mapped_column(ForeignKey("cryptocurrencies.id", ondelete="CASCADE"))
    watchlist_id: Mapped[int | None] = mapped_column(
        ForeignKey("watchlists.id", ondelete="SET NULL")
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    model_name: Mapped[str] = mapped_column(String(50))
    model_version: Mapped[str] = mapped_column(String(20))
    layer_source: Mapped[int | None] = mapped_column(Integer, server_default=text("3"))
    prediction_type: Mapped[str | None] = mapped_column(String(20), server_default=text("'price'"))
    predicted_price: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    predicted_value: Mapped[dict[str, Any] | None] = json_object()
    confidence_score: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    prediction_horizon: Mapped[int] = mapped_column(Integer)
    target_datetime: Mapped[datetime] = mapped_column(UtcDateTime())
    features_used: Mapped[Any | None] = mapped_column(Json)
    model_parameters: Mapped[dict[str, Any] | None] = mapped_column(Json)
    input_price: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    input_features: Mapped[dict[str, Any] | None] = mapped_column(Json)
    context_data: Mapped[dict[str, Any] | None] = mapped_column(Json)
    actual_price: Mapped[Decimal | None] = mapped_column(Numeric(20, 8))
    accuracy_percentage: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    absolute_error: Mapped[Decimal | None] = mapped_column(Numeric(20, 8))
    squared_error: Mapped[Decimal | None] = mapped_column(Numeric(30, 8))
    is_realized: Mapped[bool] = mapped_column(Boolean, server_default=false())
    is_accurate: Mapped[bool | None] = mapped_column(Boolean)
    accuracy_threshold: Mapped[Decimal | None] = mapped_column(
        Numeric(5, 2), server_default=text("5.0")
    )
    training_data_end: Mapped[datetime | None] = mapped_column(UtcDateTime())
    market_conditions: Mapped[str | None] = mapped_column(String(20))
    volatility_level: Mapped[str | None] = mapped_column(String(10))
    model_training_time: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    prediction_time: Mapped[Decimal | None] = mapped_column(Numeric(10, 6))
    notes: Mapped[str | None] = mapped_column(Text)
    debug_info: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime | None] = created_at()
    updated_at: Mapped[datetime | None] = updated_at()
    evaluated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


# --------------------------------------------------------------------------- system


class AiModel(Base):
    """One row per registered model version; at most one version of a name is active."""

    __tablename__ = "ai_models"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        CheckConstraint("model_type IN ('macro', 'sector', 'asset', 'timing')", name="model_type"),
        CheckConstraint("status IN ('active', 'training', 'inactive', 'error')", name="status"),
        Index("idx_ai_models_type_status", "model_type", "status"),
        Index(
            "idx_ai_models_one_active",
            "name",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(50))
    model_type: Mapped[str] = mapped_column(String(20))
    status: Mapped[str | None] = mapped_column(String(20), server_default=text("'inactive'"))
    configuration: Mapped[dict[str, Any] | None] = json_object()
    performance_metrics: Mapped[dict[str, Any] | None] = json_object()
    last_trained: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_prediction: Mapped[datetime | None] = mapped_column(UtcDateTime())
    health_status: Mapped[dict[str, Any] | None] = json_object()
    created_at: Mapped[datetime | None] = created_at()
    updated_at: Mapped[datetime | None] = updated_at()


class DataVersion(Base):
    """A counter per scope, bumped by triggers in the transaction that changes its inputs.

    Not in the spec. `market` covers candles, the coins and their sectors; `models` which
    version of each family is active (migration 0005 installs the triggers). A server
    compares these rows instead of scanning the candles.
    """

    __tablename__ = "data_versions"

    scope: Mapped[str] = mapped_column(String(30), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class SystemHealth(Base):
    __tablename__ = "system_health"
    __table_args__ = (
        CheckConstraint(
            "overall_health_score >= 0 AND overall_health_score <= 100",
            name="overall_health_score",
        ),
        Index("idx_system_health_time", text("check_time DESC")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    check_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), server_default=func.now())
    api_status: Mapped[dict[str, Any] | None] = json_object()
    database_status: Mapped[dict[str, Any] | None] = json_object()
    ml_models_status: Mapped[dict[str, Any] | None] = json_object()
    data_pipeline_status: Mapped[dict[str, Any] | None] = json_object()
    overall_health_score: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    performance_metrics: Mapped[dict[str, Any] | None] = json_object()
    error_logs: Mapped[list[Any] | None] = mapped_column(Json, server_default=EMPTY_ARRAY)
    created_at: Mapped[datetime | None] = created_at()


# --------------------------------------------------------------------------- archives


def _archive_of(source: Table, name: str) -> Table:
    """A cold copy of `source`: the same columns, types and defaults, no foreign keys.

    The spec builds these with `LIKE source INCLUDING ALL`, which copies neither foreign keys
    (archived rows must outlive the rows they pointed at) nor, here, the hot-path indexes.
    """
    columns = [
        Column(
            column.name,
            column.type,
            primary_key=column.primary_key,
            autoincrement=False,
            nullable=column.nullable,
            server_default=DefaultClause(column.server_default.arg)
            if isinstance(column.server_default, DefaultClause) and not column.primary_key
            else None,
        )
        for column in source.columns
    ]
    return Table(
        name,
        Base.metadata,
        *columns,
        Index(f"idx_{name}_created_at", text("created_at DESC")),
    )


class UserActivityArchive(Base):
    """`user_activities` rows older than six months, moved by `archive_old_data()`."""

    __table__ = _archive_of(Base.metadata.tables["user_activities"], "user_activities_archive")


class AiSuggestionArchive(Base):
    """Implemented `ai_suggestions` older than three months, moved by `archive_old_data()`."""

    __table__ = _archive_of(Base.metadata.tables["ai_suggestions"], "ai_suggestions_archive")
