"""Views, functions, updated_at triggers and seed rows of the spec, with its defects fixed.

Each fix is listed in docs/schema-notes.md. PostgreSQL gets everything; SQLite gets the
updated_at triggers, the views (in its own SQL dialect) and the seed rows, but no stored
functions, which SQLite does not have.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The spec's trigger list, plus ai_models (it has updated_at but no trigger in the spec).
# watchlist_assets gained the updated_at column its spec trigger refers to.
TABLES_WITH_UPDATED_AT = (
    "users",
    "cryptocurrencies",
    "crypto_sectors",
    "market_regime_analysis",
    "watchlists",
    "watchlist_assets",
    "crypto_sector_mapping",
    "trading_signals",
    "signal_executions",
    "risk_management",
    "predictions",
    "ai_models",
)

# The spec's trigger names, which do not always follow the table name.
TRIGGER_NAMES = {
    "market_regime_analysis": "update_market_regime_updated_at",
}

SEED_SECTORS = """
INSERT INTO crypto_sectors (name, description, characteristics) VALUES
('Bitcoin', 'Store of value and digital gold', '{"type": "base_layer", "maturity": "high"}'),
('Ethereum & Smart Contracts', 'Smart contract platforms', '{"type": "platform", "maturity": "high"}'),
('DeFi', 'Decentralized Finance protocols', '{"type": "application", "maturity": "medium"}'),
('Layer 1 Blockchains', 'Alternative Layer 1 blockchains', '{"type": "platform", "maturity": "medium"}'),
('Layer 2 Solutions', 'Scaling solutions', '{"type": "infrastructure", "maturity": "medium"}'),
('NFTs & Gaming', 'Non-fungible tokens and gaming', '{"type": "application", "maturity": "medium"}'),
('Infrastructure', 'Blockchain infrastructure', '{"type": "infrastructure", "maturity": "medium"}'),
('Meme Coins', 'Community-driven tokens', '{"type": "speculative", "maturity": "low"}'),
('Privacy Coins', 'Privacy-focused cryptocurrencies', '{"type": "utility", "maturity": "medium"}'),
('Stablecoins', 'Price-stable cryptocurrencies', '{"type": "utility", "maturity": "high"}')
ON CONFLICT (name) DO NOTHING
"""

# The spec seeds two watchlists of types its own CHECK forbids ('admin_tier1/2') and which its
# unique index would allow only one of as 'default'. One default watchlist, admin-managed,
# carries both tiers; a coin's tier lives on cryptocurrencies.tier.
DEFAULT_WATCHLIST_NAME = "Admin Default"
SEED_DEFAULT_WATCHLIST = f"""
INSERT INTO watchlists (name, type, description)
SELECT '{DEFAULT_WATCHLIST_NAME}', 'default',
       'Admin-curated default watchlist: high-confidence (tier 1) and medium-confidence '
       || '(tier 2) selections; the tier is cryptocurrencies.tier'
WHERE NOT EXISTS (SELECT 1 FROM watchlists WHERE type = 'default')
"""

SEED_SECTOR_NAMES = (
    "'Bitcoin', 'Ethereum & Smart Contracts', 'DeFi', 'Layer 1 Blockchains', "
    "'Layer 2 Solutions', 'NFTs & Gaming', 'Infrastructure', 'Meme Coins', "
    "'Privacy Coins', 'Stablecoins'"
)

V_ACTIVE_PREDICTIONS = """
CREATE VIEW v_active_predictions AS
SELECT
    p.*,
    c.symbol,
    c.name AS crypto_name,
    c.current_price,
    u.email AS user_email
FROM predictions p
JOIN cryptocurrencies c ON p.crypto_id = c.id
LEFT JOIN users u ON p.user_id = u.id
WHERE p.is_realized = false
ORDER BY p.created_at DESC
"""

_WATCHLIST_SUMMARY = """
CREATE VIEW v_watchlist_summary AS
SELECT
    w.id,
    w.name,
    w.type,
    w.user_id,
    u.email AS user_email,
    COUNT(wa.id) AS asset_count,
    w.created_at,
    w.updated_at,
    AVG(wa.weight) AS avg_asset_weight,
    {symbols} AS asset_symbols
FROM watchlists w
LEFT JOIN users u ON w.user_id = u.id
LEFT JOIN watchlist_assets wa ON w.id = wa.watchlist_id AND wa.is_active = true
LEFT JOIN cryptocurrencies c ON wa.crypto_id = c.id
GROUP BY w.id, w.name, w.type, w.user_id, u.email, w.created_at, w.updated_at
"""
V_WATCHLIST_SUMMARY_PG = _WATCHLIST_SUMMARY.format(
    symbols="STRING_AGG(c.symbol, ', ' ORDER BY wa.position)"
)
# SQLite before 3.44 has no ORDER BY inside an aggregate: order in a subquery instead.
V_WATCHLIST_SUMMARY_SQLITE = _WATCHLIST_SUMMARY.format(
    symbols="""(SELECT group_concat(symbol, ', ') FROM (
        SELECT c2.symbol FROM watchlist_assets wa2
        JOIN cryptocurrencies c2 ON c2.id = wa2.crypto_id
        WHERE wa2.watchlist_id = w.id AND wa2.is_active = true
        ORDER BY wa2.position))"""
)

# The spec computes both percentages as if every signal were long; for a short the target is
# below the entry and the stop above it, so the signs flip. Multiplying by 100.0 first keeps
# SQLite, which stores whole prices as integers, out of integer division.
_ACTIVE_SIGNALS = """
CREATE VIEW v_active_signals AS
SELECT
    ts.*,
    c.symbol,
    c.name AS crypto_name,
    c.current_price,
    CASE WHEN ts.signal_type = 'short'
         THEN (ts.entry_price - ts.target_price) * 100.0 / ts.entry_price
         ELSE (ts.target_price - ts.entry_price) * 100.0 / ts.entry_price
    END AS potential_return_pct,
    CASE WHEN ts.signal_type = 'short'
         THEN (ts.stop_loss - ts.entry_price) * 100.0 / ts.entry_price
         ELSE (ts.entry_price - ts.stop_loss) * 100.0 / ts.entry_price
    END AS max_loss_pct
FROM trading_signals ts
JOIN cryptocurrencies c ON ts.crypto_id = c.id
WHERE ts.status = 'active' AND ts.expires_at > {now}
ORDER BY ts.confidence_score DESC, ts.generated_at DESC
"""

_AI_PERFORMANCE = """
CREATE VIEW v_ai_performance AS
SELECT
    ai_layer,
    COUNT(*) AS total_suggestions,
    COUNT(CASE WHEN status = 'approved' THEN 1 END) AS approved_count,
    COUNT(CASE WHEN status = 'implemented' THEN 1 END) AS implemented_count,
    AVG(confidence_score) AS avg_confidence,
    AVG(CASE WHEN actual_return IS NOT NULL THEN actual_return END) AS avg_actual_return,
    AVG(success_score) AS avg_success_score,
    COUNT(CASE WHEN success_score > 0.7 THEN 1 END) AS high_success_count
FROM ai_suggestions
WHERE created_at >= {thirty_days_ago}
GROUP BY ai_layer
ORDER BY ai_layer
"""

# The spec joins users -> watchlists -> assets -> predictions in one FROM, so every count and
# the average are multiplied by the fan-out of the other joins. Each figure gets its own
# correlated subquery instead.
V_USERS_OVERVIEW = """
CREATE VIEW v_users_overview AS
SELECT
    u.id,
    u.email,
    u.first_name,
    u.last_name,
    u.role,
    u.is_active,
    u.is_premium,
    u.created_at,
    u.last_login,
    u.login_count,
    (SELECT COUNT(*) FROM watchlists w
     WHERE w.user_id = u.id AND w.type = 'personal') AS personal_watchlists_count,
    (SELECT COUNT(*) FROM watchlist_assets wa
     JOIN watchlists w ON w.id = wa.watchlist_id
     WHERE w.user_id = u.id AND w.type = 'personal' AND wa.is_active = true) AS total_assets_count,
    (SELECT AVG(p.accuracy_percentage) FROM predictions p
     WHERE p.user_id = u.id AND p.is_realized = true) AS avg_prediction_accuracy
FROM users u
WHERE u.role = 'public'
"""

VIEWS_PG = (
    V_ACTIVE_PREDICTIONS,
    V_WATCHLIST_SUMMARY_PG,
    _ACTIVE_SIGNALS.format(now="NOW()"),
    _AI_PERFORMANCE.format(thirty_days_ago="NOW() - INTERVAL '30 days'"),
    V_USERS_OVERVIEW,
)
# SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC, which compares
# correctly as text against datetime('now').
VIEWS_SQLITE = (
    V_ACTIVE_PREDICTIONS,
    V_WATCHLIST_SUMMARY_SQLITE,
    _ACTIVE_SIGNALS.format(now="datetime('now')"),
    _AI_PERFORMANCE.format(thirty_days_ago="datetime('now', '-30 days')"),
    V_USERS_OVERVIEW,
)
VIEW_NAMES = (
    "v_users_overview",
    "v_ai_performance",
    "v_active_signals",
    "v_watchlist_summary",
    "v_active_predictions",
)

UPDATE_UPDATED_AT_FUNCTION = """
CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""

CREATE_DEFAULT_WATCHLIST = """
CREATE OR REPLACE FUNCTION create_default_watchlist(
    p_name VARCHAR(100),
    p_description TEXT DEFAULT NULL
) RETURNS INTEGER AS $$
DECLARE
    new_watchlist_id INTEGER;
BEGIN
    INSERT INTO watchlists (name, description, type, user_id)
    VALUES (p_name, p_description, 'default', NULL)
    RETURNING id INTO new_watchlist_id;

    INSERT INTO user_activities (activity_type, entity_type, entity_id, action, details)
    VALUES ('admin_action', 'watchlist', new_watchlist_id, 'create',
            jsonb_build_object('type', 'default', 'name', p_name));

    RETURN new_watchlist_id;
END;
$$ LANGUAGE plpgsql
"""

# Fixed from the spec: one set-based upsert instead of a row loop; positions may be swapped
# (the (watchlist_id, position) constraint is deferred to commit); new rows record added_by;
# the watchlist's max_assets is enforced.
BULK_UPDATE_WATCHLIST_ASSETS = """
CREATE OR REPLACE FUNCTION bulk_update_watchlist_assets(
    p_watchlist_id INTEGER,
    p_asset_updates JSONB,
    p_admin_user_id INTEGER
) RETURNS VOID AS $$
DECLARE
    asset_limit INTEGER;
    active_assets INTEGER;
BEGIN
    INSERT INTO watchlist_assets
        (watchlist_id, crypto_id, position, weight, added_by, last_modified_by)
    SELECT p_watchlist_id,
           (item->>'crypto_id')::INTEGER,
           (item->>'position')::INTEGER,
           (item->>'weight')::NUMERIC,
           p_admin_user_id,
           p_admin_user_id
    FROM jsonb_array_elements(p_asset_updates) AS item
    ON CONFLICT (watchlist_id, crypto_id)
    DO UPDATE SET
        position = EXCLUDED.position,
        weight = EXCLUDED.weight,
        last_modified_by = EXCLUDED.last_modified_by;

    SELECT max_assets INTO asset_limit FROM watchlists WHERE id = p_watchlist_id;
    SELECT COUNT(*) INTO active_assets
    FROM watchlist_assets WHERE watchlist_id = p_watchlist_id AND is_active = true;
    IF asset_limit IS NOT NULL AND active_assets > asset_limit THEN
        RAISE EXCEPTION 'watchlist % would hold % active assets; its limit is %',
            p_watchlist_id, active_assets, asset_limit
            USING ERRCODE = 'check_violation';
    END IF;

    UPDATE watchlists SET updated_at = NOW() WHERE id = p_watchlist_id;

    INSERT INTO user_activities (user_id, activity_type, entity_type, entity_id, action, details)
    VALUES (p_admin_user_id, 'admin_action', 'watchlist', p_watchlist_id, 'bulk_update',
            jsonb_build_object('asset_count', jsonb_array_length(p_asset_updates)));
END;
$$ LANGUAGE plpgsql
"""

# Fixed from the spec: an empty watchlist yields [] rather than [{"crypto_id": null, ...}];
# inactive watchlists are left out, and only an active personal watchlist hides the default.
GET_USER_AI_CONTEXT = """
CREATE OR REPLACE FUNCTION get_user_ai_context(p_user_id INTEGER)
RETURNS TABLE(
    watchlist_id INTEGER,
    watchlist_type VARCHAR(20),
    asset_count INTEGER,
    assets JSONB
) AS $$
BEGIN
    RETURN QUERY
    SELECT
        w.id,
        w.type,
        COUNT(wa.id)::INTEGER,
        COALESCE(
            jsonb_agg(
                jsonb_build_object(
                    'crypto_id', wa.crypto_id,
                    'symbol', c.symbol,
                    'position', wa.position,
                    'weight', wa.weight
                ) ORDER BY wa.position
            ) FILTER (WHERE wa.id IS NOT NULL),
            '[]'::jsonb
        )
    FROM watchlists w
    LEFT JOIN watchlist_assets wa ON w.id = wa.watchlist_id AND wa.is_active = true
    LEFT JOIN cryptocurrencies c ON wa.crypto_id = c.id
    WHERE w.is_active = true AND (
        (w.user_id = p_user_id AND w.type = 'personal') OR
        (w.type = 'default' AND NOT EXISTS (
            SELECT 1 FROM watchlists pw
            WHERE pw.user_id = p_user_id AND pw.type = 'personal' AND pw.is_active = true
        ))
    )
    GROUP BY w.id, w.type
    ORDER BY w.sort_order, w.id;
END;
$$ LANGUAGE plpgsql STABLE
"""

# Fixed from the spec: INSERT ... SELECT then DELETE with the same predicate loses rows that
# another transaction commits in between (READ COMMITTED sees them in the DELETE only). Moving
# rows with DELETE ... RETURNING archives exactly what it deletes.
USER_ACTIVITY_COLUMNS = (
    "id, user_id, activity_type, entity_type, entity_id, action, details, ip_address, "
    "user_agent, session_id, created_at"
)
AI_SUGGESTION_COLUMNS = (
    "id, watchlist_id, crypto_id, suggestion_type, ai_layer, confidence_score, reasoning, "
    "context_data, target_position, target_weight, expected_return, risk_score, status, "
    "reviewed_by, reviewed_at, implemented_at, actual_return, success_score, created_at, "
    "expires_at"
)
ARCHIVE_OLD_DATA = f"""
CREATE OR REPLACE FUNCTION archive_old_data() RETURNS VOID AS $$
BEGIN
    WITH moved AS (
        DELETE FROM user_activities
        WHERE created_at < NOW() - INTERVAL '6 months'
        RETURNING {USER_ACTIVITY_COLUMNS}
    )
    INSERT INTO user_activities_archive ({USER_ACTIVITY_COLUMNS})
    SELECT {USER_ACTIVITY_COLUMNS} FROM moved;

    WITH moved AS (
        DELETE FROM ai_suggestions
        WHERE status = 'implemented' AND implemented_at < NOW() - INTERVAL '3 months'
        RETURNING {AI_SUGGESTION_COLUMNS}
    )
    INSERT INTO ai_suggestions_archive ({AI_SUGGESTION_COLUMNS})
    SELECT {AI_SUGGESTION_COLUMNS} FROM moved;
END;
$$ LANGUAGE plpgsql
"""

FUNCTIONS_PG = (
    UPDATE_UPDATED_AT_FUNCTION,
    CREATE_DEFAULT_WATCHLIST,
    BULK_UPDATE_WATCHLIST_ASSETS,
    GET_USER_AI_CONTEXT,
    ARCHIVE_OLD_DATA,
)
FUNCTION_SIGNATURES = (
    "archive_old_data()",
    "get_user_ai_context(INTEGER)",
    "bulk_update_watchlist_assets(INTEGER, JSONB, INTEGER)",
    "create_default_watchlist(VARCHAR, TEXT)",
    "update_updated_at_column()",
)


def trigger_name(table: str) -> str:
    return TRIGGER_NAMES.get(table, f"update_{table}_updated_at")


def pg_trigger(table: str) -> str:
    return (
        f"CREATE TRIGGER {trigger_name(table)} BEFORE UPDATE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()"
    )


def sqlite_trigger(table: str) -> str:
    # Fires after the row changed; the WHEN clause stops it from re-firing on its own UPDATE
    # and leaves an explicit updated_at from the caller alone.
    return (
        f"CREATE TRIGGER {trigger_name(table)} AFTER UPDATE ON {table} FOR EACH ROW "
        "WHEN NEW.updated_at IS OLD.updated_at BEGIN "
        f"UPDATE {table} SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') "
        "WHERE id = NEW.id; END"
    )


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        for statement in FUNCTIONS_PG:
            op.execute(statement)
    for table in TABLES_WITH_UPDATED_AT:
        op.execute(pg_trigger(table) if postgres else sqlite_trigger(table))
    for statement in VIEWS_PG if postgres else VIEWS_SQLITE:
        op.execute(statement)
    op.execute(SEED_SECTORS)
    op.execute(SEED_DEFAULT_WATCHLIST)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute(
        f"DELETE FROM watchlists WHERE type = 'default' AND name = '{DEFAULT_WATCHLIST_NAME}'"
    )
    op.execute(f"DELETE FROM crypto_sectors WHERE name IN ({SEED_SECTOR_NAMES})")
    for view in VIEW_NAMES:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    for table in TABLES_WITH_UPDATED_AT:
        suffix = f" ON {table}" if postgres else ""
        op.execute(f"DROP TRIGGER IF EXISTS {trigger_name(table)}{suffix}")
    if postgres:
        for signature in FUNCTION_SIGNATURES:
            op.execute(f"DROP FUNCTION IF EXISTS {signature}")
