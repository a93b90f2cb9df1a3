"""Evaluation benchmark: the nightly evaluation job against a naive per-row ORM loop.

All figures are wall-clock predictions evaluated per second, on PostgreSQL, on the schema our
migrations build (every index, constraint and trigger, the ``updated_at`` trigger on
``predictions`` included), in a throwaway database:

* (1) ours: ``training.evaluate.evaluate(engine, as_of=...)`` over ``--predictions`` due,
  unrealized predictions (default 1,000,000) over ``--coins`` coins (default 50), timed around
  the whole call. Its parts are timed by wrapping the functions it calls (``unittest.mock``):
  the set-based UPDATE ... FROM price_data (``_backfill_predictions``), the live metrics of
  each model version (``update_live_metrics``; the version is registered in ``ai_models``),
  the suggestions and signals (``evaluate_suggestions``, ``evaluate_signals``; their tables
  are empty here) and the two counts (``_count``); the rest is the ``system_health`` row, the
  commit and Python. A psycopg cursor class records the UPDATE's plan (``EXPLAIN``, planning
  only; its few milliseconds are taken off the figures).
* (2) naive: a per-row SQLAlchemy ORM loop over ``--sample`` unrealized predictions (default
  2,000): load the due predictions as ORM objects, for each one query its candle, compute the
  same columns in Python (``Decimal``), set the attributes (autoflush on, as by default),
  commit once at the end. Its results are checked against what (1) wrote for the same rows.
  The sample is the newest predictions, reset to unrealized after (1) in a table whose other
  rows are all realized (compacted by VACUUM FULL first): the state a nightly run sees.
* ours on that same reset sample, best of 3: as migrated, then with a partial index on
  ``(target_datetime)`` (created for the measurement, dropped after), once ``WHERE NOT
  is_realized`` and once ``WHERE is_realized IS false``, the form our UPDATE's
  ``is_realized IS false`` lets PostgreSQL 15 use.
* the read side alone: a SELECT over the same join computing the same expressions (no
  parallel workers, as an UPDATE gets none).
* where the time goes (``--variants``, on by default): (1) again on a fresh copy of the
  unrealized state for each variant: the ``update_predictions_updated_at`` trigger disabled;
  the predictions indexes dropped but the primary key; only the GIN index dropped;
  ``synchronous_commit`` off; ``wal_compression = lz4`` (for the session); narrow rows (the six
  JSONB columns NULL); the index, trigger and commit ones together (the floor); and
  ``idx_predictions_composite`` dropped with fillfactor 45, so that no index covers an updated
  column and updates can be HOT; last, as migrated again, to show the run-to-run noise. For
  each: the parts' seconds, the WAL written (bytes from the WAL insert position, full-page
  images from ``pg_stat_wal``; both server-wide), the checkpoints started meanwhile, and how
  many of its updates were HOT (``pg_stat_user_tables``).

Set-up, not timed: the coins, hourly candles (``INSERT ... SELECT generate_series``; every
prediction's candle at its ``target_datetime`` exists) and predictions shaped like the rows
``serving.batch.analyze`` writes (asset model, horizon 24 h, predicted within +-8 % of the outcome,
the same JSONB payloads: 35 input features, their names, top contributions, context). The
predictions are generated once into an unlogged pristine table; each fresh copy is a TRUNCATE
and an INSERT ... SELECT from it with the indexes built afterwards. Before every measurement
VACUUM ANALYZE and CHECKPOINT run. The server is the one ``BENCH_POSTGRES_URL`` names
(default: the local one, user postgres); the database is created there, migrated with
``db.migrate.upgrade`` and dropped at the end, also on failure.

Run (progress on stderr, the results tables on stdout):

    .venv/bin/python benchmarks/evaluate.py [--predictions 1000000] [--coins 50] [--sample 2000]
    .venv/bin/python benchmarks/evaluate.py --predictions 100000 --no-variants   # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from time import perf_counter, sleep
from typing import Any, Literal
from unittest.mock import patch

import psycopg
from ingest import (
    Progress,
    conninfo,
    cpu_model,
    server_facts,
    settle,
    throwaway_database,
    timed,
)
from psycopg.types.json import Jsonb
from report import table
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import training.evaluate as evaluation_job
from db.engine import make_engine
from db.migrate import upgrade
from db.schema import Prediction, PriceData
from models.features import COIN_FEATURES
from training.evaluate import ACCURACY_FLOOR, DEFAULT_THRESHOLD
from training.live_metrics import LIVE_SUMS_KEY

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_PREDICTIONS = 1_000_000
DEFAULT_COINS = 50
DEFAULT_SAMPLE = 2_000
HORIZON_HOURS = 24
START = datetime(2022, 1, 1, tzinfo=UTC)
SEED = 2024
PAYLOAD_KINDS = 997  # distinct JSONB payloads, assigned round-robin; a prime, so not per coin
INCREMENT_REPEAT = 3
STATS_WAIT_S = 15.0
STATS_FLUSH_S = 1.2  # a backend sends its statistics at most once a second
# The parts of evaluate() timed separately: the function in training.evaluate -> phase.
PHASES = {
    "_backfill_predictions": "update",
    "update_live_metrics": "live metrics",
    "evaluate_suggestions": "outcomes",
    "evaluate_signals": "outcomes",
    "_unrealized_counts": "counts",
}

PRISTINE = "bench_pristine"
PAYLOADS = "bench_payloads"
EXPECTED = "bench_expected"
TRIGGER = "update_predictions_updated_at"
COMPOSITE = "idx_predictions_composite"
GIN = "idx_predictions_context_data"
PARTIAL_INDEX = "bench_predictions_due"
PARTIAL_PREDICATES = ("NOT is_realized", "is_realized IS false")
JSON_COLUMNS = (
    "predicted_value",
    "features_used",
    "model_parameters",
    "input_features",
    "context_data",
    "debug_info",
)
RESULT_COLUMNS = (
    "actual_price",
    "absolute_error",
    "squared_error",
    "accuracy_percentage",
    "is_accurate",
)
HYPERPARAMETERS = {
    "max_depth": 6,
    "learning_rate": 0.05,
    "n_estimators": 400,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 5,
}
SECTORS = ("DeFi", "Layer 1 Blockchains", "Infrastructure", "Meme Coins", "Layer 2 Solutions")
REGIMES = ("bull", "bear", "sideways", "volatile")

# A deterministic pseudo-random fraction in [0, 1) of the row number n, salted.
UNIFORM = "(((g.n + {salt})::bigint * 2654435761) %% 4294967291) / 4294967291.0"

CANDLES_SQL = """
INSERT INTO price_data (crypto_id, timestamp, open_price, high_price, low_price, close_price,
                        volume, market_cap)
SELECT c.id, %(start)s + h * interval '1 hour', x.price * 0.999, x.price * 1.004,
       x.price * 0.995, x.price, 1000000 + h, x.price * 1000000
FROM cryptocurrencies c
CROSS JOIN generate_series(0, %(hours)s - 1) AS h
CROSS JOIN LATERAL (
    SELECT round(((c.id * 7) %% 400 + 1)
                 * exp(0.3 * sin(h / 97.0 + c.id) + 0.05 * sin(h / 5.0))::numeric, 8) AS price
) AS x
ORDER BY h, c.id
"""

PREDICTIONS_SQL = f"""
INSERT INTO {PRISTINE} (
    id, crypto_id, model_name, model_version, layer_source, prediction_type, predicted_price,
    predicted_value, confidence_score, prediction_horizon, target_datetime, features_used,
    model_parameters, input_price, input_features, context_data, is_realized,
    accuracy_threshold, training_data_end, market_conditions, volatility_level,
    prediction_time, debug_info, created_at, updated_at)
SELECT g.n + 1, g.crypto_id, 'asset_price', '3', 3, 'price',
       round(t.close_price * (0.92 + 0.16 * {UNIFORM.format(salt=0)}), 8),
       p.predicted_value, round({UNIFORM.format(salt=7919)}, 4), {HORIZON_HOURS},
       t.timestamp, p.features_used, p.model_parameters, i.close_price, p.input_features,
       p.context_data, false, 5.00, %(training_end)s, p.context_data -> 'regime' ->> 'regime',
       'medium', round(0.002 + 0.01 * {UNIFORM.format(salt=104729)}, 6), p.debug_info,
       i.timestamp, i.timestamp
FROM (
    SELECT c.id AS crypto_id, h * %(coins)s + c.rn AS n, h
    FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS rn FROM cryptocurrencies) AS c
    CROSS JOIN generate_series(0, %(hours)s - 1) AS h
) AS g
JOIN price_data i ON i.crypto_id = g.crypto_id AND i.timestamp = %(start)s + g.h * interval '1 hour'
JOIN price_data t ON t.crypto_id = g.crypto_id
                 AND t.timestamp = %(start)s + (g.h + {HORIZON_HOURS}) * interval '1 hour'
JOIN {PAYLOADS} p ON p.k = g.n %% {PAYLOAD_KINDS}
WHERE g.n < %(predictions)s
ORDER BY g.n
"""

# The read side of the job alone: the same join, predicate and expressions, nothing written.
READ_ONLY_SQL = """
SELECT count(*),
       sum(d.close_price),
       sum(abs(p.predicted_price - d.close_price)),
       sum((p.predicted_price - d.close_price) * (p.predicted_price - d.close_price)),
       sum(greatest(100 - abs(p.predicted_price - d.close_price) * 100 / d.close_price,
                    -999.99)),
       count(*) FILTER (WHERE abs(p.predicted_price - d.close_price) * 100
                              <= coalesce(p.accuracy_threshold, 5.0) * d.close_price)
FROM predictions p
JOIN price_data d ON d.crypto_id = p.crypto_id AND d.timestamp = p.target_datetime
WHERE NOT p.is_realized AND p.target_datetime <= %(as_of)s
"""

RESET_SAMPLE_SQL = f"""
UPDATE predictions
SET is_realized = false, actual_price = NULL, absolute_error = NULL, squared_error = NULL,
    accuracy_percentage = NULL, is_accurate = NULL, evaluated_at = NULL
WHERE id IN (SELECT id FROM {EXPECTED})
"""

_columns = ", ".join(RESULT_COLUMNS)
_prefixed = ", ".join(f"p.{column}" for column in RESULT_COLUMNS)
_expected = ", ".join(f"e.{column}" for column in RESULT_COLUMNS)
SAVE_EXPECTED_SQL = f"""
CREATE TABLE {EXPECTED} AS
SELECT id, {_columns} FROM predictions ORDER BY target_datetime DESC, id DESC LIMIT %(sample)s
"""
MATCHING_SQL = f"""
SELECT count(*) FROM {EXPECTED} e JOIN predictions p USING (id)
WHERE p.is_realized AND ({_prefixed}) IS NOT DISTINCT FROM ({_expected})
"""

ASYNC_COMMIT = "-c synchronous_commit=off"
IndexSet = Literal["all", "pk only", "spec composite", "no gin"]
# The spec's idx_predictions_composite, which migration 0003 rebuilt without is_realized.
SPEC_COMPOSITE = (
    f"CREATE INDEX {COMPOSITE} ON public.predictions"
    " USING btree (crypto_id, is_realized, created_at DESC)"
)
AS_MIGRATED = -1  # Variant.fillfactor: keep the table's storage options as migrated


@dataclass(frozen=True)
class Variant:
    """One state of the predictions table that (1) runs on."""

    key: str
    label: str
    indexes: IndexSet = "all"
    trigger: bool = True
    options: str = ""  # libpq options of evaluate()'s connection
    fillfactor: int | None = AS_MIGRATED  # None: the default (100)
    narrow: bool = False


BASE = Variant("base", "as migrated (= (1))")
VARIANTS = (
    Variant("no trigger", "updated_at trigger disabled", trigger=False),
    Variant("pk only", "indexes dropped but the primary key", indexes="pk only"),
    Variant("no gin", f"only {GIN} dropped", indexes="no gin"),
    Variant("async commit", "synchronous_commit off", options=ASYNC_COMMIT),
    Variant("wal lz4", "wal_compression = lz4", options="-c wal_compression=lz4"),
    Variant("narrow rows", "the six JSONB columns NULL", narrow=True),
    Variant(
        "floor",
        "pk only + no trigger + async commit",
        indexes="pk only",
        trigger=False,
        options=ASYNC_COMMIT,
    ),
    Variant(
        "spec",
        f"the spec's {COMPOSITE} (with is_realized), fillfactor 100: no update can be HOT",
        indexes="spec composite",
        fillfactor=None,
    ),
    Variant("base again", "as migrated, measured again last (the noise)"),
)


@dataclass(frozen=True)
class Measurement:
    """One timed evaluate() call and what the server did for it."""

    label: str
    rows: int
    seconds: float
    update_s: float  # _backfill_predictions: the UPDATE
    count_s: float  # the two _count calls
    live_s: float  # update_live_metrics
    outcomes_s: float  # evaluate_suggestions + evaluate_signals
    wal_bytes: int
    wal_fpi: int
    checkpoints: int
    hot: int
    load: float
    plan: str

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def rest_s(self) -> float:
        """The system_health row, the commit, session and Python."""
        return self.seconds - self.update_s - self.count_s - self.live_s - self.outcomes_s


@dataclass(frozen=True)
class NaiveResult:
    rows: int
    seconds: float
    load_s: float  # the query that loads the due predictions as ORM objects
    loop_s: float  # candle queries, Python, autoflushed UPDATEs
    commit_s: float
    matching: int  # rows equal to what evaluate() wrote


@dataclass(frozen=True)
class Shape:
    """The data set."""

    coins: int
    predictions: int
    candles: int
    hours: int
    as_of: datetime
    heap_mb: float
    toast_mb: float
    index_mb: float
    indexes: int


@dataclass
class Results:
    ours: Measurement | None = None
    read_only_s: float = 0.0
    read_only_plan: str = ""
    naive: NaiveResult | None = None
    increment: Measurement | None = None
    increment_partial: list[Measurement] | None = None
    variants: list[Measurement] | None = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--predictions",
        type=int,
        default=DEFAULT_PREDICTIONS,
        help="due predictions to evaluate (default 1,000,000)",
    )
    parser.add_argument("--coins", type=int, default=DEFAULT_COINS, help="coins (default 50)")
    parser.add_argument(
        "--sample",
        type=int,
        default=DEFAULT_SAMPLE,
        help="predictions for the naive ORM loop (default 2,000)",
    )
    parser.add_argument(
        "--variants",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure where the time goes (a fresh copy per variant; the longest part)",
    )
    args = parser.parse_args(argv)
    if args.coins < 1:
        parser.error("--coins must be at least 1")
    if args.predictions < args.coins:
        parser.error("--predictions must be at least --coins")
    if not 1 <= args.sample <= args.predictions:
        parser.error("--sample must be between 1 and --predictions")
    return args


# --------------------------------------------------------------------------- database


def scalar(maintenance: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    row = maintenance.execute(query, params).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {query!r}")
    return row[0]


def index_definitions(maintenance: psycopg.Connection[Any]) -> dict[str, str]:
    """The predictions indexes the migrations made, but the primary key: name -> DDL."""
    rows = maintenance.execute(
        "SELECT indexname, indexdef FROM pg_indexes "
        "WHERE tablename = 'predictions' AND indexname <> 'predictions_pkey' ORDER BY indexname"
    ).fetchall()
    return {name: ddl for name, ddl in rows}


def wanted_indexes(definitions: dict[str, str], indexes: IndexSet) -> list[str]:
    dropped: dict[IndexSet, set[str]] = {
        "all": set(),
        "pk only": set(definitions),
        "spec composite": {COMPOSITE},
        "no gin": {GIN},
    }
    wanted = [ddl for name, ddl in definitions.items() if name not in dropped[indexes]]
    return [*wanted, SPEC_COMPOSITE] if indexes == "spec composite" else wanted


def migrated_fillfactor(maintenance: psycopg.Connection[Any]) -> int | None:
    """The fillfactor the migrations gave predictions (None: the default)."""
    options = scalar(maintenance, "SELECT reloptions FROM pg_class WHERE relname = 'predictions'")
    for option in options or []:
        key, _, value = option.partition("=")
        if key == "fillfactor":
            return int(value)
    return None


# --------------------------------------------------------------------------- set-up


def payload_rows(seed: int) -> list[tuple[Any, ...]]:
    """PAYLOAD_KINDS sets of JSONB values shaped like those serving.batch.analyze writes."""
    rng = random.Random(seed)
    names = list(COIN_FEATURES)
    versions = {"macro": "3", "sector": "3", "asset": "3", "timing": "3"}
    rows = []
    for k in range(PAYLOAD_KINDS):
        features = {name: rng.gauss(0.0, 0.05) for name in names}
        top = sorted(names, key=lambda name: -abs(features[name]))[:5]
        regime = {"regime": rng.choice(REGIMES), "confidence": rng.random()}
        context = {
            "as_of": (START + timedelta(hours=k)).isoformat(),
            "regime": regime,
            "sector": rng.choice(SECTORS),
            "sector_strength": rng.gauss(0.0, 1.0),
            "model_versions": versions,
        }
        rows.append(
            (
                k,
                Jsonb({"predicted_log_return": rng.gauss(0.0, 0.02)}),
                Jsonb(names),
                Jsonb(HYPERPARAMETERS),
                Jsonb(features),
                Jsonb(context),
                Jsonb({"top_contributions": {name: rng.gauss(0.0, 0.01) for name in top}}),
            )
        )
    return rows


def build_data(
    maintenance: psycopg.Connection[Any], predictions: int, coins: int, progress: Progress
) -> tuple[int, int, datetime]:
    """Coins, candles and the pristine predictions; returns (hours, candles, as_of)."""
    hours = -(-predictions // coins)
    candle_hours = hours + HORIZON_HOURS
    progress(f"inserting {coins} coins and {coins * candle_hours:,} hourly candles")
    maintenance.execute(
        "INSERT INTO cryptocurrencies (symbol, name) "
        "SELECT 'C' || lpad(i::text, 4, '0'), 'Coin ' || i FROM generate_series(1, %s) i",
        (coins,),
    )
    maintenance.execute(CANDLES_SQL, {"start": START, "hours": candle_hours})
    # The version the predictions name, registered as training leaves it (validation
    # figures, empty live sums), so the live metrics are written back.
    maintenance.execute(
        "INSERT INTO ai_models (name, version, model_type, status, performance_metrics) "
        "VALUES ('asset_price', '3', 'asset', 'active', %s)",
        (Jsonb({"validation": {"accuracy_rate": 0.6}, LIVE_SUMS_KEY: {}}),),
    )
    progress(f"generating {predictions:,} predictions into the pristine table")
    maintenance.execute(
        f"CREATE TABLE {PAYLOADS} (k integer PRIMARY KEY, predicted_value jsonb, "
        "features_used jsonb, model_parameters jsonb, input_features jsonb, "
        "context_data jsonb, debug_info jsonb)"
    )
    with maintenance.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {PAYLOADS} VALUES (%s, %s, %s, %s, %s, %s, %s)", payload_rows(SEED)
        )
    maintenance.execute(
        f"CREATE UNLOGGED TABLE {PRISTINE} AS SELECT * FROM predictions WITH NO DATA"
    )
    maintenance.execute(
        PREDICTIONS_SQL,
        {
            "start": START,
            "hours": hours,
            "coins": coins,
            "predictions": predictions,
            "training_end": START - timedelta(days=1),
        },
    )
    maintenance.execute(f"ANALYZE {PRISTINE}")
    made = scalar(maintenance, f"SELECT count(*) FROM {PRISTINE}")
    if made != predictions:
        raise RuntimeError(f"generated {made} predictions, expected {predictions}")
    return hours, coins * candle_hours, START + timedelta(hours=candle_hours)


def restore(
    maintenance: psycopg.Connection[Any],
    definitions: dict[str, str],
    variant: Variant,
    migrated: int | None,
) -> None:
    """A fresh copy of the unrealized predictions, in the shape ``variant`` asks for."""
    for name in index_definitions(maintenance):
        maintenance.execute(f"DROP INDEX {name}")
    maintenance.execute("TRUNCATE predictions")
    fillfactor = migrated if variant.fillfactor == AS_MIGRATED else variant.fillfactor
    if fillfactor is None:
        maintenance.execute("ALTER TABLE predictions RESET (fillfactor)")
    else:
        maintenance.execute(f"ALTER TABLE predictions SET (fillfactor = {fillfactor})")
    state = "ENABLE" if variant.trigger else "DISABLE"
    maintenance.execute(f"ALTER TABLE predictions {state} TRIGGER {TRIGGER}")
    columns = [
        row[0]
        for row in maintenance.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (PRISTINE,),
        ).fetchall()
    ]
    values = [
        f"NULL::jsonb AS {name}" if variant.narrow and name in JSON_COLUMNS else name
        for name in columns
    ]
    # Set-up only: no foreign-key checks for rows generated from the stored coins.
    maintenance.execute("SET session_replication_role = replica")
    try:
        maintenance.execute(
            f"INSERT INTO predictions ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} FROM {PRISTINE} ORDER BY id"
        )
    finally:
        maintenance.execute("SET session_replication_role = origin")
    for ddl in wanted_indexes(definitions, variant.indexes):
        maintenance.execute(ddl)


def shape(
    maintenance: psycopg.Connection[Any], coins: int, hours: int, candles: int, as_of: datetime
) -> Shape:
    def mb(query: str) -> float:
        return float(scalar(maintenance, query)) / 1e6

    return Shape(
        coins=coins,
        predictions=scalar(maintenance, "SELECT count(*) FROM predictions"),
        candles=candles,
        hours=hours,
        as_of=as_of,
        heap_mb=mb("SELECT pg_relation_size('predictions')"),
        toast_mb=mb("SELECT pg_table_size('predictions') - pg_relation_size('predictions')"),
        index_mb=mb("SELECT pg_indexes_size('predictions')"),
        indexes=scalar(
            maintenance, "SELECT count(*) FROM pg_indexes WHERE tablename = 'predictions'"
        ),
    )


# --------------------------------------------------------------------------- measurements


def plan_recorder(plans: dict[str, str], clock: dict[str, float]) -> type[psycopg.Cursor[Any]]:
    """A psycopg cursor that records the plan of the first UPDATE of predictions (EXPLAIN,
    planning only; its seconds go to ``clock["explain"]`` and are taken off the total)."""

    class PlanRecorder(psycopg.Cursor[Any]):
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            words = " ".join(str(query).split()).lower()
            # evaluate() runs its UPDATE inside a WITH that sums what it RETURNs.
            if "update predictions" in words[:60] and "update" not in plans:
                start = perf_counter()
                super().execute(f"EXPLAIN (FORMAT JSON) {query}", *args, **kwargs)
                row = self.fetchone()
                plans["update"] = "?" if row is None else plan_outline(row[0])
                clock["explain"] += perf_counter() - start
            return super().execute(query, *args, **kwargs)

    return PlanRecorder


@contextmanager
def timed_phases(clock: dict[str, float]) -> Iterator[None]:
    """Time the parts of evaluate() by wrapping the functions it calls (those that exist)."""
    with ExitStack() as stack:
        for attribute, phase in PHASES.items():
            function = getattr(evaluation_job, attribute, None)
            if function is not None:
                wrapper = timed(function, clock, phase)
                stack.enter_context(patch.object(evaluation_job, attribute, wrapper))
        yield


def plan_outline(explained: Any) -> str:
    """An EXPLAIN (FORMAT JSON) result as one line: node(children, ...)."""
    document = json.loads(explained) if isinstance(explained, str) else explained

    def outline(node: dict[str, Any]) -> str:
        name = node["Node Type"]
        if "Relation Name" in node:
            name += f" on {node['Relation Name']}"
        if "Index Name" in node:
            name += f" using {node['Index Name']}"
        children = [outline(child) for child in node.get("Plans", [])]
        return f"{name}({', '.join(children)})" if children else name

    return outline(document[0]["Plan"])


@dataclass(frozen=True)
class ServerCounters:
    wal_lsn: str
    wal_fpi: int
    checkpoints: int
    updates: int
    hot: int


def counters(maintenance: psycopg.Connection[Any]) -> ServerCounters:
    maintenance.execute("SELECT pg_stat_clear_snapshot()")
    row = maintenance.execute(
        "SELECT pg_current_wal_insert_lsn()::text, w.wal_fpi, b.checkpoints_req + "
        "b.checkpoints_timed, t.n_tup_upd, t.n_tup_hot_upd "
        "FROM pg_stat_wal w, pg_stat_bgwriter b, pg_stat_user_tables t "
        "WHERE t.relname = 'predictions'"
    ).fetchone()
    if row is None:
        raise RuntimeError("no statistics for predictions")
    return ServerCounters(*row)


def counters_after(
    maintenance: psycopg.Connection[Any], before: ServerCounters, updated: int
) -> ServerCounters:
    """The counters once the measured backend's statistics have reached the server (it
    reports them when it goes idle or exits, within about a second)."""
    deadline = perf_counter() + STATS_WAIT_S
    while True:
        after = counters(maintenance)
        if after.updates - before.updates >= updated or perf_counter() > deadline:
            return after
        sleep(0.2)


def time_evaluate(
    url: str,
    maintenance: psycopg.Connection[Any],
    as_of: datetime,
    expected: int,
    label: str,
    options: str = "",
) -> Measurement:
    """One evaluate() call on a fresh engine, timed from outside, its phases inside."""
    clock: dict[str, float] = defaultdict(float)
    plans: dict[str, str] = {}
    connect_args: dict[str, Any] = {"cursor_factory": plan_recorder(plans, clock)}
    if options:
        connect_args["options"] = options
    engine = make_engine(url, connect_args=connect_args)
    try:
        with engine.connect():
            pass  # open the pooled connection before the clock starts
        clock.clear()
        sleep(STATS_FLUSH_S)  # let the set-up's statistics reach the server first
        before = counters(maintenance)
        with timed_phases(clock):
            start = perf_counter()
            summary = evaluation_job.evaluate(engine, as_of=as_of)
            seconds = perf_counter() - start - clock["explain"]
    finally:
        engine.dispose()
    if summary.evaluated != expected or summary.waiting_for_candle or summary.not_yet_due:
        raise RuntimeError(f"evaluate() reported {summary}, expected {expected} evaluated")
    after = counters_after(maintenance, before, expected)
    wal = scalar(maintenance, "SELECT pg_wal_lsn_diff(%s, %s)", (after.wal_lsn, before.wal_lsn))
    return Measurement(
        label=label,
        rows=summary.evaluated,
        seconds=seconds,
        update_s=clock["update"] - clock["explain"],  # the EXPLAIN ran inside the UPDATE phase
        count_s=clock["counts"],
        live_s=clock["live metrics"],
        outcomes_s=clock["outcomes"],
        wal_bytes=int(wal),
        wal_fpi=after.wal_fpi - before.wal_fpi,
        checkpoints=after.checkpoints - before.checkpoints,
        hot=after.hot - before.hot,
        load=os.getloadavg()[0],
        plan=plans.get("update", "?"),
    )


def time_read_only(
    maintenance: psycopg.Connection[Any], as_of: datetime, expected: int
) -> tuple[float, str]:
    maintenance.execute("SET max_parallel_workers_per_gather = 0")
    try:
        explained = scalar(maintenance, f"EXPLAIN (FORMAT JSON) {READ_ONLY_SQL}", {"as_of": as_of})
        start = perf_counter()
        rows = scalar(maintenance, READ_ONLY_SQL, {"as_of": as_of})
        seconds = perf_counter() - start
    finally:
        maintenance.execute("RESET max_parallel_workers_per_gather")
    if rows != expected:
        raise RuntimeError(f"the read-only join found {rows} rows, expected {expected}")
    return seconds, plan_outline(explained)


def apply_evaluation(prediction: Prediction, actual: Decimal, evaluated_at: datetime) -> None:
    """The columns evaluate() sets, computed in Python."""
    error = abs(prediction.predicted_price - actual)
    threshold = prediction.accuracy_threshold
    if threshold is None:
        threshold = DEFAULT_THRESHOLD
    accuracy = 100 - error * 100 / actual
    prediction.actual_price = actual
    prediction.absolute_error = error
    prediction.squared_error = (prediction.predicted_price - actual) ** 2
    prediction.accuracy_percentage = max(accuracy, ACCURACY_FLOOR)
    prediction.is_accurate = error * 100 <= threshold * actual
    prediction.is_realized = True
    prediction.evaluated_at = evaluated_at


def naive_loop(url: str, as_of: datetime) -> tuple[int, float, float, float]:
    """The per-row ORM job: rows evaluated and seconds to load, loop and commit."""
    engine = make_engine(url)
    try:
        with engine.connect():
            pass
        evaluated_at = datetime.now(UTC)
        evaluated = 0
        start = perf_counter()
        with Session(engine) as session:
            due = session.scalars(
                select(Prediction)
                .where(Prediction.is_realized.is_(False), Prediction.target_datetime <= as_of)
                .order_by(Prediction.id)
            ).all()
            loaded = perf_counter()
            for prediction in due:
                actual = session.scalar(
                    select(PriceData.close_price).where(
                        PriceData.crypto_id == prediction.crypto_id,
                        PriceData.timestamp == prediction.target_datetime,
                    )
                )
                if actual is None:
                    continue
                apply_evaluation(prediction, actual, evaluated_at)
                evaluated += 1
            looped = perf_counter()
            session.commit()
        committed = perf_counter()
    finally:
        engine.dispose()
    return evaluated, loaded - start, looped - loaded, committed - looped


def time_naive(
    url: str, maintenance: psycopg.Connection[Any], as_of: datetime, sample: int
) -> NaiveResult:
    evaluated, load_s, loop_s, commit_s = naive_loop(url, as_of)
    if evaluated != sample:
        raise RuntimeError(f"the naive loop evaluated {evaluated} rows, expected {sample}")
    return NaiveResult(
        rows=evaluated,
        seconds=load_s + loop_s + commit_s,
        load_s=load_s,
        loop_s=loop_s,
        commit_s=commit_s,
        matching=scalar(maintenance, MATCHING_SQL),
    )


def reset_sample(maintenance: psycopg.Connection[Any]) -> None:
    maintenance.execute(RESET_SAMPLE_SQL)
    settle(maintenance)


def time_increment(
    url: str, maintenance: psycopg.Connection[Any], as_of: datetime, sample: int, label: str
) -> Measurement:
    """Best of INCREMENT_REPEAT runs of evaluate() over the reset sample."""
    best: Measurement | None = None
    for _ in range(INCREMENT_REPEAT):
        reset_sample(maintenance)
        measured = time_evaluate(url, maintenance, as_of, sample, label)
        if best is None or measured.seconds < best.seconds:
            best = measured
    assert best is not None
    return best


def time_variant(
    url: str,
    maintenance: psycopg.Connection[Any],
    definitions: dict[str, str],
    variant: Variant,
    as_of: datetime,
    predictions: int,
    migrated: int | None,
) -> Measurement:
    restore(maintenance, definitions, variant, migrated)
    settle(maintenance)
    return time_evaluate(
        url,
        maintenance,
        as_of,
        predictions,
        f"{variant.key}: {variant.label}",
        options=variant.options,
    )


def run(url: str, args: argparse.Namespace, progress: Progress) -> tuple[Results, Shape, str]:
    results = Results()
    with psycopg.connect(conninfo(url), autocommit=True) as maintenance:
        server = server_facts(maintenance)
        maintenance.execute("SET maintenance_work_mem = '256MB'")
        definitions = index_definitions(maintenance)
        migrated = migrated_fillfactor(maintenance)
        hours, candles, as_of = build_data(maintenance, args.predictions, args.coins, progress)
        progress("copying the predictions into the migrated table, building its indexes")
        restore(maintenance, definitions, BASE, migrated)
        settle(maintenance)
        data = shape(maintenance, args.coins, hours, candles, as_of)

        progress("read side alone: SELECT over the same join and expressions")
        results.read_only_s, results.read_only_plan = time_read_only(
            maintenance, as_of, args.predictions
        )
        progress(f"  {results.read_only_s:.1f} s")
        settle(maintenance)
        progress(f"(1) ours: evaluate() over {args.predictions:,} due predictions")
        results.ours = time_evaluate(
            url, maintenance, as_of, args.predictions, f"{BASE.key}: {BASE.label}"
        )
        progress(f"  {results.ours.seconds:.1f} s, {results.ours.rate:,.0f} rows/s")

        progress(f"keeping the newest {args.sample:,} results; VACUUM FULL predictions")
        maintenance.execute(SAVE_EXPECTED_SQL, {"sample": args.sample})
        maintenance.execute("VACUUM FULL predictions")
        reset_sample(maintenance)
        progress(f"(2) naive ORM loop over {args.sample:,} reset predictions")
        results.naive = time_naive(url, maintenance, as_of, args.sample)
        progress(f"  {results.naive.seconds:.1f} s, {results.naive.matching} rows as (1)")
        if results.naive.matching != args.sample:
            raise RuntimeError(
                f"the naive loop agrees with evaluate() on {results.naive.matching} of "
                f"{args.sample} rows"
            )

        progress(f"ours on the same {args.sample:,} reset predictions, best of 3")
        results.increment = time_increment(
            url, maintenance, as_of, args.sample, "ours on the same reset rows, as migrated"
        )
        progress(f"  {results.increment.seconds:.2f} s")
        results.increment_partial = []
        for predicate in PARTIAL_PREDICATES:
            label = f"the same + index (target_datetime) WHERE {predicate}"
            progress(label)
            maintenance.execute(
                f"CREATE INDEX {PARTIAL_INDEX} ON predictions (target_datetime) WHERE {predicate}"
            )
            measured = time_increment(url, maintenance, as_of, args.sample, label)
            maintenance.execute(f"DROP INDEX {PARTIAL_INDEX}")
            results.increment_partial.append(measured)
            progress(f"  {measured.seconds:.2f} s")

        if args.variants:
            results.variants = [results.ours]
            for number, variant in enumerate(VARIANTS, start=1):
                progress(f"variant {number} of {len(VARIANTS)}: {variant.key} ({variant.label})")
                measured = time_variant(
                    url, maintenance, definitions, variant, as_of, args.predictions, migrated
                )
                progress(f"  {measured.seconds:.1f} s, {measured.rate:,.0f} rows/s")
                results.variants.append(measured)
    return results, data, server


# --------------------------------------------------------------------------- report


def seconds_cell(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def main_table(results: Results, data: Shape) -> str:
    assert results.ours and results.naive and results.increment
    naive = results.naive

    def ours(measured: Measurement, label: str) -> list[str]:
        return [
            label,
            f"{measured.rows:,}",
            seconds_cell(measured.seconds),
            f"{measured.rate:,.0f}",
            seconds_cell(measured.update_s),
            seconds_cell(measured.count_s),
            seconds_cell(measured.live_s),
        ]

    def part(label: str, seconds: float) -> list[str]:
        return [f"    {label}", "", seconds_cell(seconds), "", "", "", ""]

    rows = [
        ours(results.ours, "(1) ours: evaluate(), all due predictions"),
        [
            "(2) naive ORM loop over the newest predictions, reset",
            f"{naive.rows:,}",
            seconds_cell(naive.seconds),
            f"{naive.rows / naive.seconds:,.0f}",
            "",
            "",
            "",
        ],
        part("load the due rows (one SELECT of ORM objects)", naive.load_s),
        part("per row: candle query, Python, autoflushed UPDATE", naive.loop_s),
        part("commit", naive.commit_s),
    ]
    for measured in [results.increment, *(results.increment_partial or [])]:
        rows.append(ours(measured, f"{measured.label} (best of {INCREMENT_REPEAT})"))
    rows.append(
        [
            "read side alone: SELECT of the same join + expressions",
            f"{data.predictions:,}",
            seconds_cell(results.read_only_s),
            f"{data.predictions / results.read_only_s:,.0f}",
            "",
            "",
            "",
        ]
    )
    header = ["measurement", "rows", "seconds", "rows/s", "UPDATE s", "counts s", "live s"]
    return table(header, rows)


def variants_table(variants: list[Measurement]) -> str:
    base = variants[0]
    rows = [
        [
            measured.label,
            seconds_cell(measured.seconds),
            f"{measured.rate:,.0f}",
            seconds_cell(measured.update_s),
            f"{measured.count_s:.1f}",
            f"{measured.live_s:.1f}",
            f"{measured.outcomes_s + measured.rest_s:.2f}",
            f"{measured.wal_bytes / 1e6:,.0f}",
            f"{measured.wal_bytes / measured.rows:,.0f}",
            f"{measured.wal_fpi:,}",
            str(measured.checkpoints),
            f"{measured.hot / measured.rows:.0%}",
            f"{measured.seconds - base.seconds:+.1f}",
            f"{measured.load:.1f}",
        ]
        for measured in variants
    ]
    header = [
        "variant",
        "seconds",
        "rows/s",
        "UPDATE s",
        "counts s",
        "live s",
        "rest s",
        "WAL MB",
        "WAL B/row",
        "FPI",
        "ckpt",
        "HOT",
        "vs base s",
        "load",
    ]
    return table(header, rows)


def breakdown_lines(results: Results, variants: list[Measurement]) -> list[str]:
    """The base UPDATE split by what each variant took away (the savings overlap)."""
    by_key = {measured.label.split(":")[0]: measured for measured in variants}
    base = by_key[BASE.key]
    reference = (base.update_s + by_key["base again"].update_s) / 2

    def saved(key: str) -> float:
        return reference - by_key[key].update_s

    floor = by_key["floor"].update_s
    parts = [
        ("read side: join + expressions (the SELECT alone)", results.read_only_s),
        ("new row versions, pk, WAL (floor UPDATE - read side)", floor - results.read_only_s),
        ("secondary index maintenance (base - pk only)", saved("pk only")),
        ("  of which the GIN index on context_data (base - no gin)", saved("no gin")),
        ("updated_at trigger (base - no trigger)", saved("no trigger")),
        ("synchronous_commit on (base - async commit)", saved("async commit")),
        ("full-page images uncompressed (base - wal lz4)", saved("wal lz4")),
        ("row width: the JSONB payloads (base - narrow rows)", saved("narrow rows")),
        ("saved by HOT updates (base - hot)", saved("hot")),
    ]
    title = f"base UPDATE, mean of the 2 base runs: {reference:.1f} s"
    lines = [f"{title:<60}{'seconds':>9}{'share':>8}{'us/row':>9}"]
    for name, seconds in parts:
        lines.append(
            f"{name:<60}{seconds:>9.1f}{seconds / reference:>8.0%}{seconds / base.rows * 1e6:>9.1f}"
        )
    lines += ["", f"{f'evaluate() as migrated: {base.seconds:.1f} s':<60}"]
    for name, seconds in [
        ("the UPDATE (_backfill_predictions)", base.update_s),
        ("live metrics over the whole history (update_live_metrics)", base.live_s),
        ("the two counts after the UPDATE (_count)", base.count_s),
        ("suggestions, signals, health row, commit, Python", base.outcomes_s + base.rest_s),
    ]:
        lines.append(
            f"{name:<60}{seconds:>9.1f}{seconds / base.seconds:>8.0%}"
            f"{seconds / base.rows * 1e6:>9.1f}"
        )
    return lines


def report(
    results: Results, data: Shape, server: str, where: str, wall: float, loads: list[float]
) -> str:
    assert results.ours and results.naive and results.increment
    ours = results.ours.rate
    naive = results.naive.rows / results.naive.seconds
    update_rate = results.ours.rows / results.ours.update_s
    lines = [
        f"Evaluation benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine   {os.cpu_count()} CPUs ({cpu_model()}), Python {sys.version.split()[0]}",
        f"database  {server} at {where}",
        f"data      {data.predictions:,} due predictions = {data.coins} coins x {data.hours:,} "
        f"hours (horizon {HORIZON_HOURS} h), {data.candles:,} hourly candles, as of "
        f"{data.as_of:%Y-%m-%d %H:%M}",
        f"table     predictions heap {data.heap_mb:,.0f} MB "
        f"({data.heap_mb * 1e6 / data.predictions:,.0f} B/row), TOAST {data.toast_mb:,.0f} MB, "
        f"{data.indexes} indexes {data.index_mb:,.0f} MB",
        f"run       whole benchmark {wall:.0f} s; "
        f"load average {min(loads):.1f} to {max(loads):.1f}",
        "",
        main_table(results, data),
        "",
        f"ours / naive                      {ours / naive:,.1f}x  (goal >= 50x: "
        f"{'met' if ours >= 50 * naive else 'NOT met'})",
        f"ours, the UPDATE alone / naive    {update_rate / naive:,.1f}x  "
        f"({update_rate:,.0f} rows/s)",
        f"ours on the same rows / naive     {results.increment.rate / naive:,.1f}x  "
        f"(the UPDATE alone {results.increment.rows / results.increment.update_s / naive:,.1f}x)",
        f"stretch goal 100,000 rows/s: {'met' if ours >= 100_000 else 'not met'} "
        f"({ours:,.0f} rows/s)",
        f"naive loop agrees with evaluate() on {results.naive.matching:,} of "
        f"{results.naive.rows:,} rows",
        "",
        f"plan of (1)'s UPDATE: {results.ours.plan}",
        f"plan of the sample run: {results.increment.plan}",
    ]
    for measured in results.increment_partial or []:
        lines.append(f"plan, {measured.label}: {measured.plan}")
    lines.append(f"plan of the read-only SELECT: {results.read_only_plan}")
    if results.variants:
        lines += [
            "",
            "Where the time goes: (1) on a fresh copy per variant (live = update_live_metrics; "
            "rest = suggestions, signals, health row, commit, Python; WAL and FPI server-wide)",
            "",
            variants_table(results.variants),
            "",
            *breakdown_lines(results, results.variants),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    admin_url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_URL)
    where = make_url(admin_url)
    loads = [os.getloadavg()[0]]
    progress = Progress()
    progress(f"creating and migrating a throwaway database on {where.host}")
    with throwaway_database(admin_url, prefix="bench_evaluate") as url:
        upgrade(url)
        results, data, server = run(url, args, progress)
        progress("dropping the throwaway database")
    loads.append(os.getloadavg()[0])
    measured = [results.ours, results.increment, *(results.increment_partial or [])]
    loads += [m.load for m in [*measured, *(results.variants or [])] if m is not None]
    wall = perf_counter() - progress.start
    print(report(results, data, server, f"{where.host}:{where.port}", wall, loads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
