"""Read OHLCV candle CSV files into candle frames, normalised to hourly candles.

This is the pure half of candle ingestion: it touches no database. The text is parsed into a
candle frame (`store.candles`) of the file's own interval, which `validate_candles` checks
like the candles of any other source; this module only adds what is about text (fields that
are not values at all) and names the bad rows by their lines. A file is either accepted whole,
as hourly candles ready to store, or rejected whole with a :class:`CandleFileError` that names
every bad row, so a partly broken file never leaves a partial series behind.
"""

import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from gzip import BadGzipFile
from pathlib import Path

import numpy as np
import pandas as pd

from store.candles import (
    CANDLE_COLUMNS,
    HOUR,
    REQUIRED_COLUMNS,
    TIMESTAMP,
    TIMESTAMP_DTYPE,
    VALUE_COLUMNS,
    CandleProblem,
    CandlesRejected,
    epoch_nanoseconds,
    format_interval,
    problems_by_row,
    render_problems,
    validate_candles,
)

COIN_COLUMNS = ("symbol", "name", "sector")
COINS_FILE_NAME = "coins.csv"

# A bare number in the timestamp column is epoch time; below this magnitude it is
# seconds (up to the year 5138), at or above it milliseconds (from March 1973).
_EPOCH_MILLISECONDS_FROM = 1e11
_EPOCH_PATTERN = r"[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?"
_SYMBOL_PATTERN = re.compile(r"[A-Z0-9]+")
USD_QUOTES = frozenset({"USD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI"})
_FIRST_NS = pd.Timestamp.min.tz_localize("UTC")
_LAST_NS = pd.Timestamp.max.tz_localize("UTC")
_TIMESTAMP_FORMATS = "ISO 8601, epoch seconds or epoch milliseconds (years 1677-2262)"


@dataclass(frozen=True)
class BadRow:
    """One rejected row: its 1-based line in the file (the header is line 1)."""

    line: int
    reason: str


class CandleFileError(ValueError):
    """A candle file was rejected whole.

    ``problems`` lists every bad row; it is empty for a file-level error (unreadable
    or empty file, missing column, unusable interval), which ``message`` describes.
    """

    def __init__(self, path: Path, message: str, problems: Sequence[BadRow] = ()) -> None:
        self.path = Path(path)
        self.message = message
        self.problems = list(problems)
        super().__init__(_render_error(self.path, message, self.problems))

    def __reduce__(self) -> tuple[type["CandleFileError"], tuple[Path, str, list[BadRow]]]:
        # Rebuild from the fields, so the error survives pickling (process pools).
        return type(self), (self.path, self.message, self.problems)


@dataclass(frozen=True)
class CandleFile:
    """A validated candle file, normalised to hourly candles.

    ``candles`` is a candle frame (`store.candles`) of hourly candles: ``timestamp`` the
    hour the candle opens, ``market_cap`` NaN where the file has none. Rows are sorted
    with unique timestamps; missing hours stay missing.
    """

    path: Path
    symbol: str
    source_interval: pd.Timedelta
    candles: pd.DataFrame
    source_rows: int


def symbol_from_filename(path: Path) -> str:
    """The base symbol of a file name: ``BTC-USDT_1h.csv`` gives ``BTC``.

    The name reads ``BASE[-QUOTE[-MARKER]][_ANYTHING]``. price_data holds USD prices, so a
    quote that is not a US dollar (``ETH-BTC_5m.csv``) or a contract marker
    (``XRP-USDT-PERP_1h.csv``) is refused: loading it under ``ETH`` or ``XRP`` would mix
    other prices into the coin's USD series. An explicit symbol (``--symbol``) loads such
    a file under a name of its own.
    """
    path = Path(path)
    pair = _strip_csv_suffix(path.name).split("_", 1)[0]
    base, *qualifiers = (token.strip().upper() for token in pair.split("-"))
    if not _SYMBOL_PATTERN.fullmatch(base):
        raise CandleFileError(
            path,
            f"cannot derive a symbol from the file name {path.name!r} "
            "(expected a name like 'BTC-USDT_1h.csv'); pass the symbol explicitly",
        )
    quote, extra = (qualifiers[0], qualifiers[1:]) if qualifiers else (None, [])
    if quote is not None and quote not in USD_QUOTES:
        raise CandleFileError(
            path,
            f"prices are quoted in {quote}, but price_data holds USD prices; "
            "pass --symbol to load the file under a symbol of its own",
        )
    if extra:
        raise CandleFileError(
            path,
            f"the file name marks {'-'.join(extra)}, not the spot price of {base}; "
            "pass --symbol to load the file under a symbol of its own",
        )
    return base


def discover_candle_files(path: Path) -> list[Path]:
    """The candle files at ``path``: the file itself, or a directory's candle files.

    A directory is searched non-recursively for ``*.csv`` and ``*.csv.gz`` files,
    skipping the coins file; the result is sorted by name.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no such file or directory: {path}")
    files = sorted(
        entry for entry in path.iterdir() if entry.is_file() and _is_candle_file_name(entry.name)
    )
    if not files:
        raise FileNotFoundError(f"no *.csv or *.csv.gz candle files in {path}")
    return files


def read_candle_file(path: Path, symbol: str | None = None) -> CandleFile:
    """Read, validate and normalise one OHLCV CSV file (``.csv`` or ``.csv.gz``).

    ``symbol`` defaults to the one in the file name. Candles finer than an hour are
    aggregated to hourly bars. Raises :class:`CandleFileError` when the file is
    rejected; nothing in the data is repaired.
    """
    path = Path(path)
    resolved_symbol = symbol_from_filename(path) if symbol is None else _clean_symbol(path, symbol)
    raw = _read_rows(path)
    parsed = _parse_rows(raw)
    interval = _detect_interval(parsed[TIMESTAMP])
    if interval is not None:
        _require_hourly_compatible(path, interval)
    candles = _validated(path, raw, parsed, interval)
    if interval is None:
        raise CandleFileError(
            path, "needs at least two distinct timestamps to detect the candle interval"
        )
    return CandleFile(
        path=path,
        symbol=resolved_symbol,
        source_interval=interval,
        candles=_to_hourly(candles, interval),
        source_rows=len(raw),
    )


def read_coins_file(path: Path) -> pd.DataFrame:
    """Read the coins list: columns ``symbol``, ``name``, ``sector``.

    Column names are case-insensitive and extra columns are ignored. Symbols are
    upper-cased; an empty sector becomes None. Raises ValueError for a missing
    column, a missing or malformed symbol, a missing name or a duplicate symbol.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, index_col=False)
    except pd.errors.EmptyDataError:
        raise ValueError(f"coins file {path} is empty") from None
    try:
        columns = _match_columns(frame.columns, COIN_COLUMNS)
    except ValueError as error:
        raise ValueError(f"coins file {path}: {error}") from None
    missing = [name for name in COIN_COLUMNS if name not in columns]
    if missing:
        raise ValueError(
            f"coins file {path} lacks column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(str, frame.columns))})"
        )
    coins = pd.DataFrame({name: _clean_text(frame[columns[name]]) for name in COIN_COLUMNS})
    coins = coins.astype(object)
    coins["symbol"] = coins["symbol"].str.upper()
    _check_coins(path, coins)
    return coins.where(coins.notna(), None)


def _render_error(path: Path, message: str, problems: Sequence[BadRow]) -> str:
    """The text of a CandleFileError: the file, the message, then the bad rows."""
    return render_problems(
        f"{path}: {message}", [(f"line {row.line}", row.reason) for row in problems]
    )


def _strip_csv_suffix(name: str) -> str:
    for suffix in (".csv.gz", ".csv"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _is_candle_file_name(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith((".csv", ".csv.gz")) and lowered != COINS_FILE_NAME


def _clean_symbol(path: Path, symbol: str) -> str:
    cleaned = symbol.strip().upper()
    if not _SYMBOL_PATTERN.fullmatch(cleaned):
        raise CandleFileError(path, f"invalid symbol {symbol!r} (expected letters and digits)")
    return cleaned


def _match_columns(found: Iterable[object], wanted: Sequence[str]) -> dict[str, str]:
    """Map each wanted column name to the file's spelling of it, ignoring case."""
    matches: dict[str, str] = {}
    for name in map(str, found):
        key = name.strip().lower()
        if key in wanted:
            if key in matches:
                raise ValueError(f"columns {matches[key]!r} and {name!r} are the same column")
            matches[key] = name
    return matches


def _read_rows(path: Path) -> pd.DataFrame:
    """The file's data rows under canonical column names.

    A column is numbers when all of it parsed as numbers, else stripped text (NaN when
    empty).

    The frame is indexed by data row (0 is line 2). Blank lines are dropped but keep
    their place, so index + 2 stays the line number.
    """
    compression = "gzip" if path.name.lower().endswith(".gz") else None
    try:
        header = pd.read_csv(path, nrows=0, compression=compression)
        columns = _candle_columns(path, header.columns)
        frame = pd.read_csv(
            path,
            usecols=list(columns.values()),
            # Never take the first column as an index when rows have more fields than the
            # header (a trailing comma): that would shift every column by one.
            index_col=False,
            skip_blank_lines=False,
            compression=compression,
        )
    except pd.errors.EmptyDataError:
        raise CandleFileError(path, "the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, BadGzipFile, zlib.error, EOFError) as error:
        raise CandleFileError(path, f"cannot read the file as CSV: {error}") from error
    frame = frame.rename(columns={actual: name for name, actual in columns.items()})
    # Empty fields of text columns are missing. pandas reads a blank line's fields as NaN,
    # except in a text column that also holds an integer beyond 64 bits, where it gives '';
    # without this, such a blank line would be reported as a bad row.
    for name in frame.columns:
        if not _holds_numbers(frame[name]):
            frame[name] = _clean_text(frame[name])
    frame = frame.dropna(how="all")
    if frame.empty:
        raise CandleFileError(path, "the file has a header but no data rows")
    return frame


def _candle_columns(path: Path, found: Iterable[object]) -> dict[str, str]:
    try:
        columns = _match_columns(found, CANDLE_COLUMNS)
    except ValueError as error:
        raise CandleFileError(path, str(error)) from None
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise CandleFileError(
            path,
            f"missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(str, found))})",
        )
    return columns


def _parse_rows(raw: pd.DataFrame) -> pd.DataFrame:
    """Parsed values: UTC timestamps (NaT when unusable) and finite floats (else NaN)."""
    parsed = {TIMESTAMP: _parse_timestamps(raw[TIMESTAMP])}
    for name in VALUE_COLUMNS:
        values = _parse_numbers(raw[name]) if name in raw else np.full(len(raw), np.nan)
        parsed[name] = np.where(np.isfinite(values), values, np.nan)
    return pd.DataFrame(parsed, index=raw.index)


def _parse_timestamps(raw: pd.Series) -> pd.Series:
    """Parse ISO 8601 (naive means UTC) or epoch seconds/milliseconds, row by row."""
    if _holds_numbers(raw):
        is_epoch = raw.notna()
        numbers = raw[is_epoch]
    else:
        is_epoch = raw.str.fullmatch(_EPOCH_PATTERN).fillna(False).astype(bool)
        numbers = pd.to_numeric(raw[is_epoch])
    in_milliseconds = numbers.abs() >= _EPOCH_MILLISECONDS_FROM
    parts = [
        pd.to_datetime(raw[~is_epoch], format="ISO8601", utc=True, errors="coerce"),
        pd.to_datetime(numbers[~in_milliseconds], unit="s", utc=True, errors="coerce"),
        pd.to_datetime(numbers[in_milliseconds], unit="ms", utc=True, errors="coerce"),
    ]
    parsed = pd.Series(pd.NaT, index=raw.index, dtype=TIMESTAMP_DTYPE)
    for part in parts:
        representable = part[(part >= _FIRST_NS) & (part <= _LAST_NS)]
        parsed[representable.index] = representable.dt.as_unit("ns")
    return parsed


def _parse_numbers(raw: pd.Series) -> np.ndarray:
    """float64 values of a column; NaN where missing or not a number."""
    if _holds_numbers(raw):
        return raw.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(raw.astype(str).where(raw.notna()), errors="coerce").to_numpy(
        dtype=float, na_value=np.nan
    )


def _holds_numbers(column: pd.Series) -> bool:
    """Whether read_csv parsed every value of the column as a number."""
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _clean_text(raw: pd.Series) -> pd.Series:
    """Strip text; an empty field becomes missing."""
    text = raw.astype("str").str.strip()
    return text.where(raw.notna() & (text != ""))


def _validated(
    path: Path, raw: pd.DataFrame, parsed: pd.DataFrame, interval: pd.Timedelta | None
) -> pd.DataFrame:
    """The parsed candles once `validate_candles` passes them and every field was read.

    A bad row lists the fields that could not be read, then the rules its candle breaks; a
    field that could not be read is not also reported missing.
    """
    unread = _unread_fields(raw, parsed)
    try:
        candles = validate_candles(parsed, interval)
    except CandlesRejected as rejected:
        invalid = rejected.problems
    else:
        if not unread:
            return candles
        invalid = []
    unread_cells = {(problem.position, problem.column) for problem in unread}
    problems = unread + [p for p in invalid if (p.position, p.column) not in unread_cells]
    lines = raw.index.to_numpy() + 2
    bad_rows = [
        BadRow(line=int(lines[position]), reason=reasons)
        for position, reasons in problems_by_row(problems, lambda i: f"line {lines[i]}")
    ]
    raise CandleFileError(path, f"{len(bad_rows)} bad row(s)", bad_rows)


def _unread_fields(raw: pd.DataFrame, parsed: pd.DataFrame) -> list[CandleProblem]:
    """Fields with text that is no value: a timestamp in no known format, a number that is
    not a finite one."""
    problems = []
    for name in CANDLE_COLUMNS:
        if name not in raw:
            continue
        unparsed = parsed[name].isna().to_numpy()
        if not unparsed.any():
            continue
        text = raw[name]
        unread = unparsed & text.notna().to_numpy()
        expected = _TIMESTAMP_FORMATS if name == TIMESTAMP else "a finite number"
        problems += [
            CandleProblem(position, name, f"{name} {str(text.iloc[position])!r} is not {expected}")
            for position in map(int, np.flatnonzero(unread))
        ]
    return problems


def _detect_interval(timestamps: pd.Series) -> pd.Timedelta | None:
    """The most common gap between consecutive distinct timestamps; the smallest on a tie.

    The mode, not the minimum or the first gap, so that missing bars and stray rows
    do not decide it. None when there are fewer than two distinct timestamps.
    """
    steps = np.diff(np.sort(epoch_nanoseconds(timestamps[timestamps.notna()])))
    counts = pd.Series(steps[steps > 0]).value_counts()
    if counts.empty:
        return None
    return pd.Timedelta(int(counts.index[counts == counts.max()].min()), unit="ns")


def _require_hourly_compatible(path: Path, interval: pd.Timedelta) -> None:
    """Hourly bars can only be built from candles that tile an hour."""
    shown = format_interval(interval)
    if interval > HOUR:
        raise CandleFileError(
            path,
            f"the candle interval is {shown}, coarser than 1h; hourly candles cannot be "
            "derived from it (only 1h or finer files, such as 1m, 5m or 15m, are accepted)",
        )
    if HOUR % interval != pd.Timedelta(0):
        raise CandleFileError(
            path,
            f"the candle interval is {shown}, which does not divide 1h; "
            "it cannot be aggregated to hourly candles",
        )


def _to_hourly(candles: pd.DataFrame, interval: pd.Timedelta) -> pd.DataFrame:
    """Hourly bars: first open, max high, min low, last close, summed volume and the
    last known market_cap over whatever finer candles each hour has."""
    ordered = candles.sort_values("timestamp", kind="stable")
    if interval == HOUR:
        return ordered.reset_index(drop=True)
    hourly = ordered.groupby(ordered["timestamp"].dt.floor("h"), sort=True).agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        market_cap=("market_cap", "last"),
    )
    return hourly.rename_axis(TIMESTAMP).reset_index()[list(CANDLE_COLUMNS)]


def _check_coins(path: Path, coins: pd.DataFrame) -> None:
    lines = coins.index.to_numpy() + 2
    for column in ("symbol", "name"):
        empty = coins[column].isna().to_numpy()
        if empty.any():
            raise ValueError(
                f"coins file {path}: no {column} on line(s) {_join_ints(lines[empty])}"
            )
    malformed = ~coins["symbol"].str.fullmatch(_SYMBOL_PATTERN.pattern).astype(bool).to_numpy()
    if malformed.any():
        raise ValueError(
            f"coins file {path}: symbols must be letters and digits, not "
            f"{', '.join(map(repr, coins['symbol'][malformed]))}"
        )
    duplicated = coins["symbol"][coins["symbol"].duplicated()].unique()
    if len(duplicated):
        raise ValueError(f"coins file {path}: duplicate symbol(s) {', '.join(duplicated)}")


def _join_ints(values: Iterable[int]) -> str:
    return ", ".join(str(int(value)) for value in values)
