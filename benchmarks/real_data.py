"""Real-data check: nested walk-forward validation of the four families on real candles.

Every real data set in ``../shared/data/`` with a cross-section of coins is used by default:
``binance-2021-1h`` (126 Binance USDT pairs, December 2020 to July 2021, the May 2021 crash),
``binance-2017-2022-1h`` (33 pairs through the 2018 bear market, the 2020-21 bull run and the
2022 collapse) and ``binance-2020-2024-1h`` (46 pairs into 2024). ``BTC-USD_1h.csv`` is a single
coin, so it has no cross-section to rank and is left out. Files are read with
``training.candles.read_candle_file`` (validated; none is skipped); sectors come from
``coins-all.csv``. No market caps: index weights use the dollar-volume proxy. No database.

Each family is validated exactly as ``training.train.train_layers`` does it
(``validate_family``), with the default ``TrainSettings`` and default hyperparameters: nothing
was tuned on any of these sets. Each fold is served through a transform fitted on the earlier
folds only; the first fold only trains it. Reported on the scored out-of-fold rows:

* the served output beside the raw model and the naive baseline on the same rows, and the
  skill of the served output (relative improvement of the primary loss) with its 90 % block
  bootstrap interval and the verdict ("no demonstrated edge" when the interval reaches 0);
* for the asset ranking, the served ranking beside the best one-line factor chosen on
  earlier folds (difference of per-hour rank IC with its interval);
* the factor table: the per-day cross-sectional rank IC (one hour a day, 00:00 UTC, so the
  24 h labels do not overlap) of each factor against the next 24 h log return, over the whole
  set and over the asset's scored window, with the served ranking's row beside them;
* calibration of the served confidences on the last fold, beside a reference rate known
  beforehand.

Run (progress on stderr, tables on stdout, every figure also in a JSON file in /tmp):

    .venv/bin/python benchmarks/real_data.py [--data DIR ...] [--coins N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import pandas as pd
from report import METRICS_HEADER, metrics_table, number, table

from models.factors import factor_frame
from models.families import FAMILIES
from models.labels import asset_labels
from models.panel import MarketPanel
from models.skill import cross_sectional_rank_ic, rank_ic_summary
from models.validation import ValidationResult
from training.candles import discover_candle_files, read_candle_file, read_coins_file
from training.train import TrainSettings, validate_family
from training.verdicts import factor_text

REPOSITORY = Path(__file__).resolve().parents[1]
SHARED_DATA = REPOSITORY.parent / "shared" / "data"
DEFAULT_SETS = ("binance-2021-1h", "binance-2017-2022-1h", "binance-2020-2024-1h")
COINS_FILE = SHARED_DATA / "coins-all.csv"
DEFAULT_JSON = Path(tempfile.gettempdir()) / "cryptopredict-real-data.json"
FACTOR_HORIZON = 24  # the factor table scores the next 24 h, one non-overlapping hour a day
BASELINE_NAMES = {
    "macro": "uniform; the rolling climatology of realised regimes beside it",
    "sector": "market return (relative return 0)",
    "asset": "persistence (return 0); ranking: the best one-line factor chosen out of fold",
    "timing": "rolling base rate per side",
}


def progress(message: str) -> None:
    print(f"[real-data] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- loading


@dataclass
class LoadedData:
    candles: pd.DataFrame  # long: symbol, timestamp, open, high, low, close, volume
    files: int
    candle_counts: dict[str, int]
    seconds: float


def load_candles(data_dir: Path) -> LoadedData:
    """Every candle file in the folder, validated; all of them must load."""
    started = perf_counter()
    paths = discover_candle_files(data_dir)
    progress(f"reading {len(paths)} candle files from {data_dir}")
    frames = []
    for path in paths:
        candle_file = read_candle_file(path)
        frames.append(candle_file.candles.assign(symbol=candle_file.symbol))
    candles = pd.concat(frames, ignore_index=True)
    counts = candles.groupby("symbol")["close"].count().sort_values(ascending=False)
    return LoadedData(
        candles=candles,
        files=len(paths),
        candle_counts={str(symbol): int(count) for symbol, count in counts.items()},
        seconds=perf_counter() - started,
    )


def most_candles(counts: dict[str, int], limit: int | None) -> list[str]:
    """The `limit` symbols with the most candles (ties by symbol); all when limit is None."""
    ranked = sorted(counts, key=lambda symbol: (-counts[symbol], symbol))
    return ranked if limit is None else ranked[:limit]


def build_panel(loaded: LoadedData, coins: pd.DataFrame, limit: int | None) -> MarketPanel:
    chosen = most_candles(loaded.candle_counts, limit)
    candles = loaded.candles[loaded.candles["symbol"].isin(chosen)]
    columns = ["symbol", "timestamp", "open", "high", "low", "close", "volume"]
    return MarketPanel.from_candles(candles[columns], coins)


# ---------------------------------------------------------------------------- validating


@dataclass
class FamilyReport:
    layer: str
    name: str
    primary_metric: str
    lower_is_better: bool
    rows: int
    features: int
    seconds: float
    model_metrics: dict[str, Any]
    raw_metrics: dict[str, Any]
    baseline_metrics: dict[str, Any]
    skill: dict[str, Any]
    beats_baseline: bool
    fold_metrics: list[dict[str, Any]]
    calibration: dict[str, Any]
    window: dict[str, str]


def validate_all(
    panel: MarketPanel, settings: TrainSettings
) -> tuple[list[FamilyReport], pd.DataFrame]:
    """Every family as train_layers validates it; also the asset's scored served ranking."""
    reports, ranking = [], pd.DataFrame()
    for layer in FAMILIES:
        progress(f"{layer}: nested walk-forward validation ({settings.n_folds} folds)")
        started = perf_counter()
        data, result = validate_family(layer, panel, settings)
        seconds = perf_counter() - started
        progress(f"{layer}: {len(data.X):,} rows x {data.X.shape[1]} features in {seconds:.1f} s")
        reports.append(_report(layer, data.X.shape, seconds, result, settings))
        if layer == "asset":
            ranking = result.served.loc[result.scored, ["rank_score"]]
    return reports, ranking


def _report(
    layer: str,
    shape: tuple[int, int],
    seconds: float,
    result: ValidationResult,
    settings: TrainSettings,
) -> FamilyReport:
    family = settings.family(layer)
    metric, lower = family.primary_metric, family.lower_is_better
    return FamilyReport(
        layer=layer,
        name=family.name,
        primary_metric=metric,
        lower_is_better=lower,
        rows=shape[0],
        features=shape[1],
        seconds=seconds,
        model_metrics=result.model_metrics,
        raw_metrics=result.raw_metrics,
        baseline_metrics=result.baseline_metrics,
        skill=result.skill,
        beats_baseline=result.beats_baseline(metric, lower),
        fold_metrics=result.fold_metrics,
        calibration=result.calibration,
        window=result.window,
    )


# ---------------------------------------------------------------------------- factors


def factor_rows(panel: MarketPanel, ranking: pd.DataFrame) -> list[dict[str, Any]]:
    """Per-day rank IC of each factor over the whole set and over the asset's scored window,
    with the served ranking's row on the same days of that window."""
    outcomes = asset_labels(panel, FACTOR_HORIZON)
    factors = factor_frame(panel)
    window = ranking.index.get_level_values("timestamp")
    start, end = (window.min(), window.max()) if len(window) else (None, None)
    rows = [
        {
            "ranking": name,
            **_daily(factors[name], outcomes, None, None),
            "window": _daily(factors[name], outcomes, start, end),
        }
        for name in factors.columns
    ]
    if len(ranking):
        served = ranking["rank_score"].reindex(outcomes.index)
        rows.append(
            {"ranking": "served asset ranking", "window": _daily(served, outcomes, start, end)}
        )
    return rows


def _daily(
    scores: pd.Series, outcomes: pd.Series, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> dict[str, Any]:
    """Rank IC summary over one hour a day (00:00 UTC), optionally within [start, end]."""
    hours = scores.index.get_level_values("timestamp")
    keep = hours.hour == 0
    if start is not None:
        keep &= (hours >= start) & (hours <= end)
    per_day = cross_sectional_rank_ic(scores[keep], outcomes.reindex(scores.index)[keep])
    return rank_ic_summary(per_day, FACTOR_HORIZON)


def factor_table(rows: list[dict[str, Any]]) -> str:
    header = ["ranking", "whole set IC", "t", "days", "scored window IC", "t", "days"]
    body = []
    for row in rows:
        whole, window = row.get("rank_ic"), row["window"]
        body.append(
            [
                row["ranking"],
                number(whole),
                number(row.get("rank_ic_t")),
                str(row.get("rank_ic_hours", "")),
                number(window["rank_ic"]),
                number(window["rank_ic_t"]),
                str(window["rank_ic_hours"]),
            ]
        )
    return table(header, body)


# ---------------------------------------------------------------------------- reporting


def folds_table(reports: list[FamilyReport]) -> str:
    header = ["family", "fold", "test start", "test end", "rows", "served", "raw", "baseline"]
    rows = []
    for report in reports:
        metric = report.primary_metric
        for fold in report.fold_metrics:
            rows.append(
                [
                    report.name,
                    str(fold["fold"]),
                    fold["test_start"][:16],
                    fold["test_end"][:16],
                    f"{fold['test_rows']:,}",
                    number(fold["model"][metric]),
                    number(fold["raw"][metric]),
                    number(fold["baseline"][metric]),
                ]
            )
    return table(header, rows)


def calibration_rows(calibration: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(what, report) for every served confidence a family reports."""
    if "brier" in calibration:
        return [("served confidence", calibration)]
    return [
        (f"p_{key}", value)
        for key, value in calibration.items()
        if isinstance(value, dict) and "brier" in value
    ]


def calibration_table(reports: list[FamilyReport]) -> str:
    header = ["family", "confidence", "n", "Brier", "ECE", "reference rate", "Brier of ref."]
    rows = []
    for report in reports:
        for what, entry in calibration_rows(report.calibration):
            rows.append(
                [
                    report.name,
                    what,
                    f"{entry.get('n_samples', 0):,}",
                    number(entry.get("brier")),
                    number(entry.get("ece")),
                    number(entry.get("reference_rate")),
                    number(entry.get("brier_of_reference")),
                ]
            )
    return table(header, rows)


def run_set(data_dir: Path, coins: pd.DataFrame, limit: int | None) -> dict[str, Any]:
    started = perf_counter()
    loaded = load_candles(data_dir)
    panel = build_panel(loaded, coins, limit)
    missing_share = float(panel.close.isna().to_numpy().mean())
    progress(f"panel: {len(panel.symbols)} coins x {len(panel.hours):,} hours")
    settings = TrainSettings()
    reports, ranking = validate_all(panel, settings)
    factors = factor_rows(panel, ranking)
    result = {
        "data": str(data_dir),
        "coins": panel.symbols,
        "hours": len(panel.hours),
        "first_hour": panel.hours[0].isoformat(),
        "last_hour": panel.hours[-1].isoformat(),
        "missing_share": missing_share,
        "settings": asdict(settings),
        "elapsed_s": perf_counter() - started,
        "families": [asdict(report) for report in reports],
        "factors": factors,
    }
    print_set(result, reports, loaded)
    return result


def print_set(result: dict[str, Any], reports: list[FamilyReport], loaded: LoadedData) -> None:
    print(
        f"== {result['data']}: {len(result['coins'])} coins, {result['hours']:,} hours "
        f"{result['first_hour'][:16]} to {result['last_hour'][:16]} UTC, "
        f"{result['missing_share']:.1%} coin-hours without a candle; "
        f"read in {loaded.seconds:.0f} s, whole set {result['elapsed_s']:.0f} s"
    )
    print()
    print(
        table(
            ["family", "rows", "features", "seconds", "scored window (UTC)", "baseline"],
            [
                [
                    report.name,
                    f"{report.rows:,}",
                    str(report.features),
                    f"{report.seconds:.1f}",
                    f"{report.window['validation_start'][:16]} to "
                    f"{report.window['validation_end'][:16]}",
                    BASELINE_NAMES[report.layer],
                ]
                for report in reports
            ],
        )
    )
    print()
    print("served output beside the raw model and the baseline, scored folds:")
    print(table(METRICS_HEADER, metrics_table(reports)))
    for report in reports:
        comparison = factor_text(report.model_metrics)
        if comparison:
            print(f"{report.name} ranking: {comparison}")
    print()
    print("per-day rank IC vs the next 24 h log return (00:00 UTC each day):")
    print(factor_table(result["factors"]))
    print()
    print("primary metric fold by fold (fold 0 only trains the serving transform):")
    print(folds_table(reports))
    print()
    print("calibration of the served confidences on the last fold:")
    print(calibration_table(reports))
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        help="folder of candle files; repeat for several (default: the three Binance sets)",
    )
    parser.add_argument("--coins-file", type=Path, default=COINS_FILE, help="symbol,name,sector")
    parser.add_argument(
        "--coins", type=int, default=None, help="keep the N coins with the most candles"
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args(argv)
    folders = args.data or [SHARED_DATA / name for name in DEFAULT_SETS]
    coins = read_coins_file(args.coins_file)
    load_before = os.getloadavg()
    results = []
    for folder in folders:
        results.append(run_set(folder, coins, args.coins))
        # Written after every set, so an interrupted run keeps what it measured.
        summary = {"cpus": os.cpu_count(), "load_average_before": load_before, "sets": results}
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    progress(f"results written to {args.json}; load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
