"""Load OHLCV CSV files into price_data, all of them in one transaction or none.

Every file is read and validated; a rejected file rejects the whole run, with every bad row of
every file reported, so a directory is loaded entirely or not at all and a killed ingest
leaves nothing half-written. `ingest` reads the next file in a background thread while the
database writes the current one, and rolls the transaction back if any file turns out bad.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from db.versions import claim
from store.candles import SYMBOL, CandlesRejected, validate_candles
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
    refresh_latest_quotes,
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
    return list(read_ahead(paths, symbol, progress))


def write_candles(
    engine: Engine,
    candles: Mapping[str, pd.DataFrame] | Iterable[tuple[str, pd.DataFrame]],
    coins: pd.DataFrame | None = None,
    progress: IngestProgress | None = None,
) -> dict[str, UpsertCounts]:
    """Upsert hourly candles of many coins (and coin metadata) in a single transaction.

    `candles` may be produced lazily; an exception raised while producing it rolls back
    everything written so far.
    """
    pairs = candles.items() if isinstance(candles, Mapping) else candles
    known = {} if coins is None else dict(zip(coins["symbol"], coins["name"], strict=True))
    on_rows = progress.on_rows_written if progress else None
    counts: dict[str, UpsertCounts] = {}
    with engine.begin() as connection:
        # The candles' triggers bump the data version; taking its lock before any coin's
        # advisory lock keeps two ingests from waiting on each other in opposite orders.
        claim(connection)
        changed: list[int] = []
        for symbol, frame in pairs:
            name = known[symbol] if isinstance(known.get(symbol), str) else symbol
            crypto_id = ensure_cryptocurrencies(connection, {symbol: name})[symbol]
            counts[symbol] = upsert_candles(connection, crypto_id, frame, on_rows)
            if counts[symbol].inserted or counts[symbol].updated:
                changed.append(crypto_id)  # an unchanged re-ingest leaves the coin untouched
        refresh_latest_quotes(connection, changed)
        if coins is not None:
            apply_coin_metadata(connection, coins)
    return counts


def write_market(
    engine: Engine,
    candles: pd.DataFrame,
    coins: pd.DataFrame | None = None,
    progress: IngestProgress | None = None,
) -> dict[str, UpsertCounts]:
    """Validate a long frame of many coins' candles (`store.candles.MARKET_COLUMNS`), then
    write it with `write_candles`; a bad candle raises CandlesRejected before anything is
    written."""
    if SYMBOL not in candles.columns:
        raise CandlesRejected(f"missing required column(s) {SYMBOL}")
    valid = validate_candles(candles)
    frames = (
        (symbol, frame.drop(columns=SYMBOL).reset_index(drop=True))
        for symbol, frame in valid.groupby(SYMBOL, sort=False)
    )
    return write_candles(engine, frames, coins, progress)


def read_ahead(
    paths: Sequence[Path], symbol: str | None, progress: IngestProgress | None = None
) -> Iterator[CandleFile]:
    """Validated files, read one ahead in a worker thread; IngestRejected at the end if any
    file was bad (after reading every file, so the report names every bad row)."""
    if symbol is not None and len(paths) > 1:
        raise ValueError("--symbol applies to a single file, not to a directory of files")
    errors: list[CandleFileError] = []
    seen: dict[str, Path] = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-reader") as reader:
        pending = [reader.submit(read_candle_file, path, symbol) for path in paths]
        for path, future in zip(paths, pending, strict=True):
            try:
                candle_file = future.result()
            except CandleFileError as error:
                errors.append(error)
                continue
            finally:
                if progress and progress.on_file_read:
                    progress.on_file_read(path)
            if candle_file.symbol in seen:
                for later in pending:
                    later.cancel()
                raise ValueError(
                    f"several files give the same coin {candle_file.symbol}: "
                    f"{seen[candle_file.symbol].name}, {path.name}"
                )
            seen[candle_file.symbol] = path
            if not errors:
                yield candle_file
    if errors:
        raise IngestRejected(errors)


def ingest(
    engine: Engine,
    path: Path,
    symbol: str | None = None,
    coins_file: Path | None = None,
    progress: IngestProgress | None = None,
) -> IngestReport:
    """The `cryptopredict ingest` job: discover, validate everything, then write everything."""
    coins = read_coins_file(coins_file) if coins_file is not None else None
    files: list[CandleFile] = []

    def validated() -> Iterator[tuple[str, pd.DataFrame]]:
        for candle_file in read_ahead(discover_candle_files(path), symbol, progress):
            files.append(candle_file)
            yield candle_file.symbol, candle_file.candles

    counts = write_candles(engine, validated(), coins, progress)
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
