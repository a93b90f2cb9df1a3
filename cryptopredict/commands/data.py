"""Market data commands: `ingest` real candles, `synth` a synthetic market, `summary`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from cryptopredict.clock import current_hour
from cryptopredict.runtime import migrated_engine
from db.schema import Cryptocurrency, CryptoSector, CryptoSectorMapping, PriceData
from store.candles import HOUR
from training import synthetic
from training.candles import discover_candle_files
from training.ingest import IngestProgress, IngestRejected, write_market
from training.ingest import ingest as ingest_files

console = Console()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def ingest(
    path: Path = typer.Argument(..., help="A CSV(.gz) file of candles, or a directory of them."),
    symbol: str | None = typer.Option(
        None, "--symbol", "-s", help="Coin symbol of a single file (default: from its name)."
    ),
    coins: Path | None = typer.Option(
        None, "--coins", help="CSV of symbol,name,sector to name coins and map their sectors."
    ),
) -> None:
    """Load OHLCV candles into price_data (hourly; finer candles are aggregated).

    Every row of every file is validated first; if any file has a bad row, nothing is
    written and each bad row is reported with its line number.
    """
    engine = migrated_engine()
    paths = discover_candle_files(path)
    with _progress() as progress:
        reading = progress.add_task("validating files", total=len(paths))
        writing = progress.add_task("writing candles", total=None)
        hooks = IngestProgress(
            on_file_read=lambda _path: progress.advance(reading),
            on_rows_written=lambda rows: progress.advance(writing, rows),
        )
        try:
            report = ingest_files(engine, path, symbol, coins, hooks)
        except IngestRejected as rejected:
            raise ValueError(
                f"{len(rejected.errors)} of {len(paths)} files rejected, nothing written:\n"
                f"{rejected}"
            ) from None
    totals = report.totals
    console.print(
        f"{len(report.files)} files: {totals.inserted} candles inserted, "
        f"{totals.updated} updated, {totals.unchanged} unchanged"
    )
    aggregated = [f for f in report.files if f.source_interval != HOUR]
    for file in aggregated:
        console.print(
            f"  {file.path.name}: {file.source_rows} candles of {file.source_interval} "
            f"aggregated to {file.hourly_rows} hourly bars"
        )


def synth(
    coins: int = typer.Option(12, "--coins", min=2, help="Number of coins (BTC and ETH first)."),
    days: int = typer.Option(180, "--days", min=1, help="Days of hourly candles."),
    end: datetime | None = typer.Option(
        None, "--end", help="The market's last hour (UTC); default: the current hour."
    ),
    seed: int = typer.Option(
        7, "--seed", min=0, help="Random seed; the same seed gives the same market."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write CSV files here instead of into the database."
    ),
    signal: str | None = typer.Option(
        None,
        "--signal",
        metavar="KIND:STRENGTH",
        help="Plant momentum:S or low_volatility:S (S: the target 24h rank IC, 0 to 0.5), "
        "or none for a null market where nothing is predictable.",
    ),
) -> None:
    """Generate a synthetic regime-switching market (for demos and tests), ending at --end.

    The candles depend on the seed and the first hour, not on where the market ends: an
    --end a day later with one more --days gives the same candles and one more day.
    """
    planted = None if signal is None else synthetic.PlantedSignal.parse(signal)
    last = current_hour() if end is None else end
    start = synthetic.start_for(last, days)
    market = synthetic.generate_market(coins, days, seed, start=start, signal=planted)
    planted_note = "" if planted is None else f", signal {planted}"
    ending = f" ending {market.regimes.index[-1]:%Y-%m-%d %H:%M} UTC"
    if out is not None:
        written = synthetic.write_csv(market, out)
        console.print(f"wrote {len(written)} files to {out}{ending}{planted_note}", soft_wrap=True)
        return
    engine = migrated_engine()
    with _progress() as progress:
        task = progress.add_task("writing candles", total=len(market.candles))
        counts = write_market(
            engine,
            market.candles,
            market.coins,
            IngestProgress(on_rows_written=lambda rows: progress.advance(task, rows)),
        )
    inserted = sum(c.inserted for c in counts.values())
    console.print(
        f"synthetic market: {coins} coins x {days} days{ending}{planted_note}, "
        f"{inserted} candles inserted "
        f"({len(market.candles) - inserted} already present)",
        soft_wrap=True,
    )


def summary() -> None:
    """Print what the database holds: coins, their sectors, candle counts and spans."""
    engine = migrated_engine()
    sector_name = (
        select(CryptoSector.name)
        .join(CryptoSectorMapping, CryptoSectorMapping.sector_id == CryptoSector.id)
        .where(CryptoSectorMapping.crypto_id == Cryptocurrency.id)
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(
            Cryptocurrency.symbol,
            Cryptocurrency.name,
            sector_name,
            func.count(PriceData.id),
            func.min(PriceData.timestamp),
            func.max(PriceData.timestamp),
        )
        .outerjoin(PriceData, PriceData.crypto_id == Cryptocurrency.id)
        .group_by(Cryptocurrency.id, Cryptocurrency.symbol, Cryptocurrency.name)
        .order_by(Cryptocurrency.symbol)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    table = Table("symbol", "name", "sector", "candles", "first", "last", title="price_data")
    for symbol, name, sector, count, first, last in rows:
        table.add_row(symbol, name, sector or "-", str(count), _when(first), _when(last))
    console.print(table)
    console.print(f"{len(rows)} coins, {sum(row[3] for row in rows)} hourly candles")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"
