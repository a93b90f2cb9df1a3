"""What the spec's SQL declares, transcribed table by table from shared/spec/database-erd-design.md.

This module is an independent statement of the schema that the specification's ```sql blocks
create. It was written from the spec text alone (never from the project's ORM or migrations) so
that a test can introspect a migrated PostgreSQL database and report every difference by name.
Nothing the spec gets wrong is fixed here; it is transcribed faithfully.

Conventions
-----------
* ``SpecColumn.type`` is the name PostgreSQL's ``format_type()`` reports: SERIAL -> "integer",
  NUMERIC(p, s) / DECIMAL(p,s) -> "numeric(p,s)", VARCHAR(n) -> "character varying(n)",
  TIMESTAMP WITH TIME ZONE -> "timestamp with time zone".
* ``SpecColumn.nullable`` is False for NOT NULL and for PRIMARY KEY columns.
* ``SpecColumn.default`` is the spec's default in a simple normalised form: "serial" for SERIAL,
  "now()" for NOW(), "now() + 7 days" for (NOW() + INTERVAL '7 days'), string literals keep
  their quotes ("'public'", "'{}'", "'[]'"), numbers are written exactly as in the spec
  ("0.0", "0.02", "1000", "5.0"), None when the spec gives no default.
* ``SpecTable.uniques`` holds UNIQUE constraints (column-level UNIQUE and table-level
  UNIQUE(...)), never unique indexes; those are ``SpecIndex(unique=True)``.  The only named one
  is price_data's ``unique_crypto_timestamp``.
* ``SpecTable.checks`` holds each CHECK expression as written in the spec (the text inside
  ``CHECK (...)``, whitespace collapsed to single spaces); named constraints are prefixed with
  ``"name: "``.  Unnamed ones get PostgreSQL's generated names, so compare those by expression.
* ``SpecForeignKey.on_delete`` is "NO ACTION" where the spec gives no ON DELETE clause.
* ``SpecTable.indexes`` lists only the spec's CREATE [UNIQUE] INDEX statements, not the
  indexes PostgreSQL creates implicitly for PRIMARY KEY / UNIQUE constraints.
* The two archive tables are created with ``(LIKE <source> INCLUDING ALL)``.  They carry
  ``like=<source>`` and the source's columns (LIKE copies names, types, NOT NULL and, with
  INCLUDING ALL, defaults), its primary key and its CHECK constraints (INCLUDING CONSTRAINTS).
  LIKE never copies foreign keys.  INCLUDING INDEXES copies the source's indexes too, but
  under PostgreSQL-generated names, so ``indexes`` is empty for them: the spec names none.
* TRIGGERS lists every CREATE TRIGGER, including ``update_watchlist_assets_updated_at``,
  whose table (watchlist_assets) has no ``updated_at`` column.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class SpecColumn:
    name: str
    type: str
    nullable: bool
    default: str | None


@dataclass(frozen=True)
class SpecForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str


@dataclass(frozen=True)
class SpecIndex:
    name: str
    columns: tuple[str, ...]
    unique: bool = False
    where: str | None = None
    using: str = "btree"


@dataclass(frozen=True)
class SpecTable:
    name: str
    columns: tuple[SpecColumn, ...]
    primary_key: tuple[str, ...]
    uniques: tuple[tuple[str, ...], ...]
    checks: tuple[str, ...]
    foreign_keys: tuple[SpecForeignKey, ...]
    indexes: tuple[SpecIndex, ...]
    like: str | None = None


# ---------------------------------------------------------------------------------------------
# Sources of the two LIKE ... INCLUDING ALL archive tables (kept as names so they can be reused)
# ---------------------------------------------------------------------------------------------

_AI_SUGGESTIONS_COLUMNS: tuple[SpecColumn, ...] = (
    SpecColumn("id", "integer", False, "serial"),
    SpecColumn("watchlist_id", "integer", False, None),
    SpecColumn("crypto_id", "integer", False, None),
    SpecColumn("suggestion_type", "character varying(50)", False, None),
    SpecColumn("ai_layer", "integer", False, None),
    SpecColumn("confidence_score", "numeric(5,4)", False, None),
    SpecColumn("reasoning", "jsonb", False, None),
    SpecColumn("context_data", "jsonb", True, None),
    SpecColumn("target_position", "integer", True, None),
    SpecColumn("target_weight", "numeric(5,4)", True, None),
    SpecColumn("expected_return", "numeric(8,4)", True, None),
    SpecColumn("risk_score", "numeric(5,4)", True, None),
    SpecColumn("status", "character varying(20)", False, "'pending'"),
    SpecColumn("reviewed_by", "integer", True, None),
    SpecColumn("reviewed_at", "timestamp with time zone", True, None),
    SpecColumn("implemented_at", "timestamp with time zone", True, None),
    SpecColumn("actual_return", "numeric(8,4)", True, None),
    SpecColumn("success_score", "numeric(5,4)", True, None),
    SpecColumn("created_at", "timestamp with time zone", True, "now()"),
    SpecColumn("expires_at", "timestamp with time zone", True, None),
)

_AI_SUGGESTIONS_CHECKS: tuple[str, ...] = (
    "check_suggestion_type: suggestion_type IN ('add', 'remove', 'rebalance', 'tier_change')",
    "check_status: status IN ('pending', 'approved', 'rejected', 'implemented', 'expired')",
    "check_ai_layer: ai_layer BETWEEN 1 AND 4",
)

_USER_ACTIVITIES_COLUMNS: tuple[SpecColumn, ...] = (
    SpecColumn("id", "integer", False, "serial"),
    SpecColumn("user_id", "integer", True, None),
    SpecColumn("activity_type", "character varying(50)", False, None),
    SpecColumn("entity_type", "character varying(50)", True, None),
    SpecColumn("entity_id", "integer", True, None),
    SpecColumn("action", "character varying(50)", False, None),
    SpecColumn("details", "jsonb", True, None),
    SpecColumn("ip_address", "inet", True, None),
    SpecColumn("user_agent", "text", True, None),
    SpecColumn("session_id", "character varying(255)", True, None),
    SpecColumn("created_at", "timestamp with time zone", True, "now()"),
)


TABLES: tuple[SpecTable, ...] = (
    # -- 1. users ---------------------------------------------------------------------------
    SpecTable(
        name="users",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("email", "character varying(255)", False, None),
            SpecColumn("password_hash", "character varying(255)", False, None),
            SpecColumn("first_name", "character varying(50)", True, None),
            SpecColumn("last_name", "character varying(50)", True, None),
            SpecColumn("role", "character varying(20)", False, "'public'"),
            SpecColumn("is_active", "boolean", False, "true"),
            SpecColumn("is_verified", "boolean", False, "false"),
            SpecColumn("is_premium", "boolean", False, "false"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
            SpecColumn("updated_at", "timestamp with time zone", True, "now()"),
            SpecColumn("last_login", "timestamp with time zone", True, None),
            SpecColumn("login_count", "integer", True, "0"),
            SpecColumn("preferences", "jsonb", True, "'{}'"),
            SpecColumn("timezone", "character varying(50)", True, "'UTC'"),
            SpecColumn("language", "character varying(10)", True, "'en'"),
        ),
        primary_key=("id",),
        uniques=(("email",),),
        checks=(),
        foreign_keys=(),
        indexes=(
            SpecIndex("idx_users_email", ("email",)),
            SpecIndex("idx_users_role", ("role",)),
            SpecIndex("idx_users_active", ("is_active",)),
            SpecIndex("idx_users_created_at", ("created_at",)),
            SpecIndex(
                "idx_users_admin_overview",
                ("id", "email", "role", "is_active", "created_at", "last_login"),
            ),
        ),
    ),
    # -- 2. cryptocurrencies ----------------------------------------------------------------
    SpecTable(
        name="cryptocurrencies",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("symbol", "character varying(10)", False, None),
            SpecColumn("name", "character varying(100)", False, None),
            SpecColumn("coingecko_id", "character varying(50)", True, None),
            SpecColumn("market_cap_rank", "integer", True, None),
            SpecColumn("current_price", "numeric(20,8)", True, None),
            SpecColumn("market_cap", "numeric(30,2)", True, None),
            SpecColumn("total_volume", "numeric(30,2)", True, None),
            SpecColumn("circulating_supply", "numeric(30,2)", True, None),
            SpecColumn("total_supply", "numeric(30,2)", True, None),
            SpecColumn("max_supply", "numeric(30,2)", True, None),
            SpecColumn("price_change_percentage_24h", "numeric(10,4)", True, None),
            SpecColumn("price_change_percentage_7d", "numeric(10,4)", True, None),
            SpecColumn("price_change_percentage_30d", "numeric(10,4)", True, None),
            SpecColumn("description", "text", True, None),
            SpecColumn("website_url", "character varying(255)", True, None),
            SpecColumn("blockchain_site", "character varying(255)", True, None),
            SpecColumn("whitepaper_url", "character varying(255)", True, None),
            SpecColumn("twitter_username", "character varying(100)", True, None),
            SpecColumn("telegram_channel", "character varying(100)", True, None),
            SpecColumn("subreddit_url", "character varying(255)", True, None),
            SpecColumn("github_repos", "jsonb", True, None),
            SpecColumn("sectors", "jsonb", True, None),
            SpecColumn("contract_address", "character varying(100)", True, None),
            SpecColumn("decimals", "integer", True, None),
            SpecColumn("is_active", "boolean", False, "true"),
            SpecColumn("is_supported", "boolean", False, "true"),
            SpecColumn("tier", "integer", True, "2"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
            SpecColumn("updated_at", "timestamp with time zone", True, "now()"),
            SpecColumn("last_data_update", "timestamp with time zone", True, None),
        ),
        primary_key=("id",),
        uniques=(("symbol",), ("coingecko_id",)),
        checks=(),
        foreign_keys=(),
        indexes=(),
    ),
    # -- 3. price_data ----------------------------------------------------------------------
    SpecTable(
        name="price_data",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("crypto_id", "integer", False, None),
            SpecColumn("timestamp", "timestamp with time zone", False, None),
            SpecColumn("open_price", "numeric(20,8)", False, None),
            SpecColumn("high_price", "numeric(20,8)", False, None),
            SpecColumn("low_price", "numeric(20,8)", False, None),
            SpecColumn("close_price", "numeric(20,8)", False, None),
            SpecColumn("volume", "numeric(30,8)", True, None),
            SpecColumn("market_cap", "numeric(30,2)", True, None),
            SpecColumn("technical_indicators", "jsonb", True, "'{}'"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(("crypto_id", "timestamp"),),  # CONSTRAINT unique_crypto_timestamp
        checks=(),
        foreign_keys=(SpecForeignKey(("crypto_id",), "cryptocurrencies", ("id",), "CASCADE"),),
        indexes=(
            SpecIndex("idx_price_data_crypto_id", ("crypto_id",)),
            SpecIndex("idx_price_data_timestamp", ("timestamp DESC",)),
            SpecIndex("idx_price_data_crypto_timestamp", ("crypto_id", "timestamp DESC")),
        ),
    ),
    # -- 4. Layer 1: macro market analysis --------------------------------------------------
    SpecTable(
        name="market_regime_analysis",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("regime", "character varying(10)", False, None),
            SpecColumn("confidence_score", "numeric(5,4)", False, None),
            SpecColumn("indicators", "jsonb", True, "'{}'"),
            SpecColumn("analysis_data", "jsonb", True, "'{}'"),
            SpecColumn("analysis_time", "timestamp with time zone", True, "now()"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
            SpecColumn("updated_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(),
        checks=(
            "regime IN ('bull', 'bear', 'sideways')",
            "confidence_score >= 0 AND confidence_score <= 1",
        ),
        foreign_keys=(),
        indexes=(SpecIndex("idx_market_regime_time", ("analysis_time DESC",)),),
    ),
    SpecTable(
        name="market_sentiment_data",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("fear_greed_index", "numeric(5,2)", True, None),
            SpecColumn("social_sentiment", "numeric(5,4)", True, None),
            SpecColumn("sentiment_sources", "jsonb", True, "'{}'"),
            SpecColumn("analysis_metrics", "jsonb", True, "'{}'"),
            SpecColumn("timestamp", "timestamp with time zone", True, "now()"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(),
        checks=(),
        foreign_keys=(),
        indexes=(SpecIndex("idx_sentiment_timestamp", ("timestamp DESC",)),),
    ),
    SpecTable(
        name="dominance_data",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("btc_dominance", "numeric(5,2)", False, None),
            SpecColumn("eth_dominance", "numeric(5,2)", False, None),
            SpecColumn("alt_dominance", "numeric(5,2)", False, None),
            SpecColumn("trend_analysis", "jsonb", True, "'{}'"),
            SpecColumn("timestamp", "timestamp with time zone", True, "now()"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(),
        checks=(),
        foreign_keys=(),
        indexes=(SpecIndex("idx_dominance_timestamp", ("timestamp DESC",)),),
    ),
    SpecTable(
        name="macro_indicators",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("indicator_name", "character varying(50)", False, None),
            SpecColumn("value", "numeric(15,8)", False, None),
            SpecColumn("timeframe", "character varying(20)", False, None),
            SpecColumn("metadata", "jsonb", True, "'{}'"),
            SpecColumn("timestamp", "timestamp with time zone", True, "now()"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(),
        checks=(),
        foreign_keys=(),
        indexes=(),
    ),
    # -- 5. Layer 2: sector analysis --------------------------------------------------------
    SpecTable(
        name="crypto_sectors",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("name", "character varying(50)", False, None),
            SpecColumn("description", "text", True, None),
            SpecColumn("characteristics", "jsonb", True, "'{}'"),
            SpecColumn("is_active", "boolean", True, "true"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
            SpecColumn("updated_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(("name",),),
        checks=(),
        foreign_keys=(),
        indexes=(),
    ),
    SpecTable(
        name="sector_performance",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("sector_id", "integer", False, None),
            SpecColumn("performance_24h", "numeric(8,4)", True, None),
            SpecColumn("performance_7d", "numeric(8,4)", True, None),
            SpecColumn("performance_30d", "numeric(8,4)", True, None),
            SpecColumn("volume_change", "numeric(8,4)", True, None),
            SpecColumn("market_cap_change", "numeric(8,4)", True, None),
            SpecColumn("performance_metrics", "jsonb", True, "'{}'"),
            SpecColumn("analysis_time", "timestamp with time zone", True, "now()"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(),
        checks=(),
        foreign_keys=(SpecForeignKey(("sector_id",), "crypto_sectors", ("id",), "CASCADE"),),
        indexes=(SpecIndex("idx_sector_perf_sector_time", ("sector_id", "analysis_time DESC")),),
    ),
    SpecTable(
        name="sector_rotation_analysis",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("from_sector_id", "integer", True, None),
            SpecColumn("to_sector_id", "integer", True, None),
            SpecColumn("rotation_strength", "numeric(5,4)", True, None),
            SpecColumn("confidence_score", "numeric(5,4)", True, None),
            SpecColumn("rotation_indicators", "jsonb", True, "'{}'"),
            SpecColumn("analysis_time", "timestamp with time zone", True, "now()"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(),
        checks=(
            "rotation_strength >= 0 AND rotation_strength <= 1",
            "confidence_score >= 0 AND confidence_score <= 1",
        ),
        foreign_keys=(
            SpecForeignKey(("from_sector_id",), "crypto_sectors", ("id",), "CASCADE"),
            SpecForeignKey(("to_sector_id",), "crypto_sectors", ("id",), "CASCADE"),
        ),
        indexes=(SpecIndex("idx_sector_rotation_time", ("analysis_time DESC",)),),
    ),
    SpecTable(
        name="crypto_sector_mapping",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("crypto_id", "integer", False, None),
            SpecColumn("sector_id", "integer", False, None),
            SpecColumn("allocation_percentage", "numeric(5,2)", True, "100"),
            SpecColumn("is_primary_sector", "boolean", True, "true"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
            SpecColumn("updated_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(("crypto_id", "sector_id"),),
        checks=("allocation_percentage > 0 AND allocation_percentage <= 100",),
        foreign_keys=(
            SpecForeignKey(("crypto_id",), "cryptocurrencies", ("id",), "CASCADE"),
            SpecForeignKey(("sector_id",), "crypto_sectors", ("id",), "CASCADE"),
        ),
        indexes=(
            SpecIndex("idx_crypto_sector_crypto", ("crypto_id",)),
            SpecIndex("idx_crypto_sector_sector", ("sector_id",)),
        ),
    ),
    # -- 6. Layer 3: asset selection --------------------------------------------------------
    SpecTable(
        name="watchlists",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("name", "character varying(100)", False, None),
            SpecColumn("description", "text", True, None),
            SpecColumn("user_id", "integer", True, None),
            SpecColumn("type", "character varying(20)", False, "'personal'"),
            SpecColumn("is_active", "boolean", False, "true"),
            SpecColumn("is_public", "boolean", False, "false"),
            SpecColumn("max_assets", "integer", True, "25"),
            SpecColumn("sort_order", "integer", True, "0"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
            SpecColumn("updated_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(),
        checks=(
            "check_watchlist_type: type IN ('default', 'personal')",
            "check_default_watchlist_user: (type = 'default' AND user_id IS NULL) OR "
            "(type = 'personal' AND user_id IS NOT NULL)",
        ),
        foreign_keys=(SpecForeignKey(("user_id",), "users", ("id",), "CASCADE"),),
        indexes=(
            SpecIndex("idx_watchlists_user_id", ("user_id",)),
            SpecIndex("idx_watchlists_type", ("type",)),
            SpecIndex("idx_watchlists_active", ("is_active",)),
            SpecIndex("idx_watchlist_user", ("user_id", "type")),
            SpecIndex(
                "idx_watchlists_active_updated", ("id", "updated_at"), where="is_active = true"
            ),
            SpecIndex("idx_watchlists_default", ("type",), unique=True, where="type = 'default'"),
        ),
    ),
    SpecTable(
        name="watchlist_assets",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("watchlist_id", "integer", False, None),
            SpecColumn("crypto_id", "integer", False, None),
            SpecColumn("position", "integer", False, "1"),
            SpecColumn("weight", "numeric(5,4)", True, "0.0"),
            SpecColumn("target_allocation", "numeric(5,4)", True, None),
            SpecColumn("notes", "text", True, None),
            SpecColumn("is_active", "boolean", False, "true"),
            SpecColumn("added_at", "timestamp with time zone", True, "now()"),
            SpecColumn("added_by", "integer", True, None),
            SpecColumn("last_modified_by", "integer", True, None),
        ),
        primary_key=("id",),
        uniques=(("watchlist_id", "crypto_id"), ("watchlist_id", "position")),
        checks=(),
        foreign_keys=(
            SpecForeignKey(("watchlist_id",), "watchlists", ("id",), "CASCADE"),
            SpecForeignKey(("crypto_id",), "cryptocurrencies", ("id",), "CASCADE"),
            SpecForeignKey(("added_by",), "users", ("id",), "NO ACTION"),
            SpecForeignKey(("last_modified_by",), "users", ("id",), "NO ACTION"),
        ),
        indexes=(
            SpecIndex("idx_watchlist_assets_watchlist", ("watchlist_id",)),
            SpecIndex("idx_watchlist_assets_crypto", ("crypto_id",)),
            SpecIndex("idx_watchlist_assets_position", ("watchlist_id", "position")),
            SpecIndex("idx_watchlist_assets_active", ("is_active",)),
            SpecIndex("idx_watchlist_assets_composite", ("watchlist_id", "is_active", "position")),
        ),
    ),
    SpecTable(
        name="ai_suggestions",
        columns=_AI_SUGGESTIONS_COLUMNS,
        primary_key=("id",),
        uniques=(),
        checks=_AI_SUGGESTIONS_CHECKS,
        foreign_keys=(
            SpecForeignKey(("watchlist_id",), "watchlists", ("id",), "CASCADE"),
            SpecForeignKey(("crypto_id",), "cryptocurrencies", ("id",), "NO ACTION"),
            SpecForeignKey(("reviewed_by",), "users", ("id",), "NO ACTION"),
        ),
        indexes=(
            SpecIndex("idx_ai_suggestions_watchlist_id", ("watchlist_id",)),
            SpecIndex("idx_ai_suggestions_crypto_id", ("crypto_id",)),
            SpecIndex("idx_ai_suggestions_status", ("status",)),
            SpecIndex("idx_ai_suggestions_layer", ("ai_layer",)),
            SpecIndex("idx_ai_suggestions_confidence", ("confidence_score DESC",)),
            SpecIndex("idx_ai_suggestions_created_at", ("created_at DESC",)),
            SpecIndex("idx_ai_suggestions_status_created", ("status", "created_at DESC")),
            SpecIndex("idx_ai_suggestions_crypto", ("crypto_id",)),
            SpecIndex(
                "idx_ai_suggestions_composite", ("status", "ai_layer", "confidence_score DESC")
            ),
        ),
    ),
    # -- 7. Layer 4: micro timing -----------------------------------------------------------
    SpecTable(
        name="trading_signals",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("crypto_id", "integer", False, None),
            SpecColumn("signal_type", "character varying(10)", False, None),
            SpecColumn("entry_price", "numeric(20,8)", False, None),
            SpecColumn("target_price", "numeric(20,8)", False, None),
            SpecColumn("stop_loss", "numeric(20,8)", False, None),
            SpecColumn("confidence_score", "numeric(5,4)", False, None),
            SpecColumn("risk_level", "character varying(10)", False, None),
            SpecColumn("risk_reward_ratio", "numeric(6,2)", True, None),
            SpecColumn("time_horizon_hours", "integer", True, "24"),
            SpecColumn("ai_analysis", "jsonb", True, "'{}'"),
            SpecColumn("market_context", "jsonb", True, "'{}'"),
            SpecColumn("status", "character varying(20)", True, "'active'"),
            SpecColumn("generated_at", "timestamp with time zone", True, "now()"),
            SpecColumn("expires_at", "timestamp with time zone", True, "now() + 7 days"),
            SpecColumn("updated_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(),
        checks=(
            "signal_type IN ('long', 'short')",
            "confidence_score >= 0 AND confidence_score <= 1",
            "risk_level IN ('low', 'medium', 'high', 'extreme')",
            "risk_reward_ratio > 0",
            "status IN ('active', 'executed', 'expired', 'cancelled')",
        ),
        foreign_keys=(SpecForeignKey(("crypto_id",), "cryptocurrencies", ("id",), "CASCADE"),),
        indexes=(
            SpecIndex("idx_trading_signals_status", ("crypto_id", "status", "generated_at DESC")),
            SpecIndex("idx_trading_signals_generated", ("generated_at DESC",)),
        ),
    ),
    SpecTable(
        name="signal_executions",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("signal_id", "integer", False, None),
            SpecColumn("user_id", "integer", False, None),
            SpecColumn("execution_price", "numeric(20,8)", True, None),
            SpecColumn("position_size", "numeric(30,8)", True, None),
            SpecColumn("portfolio_percentage", "numeric(5,2)", True, None),
            SpecColumn("execution_type", "character varying(20)", True, "'manual'"),
            SpecColumn("status", "character varying(20)", True, "'pending'"),
            SpecColumn("execution_details", "jsonb", True, "'{}'"),
            SpecColumn("executed_at", "timestamp with time zone", True, "now()"),
            SpecColumn("updated_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(),
        checks=(
            "execution_type IN ('manual', 'automatic')",
            "status IN ('pending', 'filled', 'partially_filled', 'cancelled')",
        ),
        foreign_keys=(
            SpecForeignKey(("signal_id",), "trading_signals", ("id",), "CASCADE"),
            SpecForeignKey(("user_id",), "users", ("id",), "CASCADE"),
        ),
        indexes=(
            SpecIndex("idx_signal_executions_user", ("user_id", "executed_at DESC")),
            SpecIndex("idx_signal_executions_signal", ("signal_id",)),
        ),
    ),
    SpecTable(
        name="risk_management",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("user_id", "integer", False, None),
            SpecColumn("max_position_size", "numeric(30,8)", True, "1000"),
            SpecColumn("max_portfolio_risk", "numeric(5,4)", True, "0.02"),
            SpecColumn("risk_rules", "jsonb", True, "'{}'"),
            SpecColumn("current_exposure", "jsonb", True, "'{}'"),
            SpecColumn("risk_metrics", "jsonb", True, "'{}'"),
            SpecColumn("last_calculated", "timestamp with time zone", True, "now()"),
            SpecColumn("updated_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(("user_id",),),
        checks=("max_portfolio_risk >= 0 AND max_portfolio_risk <= 1",),
        foreign_keys=(SpecForeignKey(("user_id",), "users", ("id",), "CASCADE"),),
        indexes=(),
    ),
    # -- 8. predictions ---------------------------------------------------------------------
    SpecTable(
        name="predictions",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("crypto_id", "integer", False, None),
            SpecColumn("watchlist_id", "integer", True, None),
            SpecColumn("user_id", "integer", True, None),
            SpecColumn("model_name", "character varying(50)", False, None),
            SpecColumn("model_version", "character varying(20)", False, None),
            SpecColumn("layer_source", "integer", True, "3"),
            SpecColumn("prediction_type", "character varying(20)", True, "'price'"),
            SpecColumn("predicted_price", "numeric(20,8)", False, None),
            SpecColumn("predicted_value", "jsonb", True, "'{}'"),
            SpecColumn("confidence_score", "numeric(5,4)", False, None),
            SpecColumn("prediction_horizon", "integer", False, None),
            SpecColumn("target_datetime", "timestamp with time zone", False, None),
            SpecColumn("features_used", "jsonb", True, None),
            SpecColumn("model_parameters", "jsonb", True, None),
            SpecColumn("input_price", "numeric(20,8)", False, None),
            SpecColumn("input_features", "jsonb", True, None),
            SpecColumn("context_data", "jsonb", True, None),
            SpecColumn("actual_price", "numeric(20,8)", True, None),
            SpecColumn("accuracy_percentage", "numeric(5,2)", True, None),
            SpecColumn("absolute_error", "numeric(20,8)", True, None),
            SpecColumn("squared_error", "numeric(30,8)", True, None),
            SpecColumn("is_realized", "boolean", False, "false"),
            SpecColumn("is_accurate", "boolean", True, None),
            SpecColumn("accuracy_threshold", "numeric(5,2)", True, "5.0"),
            SpecColumn("training_data_end", "timestamp with time zone", True, None),
            SpecColumn("market_conditions", "character varying(20)", True, None),
            SpecColumn("volatility_level", "character varying(10)", True, None),
            SpecColumn("model_training_time", "numeric(10,2)", True, None),
            SpecColumn("prediction_time", "numeric(10,6)", True, None),
            SpecColumn("notes", "text", True, None),
            SpecColumn("debug_info", "jsonb", True, None),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
            SpecColumn("updated_at", "timestamp with time zone", True, "now()"),
            SpecColumn("evaluated_at", "timestamp with time zone", True, None),
        ),
        primary_key=("id",),
        uniques=(),
        checks=(),
        foreign_keys=(
            SpecForeignKey(("crypto_id",), "cryptocurrencies", ("id",), "CASCADE"),
            SpecForeignKey(("watchlist_id",), "watchlists", ("id",), "SET NULL"),
            SpecForeignKey(("user_id",), "users", ("id",), "SET NULL"),
        ),
        indexes=(
            SpecIndex(
                "idx_predictions_crypto_layer", ("crypto_id", "layer_source", "created_at DESC")
            ),
            SpecIndex("idx_predictions_layer_source", ("layer_source", "created_at DESC")),
            SpecIndex("idx_predictions_context_data", ("context_data",), using="gin"),
            SpecIndex("idx_predictions_prediction_type", ("prediction_type",)),
            SpecIndex("idx_predictions_layer_type", ("layer_source", "prediction_type")),
            SpecIndex("idx_predictions_crypto_type", ("crypto_id", "prediction_type")),
            SpecIndex("idx_predictions_type_time", ("prediction_type", "created_at DESC")),
            SpecIndex("idx_predictions_composite", ("crypto_id", "is_realized", "created_at DESC")),
        ),
    ),
    # -- System management ------------------------------------------------------------------
    SpecTable(
        name="ai_models",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("name", "character varying(100)", False, None),
            SpecColumn("version", "character varying(50)", False, None),
            SpecColumn("model_type", "character varying(20)", False, None),
            SpecColumn("status", "character varying(20)", True, "'inactive'"),
            SpecColumn("configuration", "jsonb", True, "'{}'"),
            SpecColumn("performance_metrics", "jsonb", True, "'{}'"),
            SpecColumn("last_trained", "timestamp with time zone", True, None),
            SpecColumn("last_prediction", "timestamp with time zone", True, None),
            SpecColumn("health_status", "jsonb", True, "'{}'"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
            SpecColumn("updated_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(("name",),),
        checks=(
            "model_type IN ('macro', 'sector', 'asset', 'timing')",
            "status IN ('active', 'training', 'inactive', 'error')",
        ),
        foreign_keys=(),
        indexes=(SpecIndex("idx_ai_models_type_status", ("model_type", "status")),),
    ),
    SpecTable(
        name="system_health",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("check_time", "timestamp with time zone", True, "now()"),
            SpecColumn("api_status", "jsonb", True, "'{}'"),
            SpecColumn("database_status", "jsonb", True, "'{}'"),
            SpecColumn("ml_models_status", "jsonb", True, "'{}'"),
            SpecColumn("data_pipeline_status", "jsonb", True, "'{}'"),
            SpecColumn("overall_health_score", "numeric(5,2)", True, None),
            SpecColumn("performance_metrics", "jsonb", True, "'{}'"),
            SpecColumn("error_logs", "jsonb", True, "'[]'"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(),
        checks=("overall_health_score >= 0 AND overall_health_score <= 100",),
        foreign_keys=(),
        indexes=(SpecIndex("idx_system_health_time", ("check_time DESC",)),),
    ),
    SpecTable(
        name="user_sessions",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("user_id", "integer", False, None),
            SpecColumn("session_token", "character varying(255)", False, None),
            SpecColumn("refresh_token", "character varying(255)", True, None),
            SpecColumn("device_info", "jsonb", True, None),
            SpecColumn("ip_address", "inet", True, None),
            SpecColumn("is_active", "boolean", False, "true"),
            SpecColumn("expires_at", "timestamp with time zone", False, None),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
            SpecColumn("last_used_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(("session_token",),),
        checks=(),
        foreign_keys=(SpecForeignKey(("user_id",), "users", ("id",), "CASCADE"),),
        indexes=(
            SpecIndex("idx_sessions_user_id", ("user_id",)),
            SpecIndex("idx_sessions_token", ("session_token",)),
            SpecIndex("idx_sessions_active", ("is_active", "expires_at")),
        ),
    ),
    SpecTable(
        name="user_activities",
        columns=_USER_ACTIVITIES_COLUMNS,
        primary_key=("id",),
        uniques=(),
        checks=(),
        foreign_keys=(SpecForeignKey(("user_id",), "users", ("id",), "SET NULL"),),
        indexes=(
            SpecIndex("idx_activity_log_user_id", ("user_id",)),
            SpecIndex("idx_activity_log_type", ("activity_type",)),
            SpecIndex("idx_activity_log_created_at", ("created_at DESC",)),
            SpecIndex("idx_activity_log_entity", ("entity_type", "entity_id")),
        ),
    ),
    SpecTable(
        name="notifications",
        columns=(
            SpecColumn("id", "integer", False, "serial"),
            SpecColumn("user_id", "integer", False, None),
            SpecColumn("notification_type", "character varying(20)", False, None),
            SpecColumn("title", "character varying(200)", False, None),
            SpecColumn("message", "text", False, None),
            SpecColumn("data", "jsonb", True, "'{}'"),
            SpecColumn("status", "character varying(20)", True, "'unread'"),
            SpecColumn("priority", "character varying(20)", True, "'normal'"),
            SpecColumn("scheduled_for", "timestamp with time zone", True, "now()"),
            SpecColumn("sent_at", "timestamp with time zone", True, None),
            SpecColumn("read_at", "timestamp with time zone", True, None),
            SpecColumn("expires_at", "timestamp with time zone", True, "now() + 30 days"),
            SpecColumn("created_at", "timestamp with time zone", True, "now()"),
        ),
        primary_key=("id",),
        uniques=(),
        checks=(
            "notification_type IN ('signal', 'alert', 'system', 'educational')",
            "status IN ('unread', 'read', 'dismissed')",
            "priority IN ('low', 'normal', 'high', 'urgent')",
        ),
        foreign_keys=(SpecForeignKey(("user_id",), "users", ("id",), "CASCADE"),),
        indexes=(
            SpecIndex("idx_notifications_user_status", ("user_id", "status", "scheduled_for DESC")),
        ),
    ),
    # -- Archival tables: CREATE TABLE x (LIKE source INCLUDING ALL) ------------------------
    SpecTable(
        name="user_activities_archive",
        columns=_USER_ACTIVITIES_COLUMNS,
        primary_key=("id",),
        uniques=(),
        checks=(),
        foreign_keys=(),
        indexes=(),
        like="user_activities",
    ),
    SpecTable(
        name="ai_suggestions_archive",
        columns=_AI_SUGGESTIONS_COLUMNS,
        primary_key=("id",),
        uniques=(),
        checks=_AI_SUGGESTIONS_CHECKS,
        foreign_keys=(),
        indexes=(),
        like="ai_suggestions",
    ),
)


VIEWS: tuple[str, ...] = (
    "v_active_predictions",
    "v_watchlist_summary",
    "v_active_signals",
    "v_ai_performance",
    "v_users_overview",
)


FUNCTIONS: tuple[str, ...] = (
    "update_updated_at_column",
    "create_default_watchlist",
    "bulk_update_watchlist_assets",
    "get_user_ai_context",
    "archive_old_data",
)


# (trigger_name, table_name); all are BEFORE UPDATE ... FOR EACH ROW EXECUTE FUNCTION
# update_updated_at_column().  watchlist_assets has no updated_at column (see module docstring).
TRIGGERS: tuple[tuple[str, str], ...] = (
    ("update_users_updated_at", "users"),
    ("update_cryptocurrencies_updated_at", "cryptocurrencies"),
    ("update_crypto_sectors_updated_at", "crypto_sectors"),
    ("update_market_regime_updated_at", "market_regime_analysis"),
    ("update_watchlists_updated_at", "watchlists"),
    ("update_watchlist_assets_updated_at", "watchlist_assets"),
    ("update_crypto_sector_mapping_updated_at", "crypto_sector_mapping"),
    ("update_trading_signals_updated_at", "trading_signals"),
    ("update_signal_executions_updated_at", "signal_executions"),
    ("update_risk_management_updated_at", "risk_management"),
    ("update_predictions_updated_at", "predictions"),
)


SEED_SECTORS: tuple[str, ...] = (
    "Bitcoin",
    "Ethereum & Smart Contracts",
    "DeFi",
    "Layer 1 Blockchains",
    "Layer 2 Solutions",
    "NFTs & Gaming",
    "Infrastructure",
    "Meme Coins",
    "Privacy Coins",
    "Stablecoins",
)
