"""`cryptopredict demo`: the whole service on the embedded database, from one command."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from config.settings import get_settings
from cryptopredict.clock import current_hour
from cryptopredict.runtime import migrated_engine
from db import migrate
from training.verdicts import edge_text, factor_text, interval_text, skill_text

if TYPE_CHECKING:
    from cryptopredict.demo import MarketRecipe
    from cryptopredict.live import LiveMarket

console = Console(width=120)


def demo(
    data: Path | None = typer.Option(
        None,
        "--data",
        exists=True,
        help="Ingest this directory of candle CSVs instead of generating a synthetic market.",
    ),
    coins_file: Path | None = typer.Option(
        None, "--coins-file", exists=True, help="symbol,name,sector file for --data."
    ),
    coins: int = typer.Option(12, "--coins", min=2, help="Synthetic coins."),
    days: int = typer.Option(365, "--days", min=60, help="Days of synthetic candles."),
    seed: int = typer.Option(7, "--seed", help="Seed of the synthetic market."),
    backfill_days: int = typer.Option(
        14, "--backfill-days", min=1, help="Out-of-sample days analysed and evaluated."
    ),
    step_hours: int = typer.Option(6, "--step-hours", min=1, help="Hours between analyses."),
    host: str = typer.Option("127.0.0.1", "--host", help="Where the API listens."),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the API at the end."),
) -> None:
    """Set up and run the service end to end: schema, market, four trained families, an
    out-of-sample history of analyses with backfilled accuracy, a demo account, the API.

    Everything that already exists is reused, so it can run again at any time. A generated
    market is kept at the current hour: the hours missed since the last run are caught up
    first, and while the API serves each new hour is appended, analysed and evaluated.
    """
    from cryptopredict import demo as steps
    from store.tracking import configure_tracking, ui_command
    from training.evaluate import evaluate

    settings = get_settings()
    migrate.upgrade(settings.resolved_database_url)
    engine = migrated_engine()
    # Training writes to this store and loading an active model reads from it.
    client = configure_tracking(settings.resolved_mlflow_tracking_uri, settings.artifact_root)
    recipe_file = settings.data_dir / steps.MARKET_FILE
    plan = steps.MarketPlan(data, coins_file, coins, days, seed, recipe_file)
    last = steps.ensure_market(engine, plan, console.print, now=current_hour())
    first_analysis = last - timedelta(days=backfill_days)
    from training.train import TrainSettings

    # The asset family at every configured horizon, as `cryptopredict train` trains it.
    train_settings = TrainSettings(
        forecast_horizons=tuple(settings.forecast_horizons),
        params={"asset": {"interval_level": settings.interval_level}},
    )
    steps.ensure_models(
        engine, client, settings.artifact_root, first_analysis, console.print, train_settings
    )

    hours = steps.analysis_hours(first_analysis, last, step_hours)
    with Progress(
        TextColumn("analysing history"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:
        task = progress.add_task("analyses", total=len(hours))
        written = steps.backfill_analyses(engine, hours, lambda _: progress.advance(task))
    console.print(f"analysis: {len(hours)} hours, {written} new predictions")
    summary = evaluate(engine, as_of=last)
    for line in summary.lines():
        console.print(f"evaluation: {line.strip()}")
    live = _catch_up(engine, steps.stored_recipe(engine, recipe_file), last, serve)
    realized, total = steps.realized_count(engine)
    console.print(f"predictions: {realized} of {total} evaluated against real outcomes")

    console.print(_models_table(engine))
    email, password = steps.demo_account(engine, settings.data_dir)
    base_url = f"http://{host}:{port}"
    console.print(f"\nAPI docs:   {base_url}/docs")
    # Not wrapped: it is a command to copy, and long data directories pushed it past the width.
    ui = ui_command(settings.resolved_mlflow_tracking_uri)
    console.print(f"MLflow UI:  {ui}", soft_wrap=True, highlight=False)
    console.print(f"demo login: {email} / {password}  (kept in {settings.data_dir}/)")
    console.print("forecast BTC over HTTP once the API is up:", style="bold")
    console.print(steps.curl_commands(base_url, email, password), soft_wrap=True, highlight=False)
    if serve:
        from cryptopredict.commands.serve import serve as serve_api
        from cryptopredict.live import LiveLoop

        loop = None if live is None else LiveLoop(live, console.print)
        if loop is not None:
            loop.start()
        try:
            serve_api(host=host, port=port, workers=1)
        finally:
            if loop is not None:
                loop.stop(timeout=5)


def _catch_up(
    engine: Engine, recipe: MarketRecipe | None, last: datetime, serve: bool
) -> LiveMarket | None:
    """The generated market brought to the current hour, the missed hours each appended,
    analysed and evaluated; None for a market that was not generated here."""
    from cryptopredict.live import LiveMarket

    if recipe is None:
        console.print("live: off, the candles were not generated here; ingest new ones to move on")
        return None
    live = LiveMarket(engine, recipe, done=last)
    now = current_hour()
    if now > last:
        console.print(f"live: catching up {(now - last) // timedelta(hours=1)} missed hours")
    live.advance(now, lambda hour: console.print(hour.line()))
    at = f"live: the market is at {live.done:%Y-%m-%d %H:%M} UTC"
    going_on = "; while the API serves, each new hour is appended, analysed and evaluated"
    console.print(at + going_on if serve else at)
    return live


def _models_table(engine: Engine) -> Table:
    """Each active version line: served output beside its naive baseline, skill, and live
    accuracy; under it, each ranking beside the best one-line factor and each price interval's
    coverage and width beside the naive interval's."""
    from db.schema import AiModel

    table = Table(title="active models: nested walk-forward, served output beside the baseline")
    for column in ("family", "version", "metric", "served", "baseline", "skill (90%)", "edge"):
        table.add_column(column)
    table.add_column("live")
    with Session(engine) as session:
        rows = session.scalars(
            select(AiModel)
            .where(AiModel.status == "active")
            .order_by(AiModel.model_type, AiModel.name)
        ).all()
    rankings = []
    for row in rows:
        metrics = row.performance_metrics or {}
        metric = metrics.get("primary_metric", "")
        live = metrics.get("live") or {}
        ranking = factor_text(metrics.get("validation", {}))
        if ranking:
            rankings.append(f"{row.name} ranking: {ranking}")
        interval = interval_text(metrics)
        if interval:
            rankings.append(f"{row.name} {interval}{_live_coverage(live)}")
        table.add_row(
            row.name,
            row.version,
            metric,
            _number(metrics.get("validation", {}).get(metric)),
            _number(metrics.get("baseline", {}).get(metric)),
            skill_text(metrics.get("skill")),
            edge_text(metrics),
            _live(live),
        )
    table.caption = "\n".join(rankings) or None
    return table


def _number(value: object) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.4g}"


def _percent(value: object) -> str:
    """A share as a percentage; '-' where it is undefined (a forecast that predicts no move)."""
    return "-" if not isinstance(value, int | float) else f"{value:.0%}"


def _live(live: dict[str, Any]) -> str:
    """The realised figures `evaluate` keeps in `performance_metrics["live"]`, if any."""
    if not live.get("n_evaluated"):
        return "-"
    return (
        f"{live['n_evaluated']} evaluated, accuracy {live['accuracy_rate']:.0%}, "
        f"direction {_percent(live.get('directional_accuracy'))}, ECE {live['ece']:.3f}"
        + ("" if live.get("rank_ic") is None else f", rank IC {live['rank_ic']:+.3f}")
    )


def _live_coverage(live: dict[str, Any]) -> str:
    """', live 78.0% of 120': the realised share of prices inside their interval, if any."""
    if not live.get("n_interval"):
        return ""
    return f", live {live['interval_coverage']:.1%} of {live['n_interval']}"
