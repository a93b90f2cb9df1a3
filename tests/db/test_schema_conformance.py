"""The migrated PostgreSQL schema, compared object by object with the spec's SQL.

``spec_schema`` (next to this module) transcribes what the specification's SQL declares. Each
test here introspects a freshly migrated database (``pg_catalog`` through ``text()`` queries)
and reduces both sides to *facts*: a readable key naming one object (``column users.email``,
``index idx_users_role``, ``foreign key watchlist_assets(added_by)``...) mapped to a readable
value describing it. A key present on one side only, or with different values, is a
difference. Every difference must be one of the deliberate deviations in ``DEVIATIONS``, which
names the key, the value the migrated database must show (``ABSENT`` when the spec's object is
deliberately gone) and why; anything else fails, all differences of a test listed at once.
``test_deviation_registry_has_no_stale_entries`` fails when a registered deviation is no longer
observed, so the registry cannot silently grow.

How each kind of object is compared
-----------------------------------
* Tables: the set of ordinary tables in ``public`` (Alembic's ``alembic_version`` aside).
* Columns: ``format_type()``, NOT NULL and the default, per column; plus, per table, the order of
  the columns that both sides have (so an added column is reported once, not as a shifted
  order). Defaults are reduced to the spec's normalised form: ``nextval()`` of the sequence the
  column owns -> ``serial``; ``'x'::character varying`` / ``'{}'::jsonb`` -> ``'x'`` /
  ``'{}'``; ``(now() + '7 days'::interval)`` -> ``now() + 7 days``; ``CURRENT_TIMESTAMP`` ->
  ``now()``; numbers compare by value on both sides (``0.0`` and ``0`` are both ``0``).
* Primary keys and UNIQUE constraints by their column tuple (UNIQUE indexes are indexes);
  DEFERRABLE shows in the value; so does the name of the spec's one named UNIQUE constraint.
* Foreign keys by their column tuple: referenced table and columns, ON DELETE, and ON UPDATE or
  DEFERRABLE where the database has them (the spec never does).
* CHECK constraints by expression. PostgreSQL rewrites what it stores (``x IN ('a', 'b')``
  becomes ``(x)::text = ANY ((ARRAY['a'::character varying, ...])::text[])``, ``BETWEEN``
  becomes ``>= AND <=``), so rather than guess at that rewriting the spec's expressions are put
  through PostgreSQL itself: each is added to a temporary table with the spec's column types and
  read back with ``pg_get_constraintdef()``, the very function that renders the database's own.
  Both renderings are then made readable the same way (casts and parentheses around single
  names or literals dropped, ``= ANY (ARRAY[...])`` shown as ``IN (...)``) and that text is the
  key, so a missing, extra or altered check (another bound, another value in a list, another
  column) is a difference, while PostgreSQL's rewriting is not. The spec's named checks must keep
  their names. Partial-index predicates go through the same round trip.
* Indexes by name (those PostgreSQL creates for primary keys and UNIQUE constraints aside):
  table, access method, key columns with DESC, UNIQUE, and the predicate of a partial index.
* Triggers (not PostgreSQL's internal ones) by name: table, timing, event, level and function.
  Views and functions of ``public`` by name.
* Seed rows: the ten sectors by name, watchlists by type, and no rows in any other table.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

import pytest
from sqlalchemy import Connection, Engine, text

import spec_schema

SCHEMA = "public"
IGNORED_TABLES = frozenset({"alembic_version"})  # Alembic's bookkeeping, not the spec's schema
EXPECTED_TABLE_COUNT = 25
ABSENT: None = None

# The spec names one UNIQUE constraint; spec_schema records it in prose only.
SPEC_NAMED_UNIQUES: dict[tuple[str, tuple[str, ...]], str] = {
    ("price_data", ("crypto_id", "timestamp")): "unique_crypto_timestamp"
}

# The spec's own seed rows for watchlists (shared/spec/database-erd-design.md, "Create default
# admin watchlists"): one 'Admin Tier 1' row of type 'admin_tier1', one 'Admin Tier 2' row of
# type 'admin_tier2'. spec_schema has SEED_SECTORS only.
SPEC_SEED_WATCHLIST_TYPES = ("admin_tier1", "admin_tier2")

CATEGORIES = ("tables", "columns", "constraints", "indexes", "objects", "seed")

Facts = dict[str, str]


@dataclass(frozen=True)
class Deviation:
    """A deliberate difference from the spec: what the migrated database shows, and why."""

    db: str | None
    reason: str


_ARCHIVE_CHECKS = "archive tables: no CHECKs; cold, written in bulk by archive_old_data()"
_ARCHIVE_ID = "archive id has no default: LIKE ... INCLUDING ALL would share the source's sequence"
_ARCHIVE_INDEX = "archive tables: none of the source's indexes, only created_at DESC"
_REDUNDANT = "dropped: a PRIMARY KEY/UNIQUE index or another index already covers its columns"
_DATA_VERSION = "added: the data version served forecasts check in O(1) (migration 0005)"
# The tables whose writes bump it, and on which events.
DATA_VERSION_TRIGGERS = {
    "price_data": ("INSERT", "UPDATE", "DELETE"),
    "cryptocurrencies": ("INSERT", "UPDATE", "DELETE"),
    "crypto_sector_mapping": ("INSERT", "UPDATE", "DELETE"),
    "crypto_sectors": ("UPDATE", "DELETE"),
    "ai_models": ("INSERT", "UPDATE", "DELETE"),
}
ADDED_TABLES = 1  # data_versions
_SET_NULL = "defect 10: with NO ACTION an admin who edited or reviewed could not be deleted"
_RANGE_0_1 = "added: the spec states the [0, 1] range but does not enforce it"

# Every deliberate deviation from the spec, each recorded in docs/schema-notes.md. A key is a
# fact key as this module reports it; ``db`` is what the migrated database must show for it
# (ABSENT: the spec's object is deliberately not there).
DEVIATIONS: dict[str, Deviation] = {
    # -- columns ------------------------------------------------------------------------------
    "column watchlist_assets.updated_at": Deviation(
        "timestamp with time zone NULL DEFAULT now()",
        "defect 1: the spec's update_watchlist_assets_updated_at trigger sets it",
    ),
    "column user_activities_archive.id": Deviation("integer NOT NULL", _ARCHIVE_ID),
    "column ai_suggestions_archive.id": Deviation("integer NOT NULL", _ARCHIVE_ID),
    # -- constraints added --------------------------------------------------------------------
    "check users: role IN ('admin', 'public')": Deviation(
        "CHECK", "added: the spec's comment says so; the API relies on it"
    ),
    "check watchlists: max_assets > 0": Deviation("CHECK", "added: a watchlist holds assets"),
    "check watchlist_assets: position >= 1": Deviation("CHECK", "added: positions count from 1"),
    "check watchlist_assets: (weight >= 0) AND (weight <= 1)": Deviation("CHECK", _RANGE_0_1),
    "check watchlist_assets: (target_allocation >= 0) AND (target_allocation <= 1)": Deviation(
        "CHECK", _RANGE_0_1
    ),
    "check ai_suggestions: (confidence_score >= 0) AND (confidence_score <= 1)": Deviation(
        "CHECK", _RANGE_0_1
    ),
    "check ai_suggestions: (risk_score >= 0) AND (risk_score <= 1)": Deviation("CHECK", _RANGE_0_1),
    "check ai_suggestions: (success_score >= 0) AND (success_score <= 1)": Deviation(
        "CHECK", _RANGE_0_1
    ),
    (
        "check trading_signals: ((signal_type = 'long') AND (stop_loss < entry_price)"
        " AND (entry_price < target_price)) OR ((signal_type = 'short')"
        " AND (target_price < entry_price) AND (entry_price < stop_loss))"
    ): Deviation("CHECK", "added: stop, entry and target in the order the direction implies"),
    "check predictions: (layer_source >= 1) AND (layer_source <= 4)": Deviation(
        "CHECK", "added: there are four analysis layers"
    ),
    "check predictions: (confidence_score >= 0) AND (confidence_score <= 1)": Deviation(
        "CHECK", _RANGE_0_1
    ),
    "check predictions: prediction_horizon > 0": Deviation(
        "CHECK", "added: a prediction looks forward"
    ),
    # -- constraints changed ------------------------------------------------------------------
    "unique ai_models(name)": Deviation(
        ABSENT, "defect 3: one row per model name leaves no room for versions"
    ),
    "unique ai_models(name, version)": Deviation("UNIQUE", "defect 3: replaces UNIQUE(name)"),
    "unique watchlist_assets(watchlist_id, position)": Deviation(
        "UNIQUE DEFERRABLE INITIALLY DEFERRED",
        "defect 7: checked at commit, so bulk_update_watchlist_assets can swap positions",
    ),
    # -- archive tables: no CHECK constraints -------------------------------------------------
    "check ai_suggestions_archive: (ai_layer >= 1) AND (ai_layer <= 4)": Deviation(
        ABSENT, _ARCHIVE_CHECKS
    ),
    (
        "check ai_suggestions_archive: status IN"
        " ('pending', 'approved', 'rejected', 'implemented', 'expired')"
    ): Deviation(ABSENT, _ARCHIVE_CHECKS),
    (
        "check ai_suggestions_archive: suggestion_type IN"
        " ('add', 'remove', 'rebalance', 'tier_change')"
    ): Deviation(ABSENT, _ARCHIVE_CHECKS),
    # -- foreign keys changed -----------------------------------------------------------------
    "foreign key watchlist_assets(added_by)": Deviation(
        "-> users(id) ON DELETE SET NULL", _SET_NULL
    ),
    "foreign key watchlist_assets(last_modified_by)": Deviation(
        "-> users(id) ON DELETE SET NULL", _SET_NULL
    ),
    "foreign key ai_suggestions(reviewed_by)": Deviation(
        "-> users(id) ON DELETE SET NULL", _SET_NULL
    ),
    # -- indexes dropped as redundant ---------------------------------------------------------
    "index idx_users_email": Deviation(ABSENT, _REDUNDANT),
    "index idx_price_data_crypto_id": Deviation(ABSENT, _REDUNDANT),
    "index idx_price_data_crypto_timestamp": Deviation(ABSENT, _REDUNDANT),
    "index idx_watchlists_user_id": Deviation(ABSENT, _REDUNDANT),
    "index idx_watchlist_assets_watchlist": Deviation(ABSENT, _REDUNDANT),
    "index idx_watchlist_assets_position": Deviation(ABSENT, _REDUNDANT),
    "index idx_ai_suggestions_crypto": Deviation(ABSENT, _REDUNDANT),
    "index idx_ai_suggestions_status": Deviation(ABSENT, _REDUNDANT),
    "index idx_crypto_sector_crypto": Deviation(ABSENT, _REDUNDANT),
    "index idx_sessions_token": Deviation(ABSENT, _REDUNDANT),
    "index idx_predictions_prediction_type": Deviation(ABSENT, _REDUNDANT),
    # -- indexes changed or dropped for write speed (migration 0003) --------------------------
    "index idx_predictions_composite": Deviation(
        "ON predictions USING btree (crypto_id, created_at DESC)",
        "without is_realized: an index naming a column the evaluation sets rules out HOT updates",
    ),
    "index idx_price_data_timestamp": Deviation(
        ABSENT, "dropped: no query of ours filters candles by time across coins; costs ingest"
    ),
    # -- indexes added ------------------------------------------------------------------------
    "index idx_ai_models_one_active": Deviation(
        "UNIQUE ON ai_models USING btree (name) WHERE status = 'active'",
        "defect 3: at most one serving version per model",
    ),
    "index idx_user_activities_archive_created_at": Deviation(
        "ON user_activities_archive USING btree (created_at DESC)", _ARCHIVE_INDEX
    ),
    "index idx_ai_suggestions_archive_created_at": Deviation(
        "ON ai_suggestions_archive USING btree (created_at DESC)", _ARCHIVE_INDEX
    ),
    # -- triggers -----------------------------------------------------------------------------
    "trigger update_ai_models_updated_at": Deviation(
        "on ai_models: BEFORE UPDATE FOR EACH ROW EXECUTE update_updated_at_column()",
        "defect 4: ai_models has updated_at but the spec gives it no trigger",
    ),
    # -- seed rows ----------------------------------------------------------------------------
    "seed watchlists of type admin_tier1": Deviation(
        ABSENT, "defect 2: the spec's 'admin_tier1' row breaks its own type CHECK"
    ),
    "seed watchlists of type admin_tier2": Deviation(
        ABSENT, "defect 2: the spec's 'admin_tier2' row breaks its own type CHECK"
    ),
    "seed watchlists of type default": Deviation(
        "1 row(s)", "defect 2: one 'default' watchlist carries both tiers"
    ),
    # -- the data version of served forecasts (migration 0005) --------------------------------
    "table data_versions": Deviation("present", _DATA_VERSION),
    "column data_versions.scope": Deviation("character varying(30) NOT NULL", _DATA_VERSION),
    "column data_versions.version": Deviation("bigint NOT NULL DEFAULT 0", _DATA_VERSION),
    "column order data_versions": Deviation("scope, version", _DATA_VERSION),
    "primary key data_versions": Deviation("(scope)", _DATA_VERSION),
    "seed rows in data_versions": Deviation("2 row(s)", _DATA_VERSION),
    "function bump_data_version": Deviation("present", _DATA_VERSION),
    **{
        f"trigger bump_data_version_{table}_{event.lower()}": Deviation(
            f"on {table}: AFTER {event} FOR EACH {'ROW' if table == 'ai_models' else 'STATEMENT'}"
            " EXECUTE bump_data_version()",
            _DATA_VERSION,
        )
        for table, events in DATA_VERSION_TRIGGERS.items()
        for event in events
    },
}


# --- rendering helpers ------------------------------------------------------------------------

_TYPE = (
    r"(?:character varying|timestamp with time zone|timestamp without time zone"
    r"|time with time zone|time without time zone|double precision|\"?[a-z_][a-z0-9_]*\"?)"
)
_CAST = re.compile(rf"::{_TYPE}(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])?")
_ATOM_IN_PARENS = re.compile(r"(?<![\w$])\((\"?[\w.]+\"?|'(?:[^']|'')*'|-?\d+(?:\.\d+)?)\)")
_ANY_ARRAY = re.compile(r"= ANY \(\(?ARRAY\[([^\]]*)\]\)?\)")
_NUMBER = re.compile(r"\(?(-?\d+(?:\.\d+)?)\)?(?:::" + _TYPE + r")?")
_QUOTED_CAST = re.compile(r"('(?:[^']|'')*')::(" + _TYPE + r")(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])?")
_NUMERIC_TYPES = frozenset({"smallint", "integer", "bigint", "numeric", "real", "double precision"})
_NOW_PLUS = re.compile(r"\(now\(\) \+ '([^']+)'::interval\)")
_NEXTVAL = re.compile(r"nextval\('([^']+)'::regclass\)")
_NAMED_CHECK = re.compile(r"([a-z_][a-z0-9_]*): (.+)", re.DOTALL)


def _strip_outer_parens(expr: str) -> str:
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for i, char in enumerate(expr):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0 and i < len(expr) - 1:
                return expr  # the first "(" closes before the end: not one wrapping pair
        expr = expr[1:-1].strip()
    return expr


def readable(expr: str) -> str:
    """A PostgreSQL-rendered expression with casts and redundant parentheses taken out."""
    expr = expr.removeprefix("CHECK ").replace('"', "")
    expr = _CAST.sub("", expr)
    previous = None
    while previous != expr:
        previous, expr = expr, _ATOM_IN_PARENS.sub(r"\1", expr)
    expr = _ANY_ARRAY.sub(r"IN (\1)", expr)
    return _strip_outer_parens(" ".join(expr.split()))


def normalise_default(expr: str | None, owns_sequence: bool = False) -> str | None:
    """A column default in spec_schema's normalised form (see the module docstring)."""
    if expr is None:
        return None
    expr = " ".join(expr.split())
    if match := _NEXTVAL.fullmatch(expr):
        return "serial" if owns_sequence else f"nextval({match[1]})"
    if match := _NOW_PLUS.fullmatch(expr):
        return f"now() + {match[1]}"
    if expr.lower() in {"now()", "current_timestamp"}:
        return "now()"
    if match := _QUOTED_CAST.fullmatch(expr):
        if match[2] not in _NUMERIC_TYPES:
            return match[1]
        expr = match[1][1:-1]  # a negative number: PostgreSQL writes -1 as '-1'::integer
    if match := _NUMBER.fullmatch(expr):
        return format(Decimal(match[1]).normalize(), "f")
    return expr


def _column_fact(type_: str, nullable: bool, default: str | None) -> str:
    value = f"{type_} {'NULL' if nullable else 'NOT NULL'}"
    return value if default is None else f"{value} DEFAULT {default}"


def _cols(columns: Iterable[str]) -> str:
    return ", ".join(columns)


def _unique_fact(table: str, columns: tuple[str, ...], name: str, deferrable: str) -> str:
    value = "UNIQUE" + deferrable
    if SPEC_NAMED_UNIQUES.get((table, columns)) is not None:
        value += f" named {name}"
    return value


@cache
def _spec_check_names() -> dict[str, frozenset[str]]:
    return {
        table.name: frozenset(name for name, _ in _check_names_and_exprs(table) if name)
        for table in spec_schema.TABLES
    }


def _check_fact(table: str, name: str | None) -> str:
    """A check's value: its name counts only where the spec names a check so."""
    return f"CHECK named {name}" if name in _spec_check_names().get(table, ()) else "CHECK"


def _add_counted(facts: Facts, key: str, value: str) -> None:
    """Add a fact, numbering keys that repeat (two identical checks on one table)."""
    numbered, count = key, 1
    while numbered in facts:
        count += 1
        numbered = f"{key} (#{count})"
    facts[numbered] = value


# --- the migrated database --------------------------------------------------------------------

_TABLES_SQL = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')
"""

_COLUMNS_SQL = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) IS NOT NULL
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""

_CONSTRAINTS_SQL = """
SELECT t.relname, con.conname, con.contype,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.i)::text[],
       r.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.i)::text[],
       con.confdeltype, con.confupdtype, con.condeferrable, con.condeferred,
       pg_get_constraintdef(con.oid)
FROM pg_constraint con
JOIN pg_class t ON t.oid = con.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_class r ON r.oid = con.confrelid
WHERE n.nspname = :schema AND con.contype IN ('p', 'u', 'f', 'c')
ORDER BY t.relname, con.conname
"""

_INDEXES_SQL = """
SELECT i.relname, t.relname, am.amname, ix.indisunique, pg_get_expr(ix.indpred, ix.indrelid),
       ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k, true)
                    || CASE WHEN ix.indoption[k - 1] & 1 = 1 THEN ' DESC' ELSE '' END
             FROM generate_series(1, ix.indnkeyatts) AS k ORDER BY k)::text[],
       ix.indnatts > ix.indnkeyatts
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_class t ON t.oid = ix.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = i.relam
WHERE n.nspname = :schema
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con
                  WHERE con.conindid = ix.indexrelid AND con.conrelid = ix.indrelid
                    AND con.contype IN ('p', 'u', 'x'))
"""

_TRIGGERS_SQL = """
SELECT tg.tgname, c.relname, tg.tgtype, tg.tgfoid::regproc::text
FROM pg_trigger tg
JOIN pg_class c ON c.oid = tg.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema AND NOT tg.tgisinternal
"""

_VIEWS_SQL = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema AND c.relkind IN ('v', 'm')
"""

_FUNCTIONS_SQL = """
SELECT p.proname, count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = :schema GROUP BY p.proname
"""

_FK_RULES = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def _trigger_fact(table: str, tgtype: int, function: str) -> str:
    timing = "INSTEAD OF" if tgtype & 64 else "BEFORE" if tgtype & 2 else "AFTER"
    events = [name for bit, name in ((4, "INSERT"), (8, "DELETE"), (16, "UPDATE")) if tgtype & bit]
    if tgtype & 32:
        events.append("TRUNCATE")
    level = "ROW" if tgtype & 1 else "STATEMENT"
    return f"on {table}: {timing} {' OR '.join(events)} FOR EACH {level} EXECUTE {function}()"


def _seed_facts(conn: Connection, tables: set[str]) -> Facts:
    facts: Facts = {}
    if "crypto_sectors" in tables:  # a missing table is reported by the tables test
        for (name,) in conn.execute(text("SELECT name FROM crypto_sectors")):
            facts[f"seed crypto_sectors row {name}"] = "present"
    if "watchlists" in tables:
        rows = conn.execute(text("SELECT type, count(*) FROM watchlists GROUP BY type"))
        for type_, count in rows:
            facts[f"seed watchlists of type {type_}"] = f"{count} row(s)"
    for table in sorted(tables - {"crypto_sectors", "watchlists"}):
        count = conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()
        facts[f"seed rows in {table}"] = f"{count} row(s)"
    return facts


def database_facts(conn: Connection) -> dict[str, Facts]:
    """Facts about the migrated database, by category."""
    params = {"schema": SCHEMA}
    tables = {
        name for (name,) in conn.execute(text(_TABLES_SQL), params) if name not in IGNORED_TABLES
    }
    facts: dict[str, Facts] = {category: {} for category in CATEGORIES}
    facts["tables"] = {f"table {name}": "present" for name in tables}

    order: dict[str, list[str]] = {}
    for table, column, type_, nullable, default, identity, generated, owns_sequence in conn.execute(
        text(_COLUMNS_SQL), params
    ):
        if table not in tables:
            continue
        if identity:
            default = f"identity ({'ALWAYS' if identity == 'a' else 'BY DEFAULT'})"
        elif generated:
            default = f"generated always as {default}"
        else:
            default = normalise_default(default, owns_sequence)
        facts["columns"][f"column {table}.{column}"] = _column_fact(type_, nullable, default)
        order.setdefault(table, []).append(column)
    for table, columns in order.items():
        facts["columns"][f"column order {table}"] = _cols(columns)

    constraints = facts["constraints"]
    rows = conn.execute(text(_CONSTRAINTS_SQL), params)
    for (
        table,
        name,
        kind,
        cols,
        ref,
        ref_cols,
        on_delete,
        on_update,
        deferrable,
        deferred,
        defn,
    ) in rows:
        if table not in tables:
            continue
        key_columns = tuple(cols)
        when = (" DEFERRABLE" if deferrable else "") + (" INITIALLY DEFERRED" if deferred else "")
        if kind == "p":
            constraints[f"primary key {table}"] = f"({_cols(key_columns)}){when}"
        elif kind == "u":
            key = f"unique {table}({_cols(key_columns)})"
            constraints[key] = _unique_fact(table, key_columns, name, when)
        elif kind == "f":
            value = f"-> {ref}({_cols(ref_cols)}) ON DELETE {_FK_RULES[on_delete]}"
            if on_update != "a":
                value += f" ON UPDATE {_FK_RULES[on_update]}"
            constraints[f"foreign key {table}({_cols(key_columns)})"] = value + when
        else:
            _add_counted(constraints, f"check {table}: {readable(defn)}", _check_fact(table, name))

    for name, table, method, unique, predicate, columns, has_include in conn.execute(
        text(_INDEXES_SQL), params
    ):
        if table in tables:
            facts["indexes"][f"index {name}"] = _index_fact(
                table, method, [c.replace('"', "") for c in columns], unique, predicate
            ) + (" INCLUDE (...)" if has_include else "")

    objects = facts["objects"]
    for name, table, tgtype, function in conn.execute(text(_TRIGGERS_SQL), params):
        objects[f"trigger {name}"] = _trigger_fact(table, tgtype, function)
    for (name,) in conn.execute(text(_VIEWS_SQL), params):
        objects[f"view {name}"] = "present"
    for name, count in conn.execute(text(_FUNCTIONS_SQL), params):
        objects[f"function {name}"] = "present" if count == 1 else f"{count} overloads"

    facts["seed"] = _seed_facts(conn, tables)
    return facts


def _index_fact(
    table: str, method: str, columns: Iterable[str], unique: bool, predicate: str | None
) -> str:
    value = f"ON {table} USING {method} ({_cols(columns)})"
    if unique:
        value = "UNIQUE " + value
    if predicate is not None:
        value += f" WHERE {readable(predicate)}"
    return value


# --- the spec ---------------------------------------------------------------------------------


def _check_names_and_exprs(table: spec_schema.SpecTable) -> list[tuple[str | None, str]]:
    named = []
    for check in table.checks:
        match = _NAMED_CHECK.fullmatch(check)
        named.append((match[1], match[2]) if match else (None, check))
    return named


def canonical_spec_expressions(conn: Connection) -> dict[tuple[str, str], str]:
    """PostgreSQL's rendering of each spec CHECK and index predicate, by (table, spec text).

    Each spec table becomes a temporary table with the spec's column types; its checks are
    added as constraints and its predicates as partial indexes, then read back the way the
    database's own are. The caller rolls the transaction back.
    """
    rendered: dict[tuple[str, str], str] = {}
    for number, table in enumerate(spec_schema.TABLES):
        temp = f"spec_conformance_{number}"
        columns = ", ".join(f'"{c.name}" {c.type}' for c in table.columns)
        conn.execute(text(f"CREATE TEMPORARY TABLE {temp} ({columns})"))
        for i, (_, expr) in enumerate(_check_names_and_exprs(table)):
            conn.execute(text(f"ALTER TABLE {temp} ADD CONSTRAINT c{i} CHECK ({expr})"))
            definition = conn.execute(
                text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                    " WHERE conrelid = CAST(:temp AS regclass) AND conname = :name"
                ),
                {"temp": temp, "name": f"c{i}"},
            ).scalar_one()
            rendered[(table.name, expr)] = definition
        for i, index in enumerate(table.indexes):
            if index.where is None:
                continue
            name = f"{temp}_p{i}"
            conn.execute(text(f'CREATE INDEX {name} ON {temp} ("id") WHERE {index.where}'))
            predicate = conn.execute(
                text(
                    "SELECT pg_get_expr(indpred, indrelid) FROM pg_index"
                    " WHERE indexrelid = CAST(:name AS regclass)"
                ),
                {"name": name},
            ).scalar_one()
            rendered[(table.name, index.where)] = predicate
    return rendered


def spec_facts(conn: Connection) -> dict[str, Facts]:
    """Facts about the spec, by category, in the same form as ``database_facts``."""
    expressions = canonical_spec_expressions(conn)
    facts: dict[str, Facts] = {category: {} for category in CATEGORIES}
    for table in spec_schema.TABLES:
        name = table.name
        facts["tables"][f"table {name}"] = "present"
        for column in table.columns:
            default = normalise_default(column.default)
            facts["columns"][f"column {name}.{column.name}"] = _column_fact(
                column.type, column.nullable, default
            )
        facts["columns"][f"column order {name}"] = _cols(c.name for c in table.columns)

        constraints = facts["constraints"]
        constraints[f"primary key {name}"] = f"({_cols(table.primary_key)})"
        for columns in table.uniques:
            value = _unique_fact(name, columns, SPEC_NAMED_UNIQUES.get((name, columns), ""), "")
            constraints[f"unique {name}({_cols(columns)})"] = value
        for fk in table.foreign_keys:
            constraints[f"foreign key {name}({_cols(fk.columns)})"] = (
                f"-> {fk.ref_table}({_cols(fk.ref_columns)}) ON DELETE {fk.on_delete}"
            )
        for check_name, expr in _check_names_and_exprs(table):
            key = f"check {name}: {readable(expressions[(name, expr)])}"
            _add_counted(constraints, key, _check_fact(name, check_name))

        for index in table.indexes:
            predicate = None if index.where is None else expressions[(name, index.where)]
            facts["indexes"][f"index {index.name}"] = _index_fact(
                name, index.using, index.columns, index.unique, predicate
            )

    objects = facts["objects"]
    for trigger, table_name in spec_schema.TRIGGERS:
        objects[f"trigger {trigger}"] = _trigger_fact(
            table_name, 1 | 2 | 16, "update_updated_at_column"
        )
    for view in spec_schema.VIEWS:
        objects[f"view {view}"] = "present"
    for function in spec_schema.FUNCTIONS:
        objects[f"function {function}"] = "present"

    seed = facts["seed"]
    for sector in spec_schema.SEED_SECTORS:
        seed[f"seed crypto_sectors row {sector}"] = "present"
    for type_, count in Counter(SPEC_SEED_WATCHLIST_TYPES).items():
        seed[f"seed watchlists of type {type_}"] = f"{count} row(s)"
    for table in spec_schema.TABLES:
        if table.name not in {"crypto_sectors", "watchlists"}:
            seed[f"seed rows in {table.name}"] = "0 row(s)"
    return facts


# --- comparison -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    spec: str | None
    db: str | None


@dataclass(frozen=True)
class Comparison:
    spec: dict[str, Facts]
    db: dict[str, Facts]

    def differences(self, category: str) -> dict[str, Difference]:
        spec, db = self.spec[category], self.db[category]
        return {
            key: Difference(spec.get(key), db.get(key))
            for key in sorted(spec.keys() | db.keys())
            if spec.get(key) != db.get(key)
        }

    def all_differences(self) -> dict[str, Difference]:
        merged: dict[str, Difference] = {}
        for category in CATEGORIES:
            merged.update(self.differences(category))
        return merged


def _common_column_order(spec: Facts, db: Facts) -> None:
    """Reduce each ``column order`` fact to the columns both sides have (in place).

    An added or missing column is reported by its own ``column`` fact; the order fact then
    reports only columns that moved.
    """
    for key in spec.keys() & db.keys():
        if key.startswith("column order "):
            spec_columns, db_columns = spec[key].split(", "), db[key].split(", ")
            common = set(spec_columns) & set(db_columns)
            spec[key] = _cols(c for c in spec_columns if c in common)
            db[key] = _cols(c for c in db_columns if c in common)


def compare(conn: Connection) -> Comparison:
    """Introspect the database on ``conn``, then the spec; leaves the transaction to roll back."""
    db = database_facts(conn)
    spec = spec_facts(conn)
    _common_column_order(spec["columns"], db["columns"])
    return Comparison(spec=spec, db=db)


def _show(value: str | None) -> str:
    return "<absent>" if value is None else repr(value)


def unexpected_differences(comparison: Comparison, category: str) -> dict[str, str]:
    """The differences of a category that ``DEVIATIONS`` does not except, each described."""
    problems = {}
    for key, diff in comparison.differences(category).items():
        deviation = DEVIATIONS.get(key)
        if deviation is not None and deviation.db == diff.db:
            continue
        line = f"  {key}\n      spec: {_show(diff.spec)}\n      db:   {_show(diff.db)}"
        if deviation is not None:
            line += f"\n      registered deviation expects db: {_show(deviation.db)}"
        problems[key] = line
    return problems


def assert_conforms(comparison: Comparison, category: str) -> None:
    problems = unexpected_differences(comparison, category)
    if problems:
        pytest.fail(
            f"{len(problems)} unexpected {category} difference(s) between the migrated database "
            "and tests/db/spec_schema.py (fix the migration, or register a deliberate deviation "
            "in DEVIATIONS and docs/schema-notes.md):\n" + "\n".join(problems.values()),
            pytrace=False,
        )


@pytest.fixture
def comparison(pg_engine: Engine) -> Comparison:
    with pg_engine.connect() as conn:
        result = compare(conn)
        conn.rollback()
    return result


@pytest.mark.postgres
def test_schema_tables_match_spec(comparison: Comparison) -> None:
    assert len(spec_schema.TABLES) == EXPECTED_TABLE_COUNT
    assert_conforms(comparison, "tables")
    assert len(comparison.db["tables"]) == EXPECTED_TABLE_COUNT + ADDED_TABLES


@pytest.mark.postgres
def test_schema_columns_match_spec(comparison: Comparison) -> None:
    assert_conforms(comparison, "columns")


@pytest.mark.postgres
def test_schema_constraints_match_spec(comparison: Comparison) -> None:
    assert_conforms(comparison, "constraints")


@pytest.mark.postgres
def test_schema_indexes_match_spec(comparison: Comparison) -> None:
    assert_conforms(comparison, "indexes")


@pytest.mark.postgres
def test_schema_triggers_views_functions_match_spec(comparison: Comparison) -> None:
    assert_conforms(comparison, "objects")


@pytest.mark.postgres
def test_seed_rows_match_spec(comparison: Comparison) -> None:
    assert_conforms(comparison, "seed")


def stale_deviations(comparison: Comparison) -> dict[str, str]:
    """Registered deviations not observed as registered, each described."""
    observed = comparison.all_differences()
    stale = {}
    for key, deviation in DEVIATIONS.items():
        diff = observed.get(key)
        if diff is None:
            stale[key] = f"  {key}: no longer differs from the spec ({deviation.reason})"
        elif diff.db != deviation.db:
            stale[key] = f"  {key}: registered db {_show(deviation.db)}, observed {_show(diff.db)}"
    return stale


@pytest.mark.postgres
def test_deviation_registry_has_no_stale_entries(comparison: Comparison) -> None:
    stale = stale_deviations(comparison)
    if stale:
        pytest.fail(
            f"{len(stale)} registered deviation(s) not observed as registered; remove or correct "
            "them in DEVIATIONS (and docs/schema-notes.md):\n" + "\n".join(stale.values()),
            pytrace=False,
        )


# Each statement drifts the migrated schema; the keys are what the comparison must report.
_INJECTED_DRIFT: tuple[tuple[str, set[str]], ...] = (
    (
        "ALTER TABLE watchlists DROP CONSTRAINT watchlists_max_assets_check,"
        " ADD CONSTRAINT watchlists_max_assets_check CHECK (max_assets > 1)",
        {"check watchlists: max_assets > 1"},  # and "> 0" leaves the registry stale
    ),
    (
        "ALTER TABLE notifications DROP CONSTRAINT notifications_priority_check,"
        " ADD CONSTRAINT notifications_priority_check"
        " CHECK (priority IN ('low', 'normal', 'high'))",
        {
            "check notifications: priority IN ('low', 'normal', 'high', 'urgent')",
            "check notifications: priority IN ('low', 'normal', 'high')",
        },
    ),
    (
        "ALTER TABLE ai_suggestions RENAME CONSTRAINT check_status TO ai_suggestions_status_check",
        {
            "check ai_suggestions: status IN"
            " ('pending', 'approved', 'rejected', 'implemented', 'expired')"
        },
    ),
    (
        "ALTER TABLE users ALTER COLUMN timezone SET DEFAULT 'Europe/Paris'",
        {"column users.timezone"},
    ),
    ("ALTER TABLE price_data ALTER COLUMN volume TYPE numeric(30,6)", {"column price_data.volume"}),
    (
        "ALTER TABLE watchlist_assets ALTER COLUMN notes SET NOT NULL",
        {"column watchlist_assets.notes"},
    ),
    ("ALTER TABLE watchlist_assets ALTER COLUMN weight SET DEFAULT 0", set()),  # 0 == 0.0
    ("DROP INDEX idx_users_role", {"index idx_users_role"}),
    (
        "DROP INDEX idx_watchlists_default;"
        " CREATE UNIQUE INDEX idx_watchlists_default ON watchlists (type) WHERE type = 'personal'",
        {"index idx_watchlists_default"},
    ),
    (
        "ALTER TABLE signal_executions DROP CONSTRAINT signal_executions_user_id_fkey,"
        " ADD FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL",
        {"foreign key signal_executions(user_id)"},
    ),
    (
        "ALTER TABLE watchlist_assets DROP CONSTRAINT watchlist_assets_added_by_fkey,"
        " ADD FOREIGN KEY (added_by) REFERENCES users (id) ON DELETE CASCADE",
        {"foreign key watchlist_assets(added_by)"},  # registered as SET NULL: reported and stale
    ),
    ("DROP TRIGGER update_users_updated_at ON users", {"trigger update_users_updated_at"}),
    ("DROP VIEW v_users_overview", {"view v_users_overview"}),
    ("DELETE FROM crypto_sectors WHERE name = 'DeFi'", {"seed crypto_sectors row DeFi"}),
)


@pytest.mark.postgres
def test_comparison_reports_injected_drift(pg_engine: Engine) -> None:
    """The comparison itself: drift the database on purpose, and every drift must be reported."""
    with pg_engine.connect() as conn:
        for statement, _ in _INJECTED_DRIFT:
            conn.execute(text(statement))
        result = compare(conn)
        conn.rollback()
    reported = {key for category in CATEGORIES for key in unexpected_differences(result, category)}
    expected = set().union(*(keys for _, keys in _INJECTED_DRIFT))
    assert reported == expected
    assert set(stale_deviations(result)) == {
        "check watchlists: max_assets > 0",
        "foreign key watchlist_assets(added_by)",
    }


def test_readable_and_default_normalisation() -> None:
    """The renderings above, on PostgreSQL's own output (no database needed)."""
    assert (
        readable(
            "CHECK (((role)::text = ANY ((ARRAY['admin'::character varying, "
            "'public'::character varying])::text[])))"
        )
        == "role IN ('admin', 'public')"
    )
    assert readable("CHECK (((ai_layer >= 1) AND (ai_layer <= 4)))") == (
        "(ai_layer >= 1) AND (ai_layer <= 4)"
    )
    assert readable("CHECK (((w >= (0)::numeric) AND (w <= (1)::numeric)))") == (
        "(w >= 0) AND (w <= 1)"
    )
    assert readable('CHECK (("position" >= 1))') == "position >= 1"
    assert readable("((type)::text = 'default'::text)") == "type = 'default'"
    assert readable("(lower((email)::text) <> ''::text)") == "lower(email) <> ''"
    assert normalise_default("'public'::character varying") == "'public'"
    assert normalise_default("'{}'::jsonb") == "'{}'"
    assert normalise_default("(now() + '7 days'::interval)") == "now() + 7 days"
    assert normalise_default("nextval('users_id_seq'::regclass)", owns_sequence=True) == "serial"
    assert normalise_default("nextval('users_id_seq'::regclass)") == "nextval(users_id_seq)"
    assert normalise_default("CURRENT_TIMESTAMP") == "now()"
    assert normalise_default("0.0") == normalise_default("0") == "0"
    assert normalise_default("5.0") == "5"
    assert normalise_default("1000") == "1000"
    assert normalise_default("'-1'::integer") == "-1"
    assert normalise_default("'1'::character varying") == "'1'"
    assert normalise_default("true") == "true"
