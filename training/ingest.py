"""Load OHLCV CSV files into price_data: every file validated first, then one transaction.

A rejected file rejects the whole run, so a directory is loaded entirely or not at all and a
killed ingest leaves nothing half-written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from training.candles import (
    CandleFile,
    CandleFileError,
    discover_candle_files,
    read_candle_file,
    read_coins_file,
)
from training.price_store import (
    UpsertCounts,
    apply_coin_metadata,
    ensure_cryptocurrencies,
    upsert_candles,
)

log = logging.getLogger(__name__)


class IngestRejected(ValueError):
    """One or more files were rejected; nothing was written."""

    def __init__(self, errors: Sequence[CandleFileError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


@dataclass(frozen=True)
class FileReport:
    path: Path
    symbol: str
    source_interval: pd.Timedelta
    source_rows: int
    hourly_rows: int
    counts: UpsertCounts


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)

    @property
    def totals(self) -> UpsertCounts:
        total = UpsertCounts()
        for report in self.files:
            total += report.counts
        return total


@dataclass(frozen=True)
class IngestProgress:
    """Hooks a caller (the command line) can use to show progress; all optional."""

    on_file_read: Callable[[Path], None] | None = None
    on_rows_written: Callable[[int], None] | None = None


def read_all(
    paths: Sequence[Path], symbol: str | None, progress: IngestProgress | None = None
) -> list[CandleFile]:
    """Parse and validate every file; raise IngestRejected naming every bad file."""
    if symbol is not None and len(paths) > 1:
        raise ValueError("--symbol applies to a single file, not to a directory of files")
    files: list[CandleFile] = []
    errors: list[CandleFileError] = []
    for path in paths:
        try:
            files.append(read_candle_file(path, symbol))
        except CandleFileError as error:
            errors.append(error)
        if progress and progress.on_file_read:
            progress.on_file_read(path)
    duplicates = _symbols_seen_twice(files)
    if duplicates:
        raise ValueError(f"several files give the same coin: {duplicates}")
    if errors:
        raise IngestRejected(errors)
    return files


def _symbols_seen_twice(files: Sequence[CandleFile]) -> str:
    by_symbol: dict[str, list[str]] = {}
    for candle_file in files:
        by_symbol.setdefault(candle_file.symbol, []).append(candle_file.path.name)
    return "; ".join(
        f"{symbol} ({', '.join(names)})" for symbol, names in by_symbol.items() if len(names) > 1
    )


def write_candles(
    engine: Engine,
    candles_by_symbol: Mapping[str, pd.DataFrame],
    coins: pd.DataFrame | None = None,
    progress: IngestProgress | None = None,
) -> dict[str, UpsertCounts]:
    """Upsert hourly candles of many coins (and coin metadata) in a single transaction."""
    known = {} if coins is None else dict(zip(coins["symbol"], coins["name"], strict=True))
    names = {
        symbol: known[symbol] if isinstance(known.get(symbol), str) else symbol
        for symbol in candles_by_symbol
    }
    on_rows = progress.on_rows_written if progress else None
    counts: dict[str, UpsertCounts] = {}
    with engine.begin() as connection:
        crypto_ids = ensure_cryptocurrencies(connection, names)
        for symbol, candles in candles_by_symbol.items():
            counts[symbol] = upsert_candles(connection, crypto_ids[symbol], candles, on_rows)
        if coins is not None:
            apply_coin_metadata(connection, coins)
    return counts


def ingest(
    engine: Engine,
    path: Path,
    symbol: str | None = None,
    coins_file: Path | None = None,
    progress: IngestProgress | None = None,
) -> IngestReport:
    """The `cryptopredict ingest` job: discover, validate everything, then write everything."""
    coins = read_coins_file(coins_file) if coins_file is not None else None
    files = read_all(discover_candle_files(path), symbol, progress)
    counts = write_candles(engine, {f.symbol: f.candles for f in files}, coins, progress)
    report = IngestReport(
        files=[
            FileReport(
                path=f.path,
                symbol=f.symbol,
                source_interval=f.source_interval,
                source_rows=f.source_rows,
                hourly_rows=len(f.candles),
                counts=counts[f.symbol],
            )
            for f in files
        ]
    )
    totals = report.totals
    log.info(
        "ingested %d files: %d candles inserted, %d updated, %d unchanged",
        len(report.files),
        totals.inserted,
        totals.updated,
        totals.unchanged,
    )
    return report
