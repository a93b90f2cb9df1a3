"""`cryptopredict train` and `cryptopredict models ...`: training and the ai_models registry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from functools import partial
from typing import overload

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from config.settings import get_settings
from cryptopredict.runtime import migrated_engine
from models.layers import LAYERS
from store import registry
from training.verdicts import edge_text, factor_text, interval_text, skill_text

# The estimators (xgboost, torch, mlflow) load inside the commands that need them, so that
# `--help` and the registry commands start in a fraction of the time.

app = typer.Typer(
    help="List, promote and roll back registered model versions.", no_args_is_help=True
)
console = Console(width=120)
WORKER_MEMORY = typer.Option(
    None,
    "--worker-memory",
    help="Memory limit of each local:N worker, e.g. 4GiB; default DASK_WORKER_MEMORY (auto).",
)


def train(
    layer: str = typer.Option("all", "--layer", "-l", help=f"One of {', '.join(LAYERS)} or 'all'."),
    symbols: list[str] | None = typer.Option(
        None, "--symbols", "-s", help="Coins to train on (repeat the option); default all."
    ),
    since: datetime | None = typer.Option(None, "--since", help="First candle hour (UTC)."),
    until: datetime | None = typer.Option(None, "--until", help="Last candle hour (UTC)."),
    horizons: list[int] | None = typer.Option(
        None,
        "--horizon",
        min=1,
        max=720,
        help="Hours ahead the asset family forecasts (repeat the option for several, one "
        "version line each); default FORECAST_HORIZONS.",
    ),
    folds: int = typer.Option(4, "--folds", min=2, help="Walk-forward folds."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same model."),
    force: bool = typer.Option(
        False, "--force", help="Activate the new versions even if they do not beat the active ones."
    ),
    fee: float = typer.Option(
        0.001,
        "--fee",
        min=0.0,
        max=0.05,
        help="Trading fee a side for the timing family (0.001 = 0.1 %): its expectancy after "
        "fees and which signals are worth entering.",
    ),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        help="Compute the training rows on a Dask cluster: local:N (N workers here) or a "
        "scheduler URL such as tcp://host:8786; default DASK_SCHEDULER_ADDRESS, else in-process.",
    ),
    worker_memory: str | None = WORKER_MEMORY,
    block_hours: int | None = typer.Option(
        None,
        "--block-hours",
        min=24,
        help="With --cluster: hours of rows one task computes (default 2184); its memory "
        "grows with (block + the family's warm-up, 816 to 2,544 hours) x coins.",
    ),
) -> None:
    """Train model families from price_data, track them in MLflow and register them in ai_models.

    Each family is validated walk-forward (purge gap = its label horizon) beside its naive
    baseline; what it serves is shrunk toward that baseline unless out-of-fold evidence shows
    skill. A new version becomes active only if its served output beats the active one's on
    the same validation window, unless --force. A family the data cannot support is skipped.
    """
    from models.families import FAMILIES
    from store.datasets import load_panel
    from store.tracking import configure_tracking, ui_command
    from training.train import (
        TrainingSource,
        TrainingStores,
        TrainSettings,
        as_source,
        outcome_table,
        train_layers,
    )

    layers = list(FAMILIES) if layer == "all" else [layer]
    if layer != "all" and layer not in FAMILIES:
        raise ValueError(f"unknown layer {layer!r}; choose one of {', '.join(FAMILIES)} or all")
    settings_env = get_settings()
    engine = migrated_engine()
    address = cluster or settings_env.dask_scheduler_address
    source: TrainingSource
    with ExitStack() as stack:
        if address:
            from cluster.blocks import DEFAULT_BLOCK_HOURS
            from cluster.connect import connect
            from cluster.source import ClusterSource

            dask_client = stack.enter_context(
                connect(address, worker_memory or settings_env.dask_worker_memory)
            )
            source = ClusterSource.open(
                dask_client,
                settings_env.resolved_database_url,
                symbols,
                _utc(since),
                _utc(until),
                block_hours or DEFAULT_BLOCK_HOURS,
            )
            where = f" on the cluster at {address}"
        else:
            source = as_source(load_panel(engine, symbols, _utc(since), _utc(until)))
            where = ""
        artifact_root = settings_env.artifact_root
        client = configure_tracking(settings_env.resolved_mlflow_tracking_uri, artifact_root)
        hours = int((source.last_hour - source.first_hour).total_seconds() // 3600) + 1
        console.print(
            f"training {', '.join(layers)} on {len(source.symbols)} coins, {hours} hours "
            f"({source.first_hour:%Y-%m-%d} to {source.last_hour:%Y-%m-%d}){where}"
        )
        outcomes = train_layers(
            TrainingStores(engine, client, artifact_root),
            source,
            layers,
            TrainSettings(
                forecast_horizons=tuple(sorted(set(horizons or settings_env.forecast_horizons))),
                params={
                    "asset": {"interval_level": settings_env.interval_level},
                    "timing": {"fee": fee},
                },
                n_folds=folds,
                random_state=seed,
                force=force,
            ),
            progress=lambda message: console.print(f"  {message}"),
        )
    summary = outcome_table(outcomes)
    table = Table(title="walk-forward validation (out-of-fold), served output beside its baseline")
    columns = ("family", "version", "metric", "served", "baseline", "skill (90%)", "edge")
    for column in (*columns, "status", "seconds"):
        table.add_column(column)
    for row in summary.itertuples(index=False):
        table.add_row(
            row.family,
            row.version,
            f"{row.metric} ({'lower' if row.lower_is_better else 'higher'} is better)",
            _number(row.model),
            _number(row.baseline),
            row.skill,
            row.edge,
            row.status,
            f"{row.seconds:.0f}",
        )
    console.print(table)
    for row in summary.itertuples(index=False):
        console.print(f"  {row.family} v{row.version or '-'}: {row.why}")
        if row.factor:
            console.print(f"    ranking: {row.factor}")
        if row.interval:
            console.print(f"    {row.interval}")
    console.print(f"MLflow UI: {ui_command(settings_env.resolved_mlflow_tracking_uri)}")


def _number(value: object) -> str:
    return "-" if not isinstance(value, int | float) or value != value else f"{value:.5g}"


@overload
def _utc(moment: datetime) -> datetime: ...
@overload
def _utc(moment: None) -> None: ...
def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@app.command("list")
def list_models() -> None:
    """Every registered version with its status and validation metric beside the baseline."""
    engine = migrated_engine()
    with Session(engine) as session, session.begin():
        # A run whose trainer died shows as `error`, not as `training` for ever.
        registry.reap_abandoned(session)
        rows = registry.list_models(session)
        table = Table(
            "name",
            "version",
            "type",
            "status",
            "metric",
            "served",
            "baseline",
            "skill (90%)",
            "edge",
            "ranking",
            "interval",
            "trained",
        )
        for row in rows:
            metrics = row.performance_metrics or {}
            metric = metrics.get("primary_metric", "")
            validation = metrics.get("validation", {})
            table.add_row(
                row.name,
                row.version,
                row.model_type,
                row.status or "",
                metric,
                _number(validation.get(metric)),
                _number(metrics.get("baseline", {}).get(metric)),
                skill_text(metrics.get("skill")),
                edge_text(metrics),
                factor_text(validation) or "",
                interval_text(metrics) or "",
                f"{row.last_trained:%Y-%m-%d %H:%M}" if row.last_trained else "-",
            )
    console.print(table if rows else "no model versions registered; run `cryptopredict train`")


@app.command()
def promote(
    name: str = typer.Argument(..., help="Model name, e.g. asset_price."),
    version: str = typer.Argument(..., help="Version to activate."),
) -> None:
    """Make VERSION of NAME the active (serving) version."""
    with Session(migrated_engine()) as session, session.begin():
        row = registry.promote(session, name, version)
        console.print(f"{row.name} version {row.version} is active")


@app.command()
def rollback(name: str = typer.Argument(..., help="Model name, e.g. asset_price.")) -> None:
    """Re-activate the version of NAME that served before the current one."""
    with Session(migrated_engine()) as session, session.begin():
        row = registry.rollback(session, name)
        console.print(f"{row.name} rolled back to version {row.version}")


def analyze(
    as_of: datetime | None = typer.Option(
        None,
        "--as-of",
        help="Analyse this hour (UTC) instead of the latest; with --since, the last hour.",
    ),
    since: datetime | None = typer.Option(
        None,
        "--since",
        help="Backfill: analyse every hour from this one (UTC) to --as-of (default the latest "
        "candle), each as it stood then; hours analysed before by the same versions are skipped.",
    ),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        help="With --since: spread the hours over a Dask cluster, local:N (N workers here) or a "
        "scheduler URL such as tcp://host:8786; default DASK_SCHEDULER_ADDRESS, else in-process.",
    ),
    worker_memory: str | None = WORKER_MEMORY,
    run_hours: int = typer.Option(
        24, "--run-hours", min=1, help="With --cluster: consecutive hours one task analyses."
    ),
) -> None:
    """Run the active models at the latest hour (or --as-of, or every hour from --since) and
    write every layer table: regime, sentiment, dominance, indicators, sectors, predictions,
    suggestions, signals.
    """
    from store.tracking import configure_tracking

    engine = migrated_engine()
    settings_env = get_settings()
    configure_tracking(settings_env.resolved_mlflow_tracking_uri, settings_env.artifact_root)
    if since is None:
        _analyse_one_hour(engine, _utc(as_of))
        return
    hours = _backfill_hours(engine, _utc(since), _utc(as_of))
    address = cluster or settings_env.dask_scheduler_address
    where = f" on the cluster at {address}" if address else ""
    span = f"{hours[0]:%Y-%m-%d %H:%M} to {hours[-1]:%Y-%m-%d %H:%M} UTC"
    console.print(f"analysing {len(hours)} hours, {span}{where}")
    with Progress(console=console, transient=True) as progress:
        advance = partial(progress.advance, progress.add_task("hours", total=len(hours)))
        if address:
            memory = worker_memory or settings_env.dask_worker_memory
            analysed = _backfill_on_cluster(address, memory, hours, run_hours, advance)
        else:
            analysed = _backfill_here(engine, hours, advance)
    _report_backfill(analysed)


def _backfill_here(
    engine: Engine, hours: list[datetime], advance: Callable[[int], None]
) -> list[tuple[datetime, dict[str, int]]]:
    from serving.batch.backfill import analysed_hours
    from serving.inference.models_cache import ActiveModels
    from serving.inference.predictor import Predictor

    analysed = []
    for hour, written in analysed_hours(engine, Predictor(ActiveModels(engine)), hours):
        analysed.append((hour, written))
        advance(1)
    return analysed


def _backfill_on_cluster(
    address: str,
    worker_memory: str,
    hours: list[datetime],
    run_hours: int,
    advance: Callable[[int], None],
) -> list[tuple[datetime, dict[str, int]]]:
    from cluster.connect import connect
    from serving.batch.cluster_backfill import Stores, backfill_on_cluster

    settings_env = get_settings()
    stores = Stores(
        settings_env.resolved_database_url,
        settings_env.resolved_mlflow_tracking_uri,
        settings_env.artifact_root,
    )
    with connect(address, worker_memory) as client:
        return backfill_on_cluster(client, stores, hours, run_hours, advance)


def _analyse_one_hour(engine: Engine, as_of: datetime | None) -> None:
    from serving.batch.analyze import analyze as run_analysis
    from serving.inference.models_cache import ActiveModels
    from serving.inference.predictor import Predictor
    from store.datasets import load_window

    predictor = Predictor(ActiveModels(engine))
    # Only the hours the features need, not the whole history (`recent` keeps no more).
    panel = load_window(engine, predictor.history_hours(), until=as_of)
    report = run_analysis(engine, predictor, panel)
    table = Table("table", "rows written", title=f"analysis at {report.as_of:%Y-%m-%d %H:%M} UTC")
    for name, count in sorted(report.written.items()):
        table.add_row(name, str(count))
    console.print(table)
    for note in report.skipped:
        console.print(f"  skipped {note}")


def _backfill_hours(engine: Engine, since: datetime, until: datetime | None) -> list[datetime]:
    """Every hour from `since` to `until` (default: the latest candle) that has candles."""
    import pandas as pd

    from store.datasets import candle_extent

    if until is not None and since > until:
        raise ValueError(f"--since {since:%Y-%m-%d %H:%M} is after --as-of {until:%Y-%m-%d %H:%M}")
    first, last, _ = candle_extent(engine, since=since, until=until)
    hours = pd.date_range(first, last, freq="h")
    return [hour.to_pydatetime() for hour in hours]


def _report_backfill(analysed: list[tuple[datetime, dict[str, int]]]) -> None:
    """Rows written by table over the backfill, and how many hours were analysed before."""
    totals: Counter[str] = Counter()
    for _, written in analysed:
        totals.update(written)
    table = Table("table", "rows written")
    for name, count in sorted(totals.items()):
        table.add_row(name, str(count))
    console.print(table)
    again = sum(1 for _, written in analysed if not any(written.values()))
    console.print(
        f"{len(analysed)} hours analysed; {again} of them had been before (nothing written)"
    )


def evaluate(
    as_of: datetime | None = typer.Option(
        None, "--as-of", help="Evaluate what was due at this time (UTC); default now."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Compute and report, then roll everything back."
    ),
) -> None:
    """Backfill actual prices and accuracy of every due prediction (cron-ready).

    Idempotent and safe to run twice at once; exit status 0 on success.
    """
    from training.evaluate import evaluate as run_evaluation

    summary = run_evaluation(migrated_engine(), _utc(as_of), dry_run)
    for line in summary.lines():
        console.print(line)
