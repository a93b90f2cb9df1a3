"""Real-data check: walk-forward validation of the four families on Binance 2021 hourly candles.

Every candle file in the data folder (default ``../shared/data/binance-2021-1h``: 126 Binance
spot USDT pairs, December 2020 to July 2021, the May 2021 crash included) is read with
``training.candles.read_candle_file`` (validated; none is skipped) and the sectors come from
``coins.csv`` next to the folder (``read_coins_file``). The long candles (symbol, timestamp,
OHLC, volume) become one ``MarketPanel``; the files carry no market cap, so index weights use
the panel's dollar-volume proxy. No database is involved.

The four families are then validated top-down exactly as ``training.train.train_layers``
does it (``validate_family``, out-of-fold outputs of macro and sector passed down with
``extend_upstream``), with the default ``TrainSettings`` and default hyperparameters: nothing
is tuned, on this data or on any period reported here. No final model is fitted and nothing
is logged to MLflow or registered.

Reported per family, all on the out-of-fold rows of the walk-forward test period:

* the primary metric and the other main metrics of the model beside its naive baseline,
  scored on the same rows: majority regime (training class frequencies) for macro, "every
  sector tracks the market" (relative return 0) for sector, persistence (return 0) for
  asset, and for timing the base rates (always long / always short probabilities) with,
  beside the model's trading policy, always long and no trade;
* whether the model beats the baseline on the primary metric, overall and fold by fold;
* the calibration of its confidence on the held-out last fold (the calibrator is fitted on
  the out-of-fold rows of the earlier folds): Brier score and expected calibration error,
  raw and calibrated, with the base rate's Brier as the no-skill reference;
* the validation window (first and last test hour) and the wall time of the validation.

Run (progress on stderr, the tables on stdout, every figure also in a JSON file in /tmp):

    .venv/bin/python benchmarks/real_data.py [--data ../shared/data/binance-2021-1h] [--coins N]

``--coins N`` keeps the N coins with the most candles (default: all of them).
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

from models.families import Upstream
from models.panel import MarketPanel
from models.validation import ValidationResult
from training.candles import discover_candle_files, read_candle_file, read_coins_file
from training.train import LAYER_ORDER, TrainSettings, extend_upstream, validate_family

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPOSITORY.parent / "shared" / "data" / "binance-2021-1h"
COINS_FILE = "coins.csv"
DEFAULT_JSON = Path(tempfile.gettempdir()) / "cryptopredict-real-data.json"
Report = dict[str, Any]  # one calibration report: n_samples, brier, ece, base_rate, bins
# Metrics printed beside the baseline, primary first.
BASELINE_NAMES = {
    "macro": "majority regime (training class mix)",
    "sector": "market return (relative return 0)",
    "asset": "persistence (return 0)",
    "timing": "base rates (always long / always short); policy: always long or no trade",
}


def progress(message: str) -> None:
    print(f"[real-data] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- loading


@dataclass
class LoadedData:
    candles: pd.DataFrame  # long: symbol, timestamp, open, high, low, close, volume
    coins: pd.DataFrame  # symbol, name, sector
    files: int
    candle_counts: dict[str, int]
    seconds: float


def load_candles(data_dir: Path, coins_file: Path) -> LoadedData:
    """Every candle file in the folder, validated; all of them must load."""
    started = perf_counter()
    paths = discover_candle_files(data_dir)
    progress(f"reading {len(paths)} candle files from {data_dir}")
    frames = []
    for count, path in enumerate(paths, start=1):
        candle_file = read_candle_file(path)
        frames.append(candle_file.candles.assign(symbol=candle_file.symbol))
        if count % 25 == 0 or count == len(paths):
            progress(f"  {count}/{len(paths)} files read")
    candles = pd.concat(frames, ignore_index=True)
    counts = candles.groupby("symbol")["close"].count().sort_values(ascending=False)
    return LoadedData(
        candles=candles,
        coins=read_coins_file(coins_file),
        files=len(paths),
        candle_counts={str(symbol): int(count) for symbol, count in counts.items()},
        seconds=perf_counter() - started,
    )


def most_candles(counts: dict[str, int], limit: int | None) -> list[str]:
    """The `limit` symbols with the most candles (ties by symbol); all when limit is None."""
    ranked = sorted(counts, key=lambda symbol: (-counts[symbol], symbol))
    return ranked if limit is None else ranked[:limit]


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
    model_metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    beats_baseline: bool
    folds_beaten: int
    fold_metrics: list[dict[str, Any]]
    calibration: dict[str, Any]
    window: dict[str, str]


def validate_all(panel: MarketPanel, settings: TrainSettings) -> list[FamilyReport]:
    """Walk-forward validation of every family top-down, as train_layers chains them."""
    upstream = Upstream()
    reports = []
    for layer in LAYER_ORDER:
        progress(f"{layer}: walk-forward validation ({settings.n_folds} folds)")
        started = perf_counter()
        data, result = validate_family(layer, panel, upstream, settings)
        seconds = perf_counter() - started
        progress(f"{layer}: {len(data.X):,} rows x {data.X.shape[1]} features in {seconds:.1f} s")
        reports.append(_report(layer, data.X.shape, seconds, result, settings))
        upstream = extend_upstream(upstream, layer, result)
        del data, result
    return reports


def _report(
    layer: str,
    shape: tuple[int, int],
    seconds: float,
    result: ValidationResult,
    settings: TrainSettings,
) -> FamilyReport:
    family = settings.family(layer)
    metric, lower = family.primary_metric, family.lower_is_better
    beaten = sum(
        _better(fold["model"][metric], fold["baseline"][metric], lower)
        for fold in result.fold_metrics
    )
    return FamilyReport(
        layer=layer,
        name=family.name,
        primary_metric=metric,
        lower_is_better=lower,
        rows=shape[0],
        features=shape[1],
        seconds=seconds,
        model_metrics=result.model_metrics,
        baseline_metrics=result.baseline_metrics,
        beats_baseline=result.beats_baseline(metric, lower),
        folds_beaten=beaten,
        fold_metrics=result.fold_metrics,
        calibration=result.calibration,
        window=result.window,
    )


def _better(model: float, baseline: float, lower_is_better: bool) -> bool:
    return model < baseline if lower_is_better else model > baseline


# ---------------------------------------------------------------------------- reporting


def metrics_rows(reports: list[FamilyReport]) -> list[list[str]]:
    """The shared model-beside-baseline rows, plus what the market itself did for timing."""
    rows = []
    for report in reports:
        rows += metrics_table([report])
        if report.layer == "timing":
            for metric in ("always_long_return", "no_trade_return", "hit_rate_long"):
                rows.append(["", metric, number(report.model_metrics.get(metric)), "", ""])
    return rows


def folds_table(reports: list[FamilyReport]) -> str:
    header = [
        "family",
        "fold",
        "test start",
        "test end",
        "test rows",
        "model",
        "baseline",
        "better",
    ]
    rows = []
    for report in reports:
        metric = report.primary_metric
        for fold in report.fold_metrics:
            model, baseline = fold["model"][metric], fold["baseline"][metric]
            rows.append(
                [
                    report.name,
                    str(fold["fold"]),
                    fold["test_start"][:16],
                    fold["test_end"][:16],
                    f"{fold['test_rows']:,}",
                    number(model),
                    number(baseline),
                    "MODEL" if _better(model, baseline, report.lower_is_better) else "baseline",
                ]
            )
    return table(header, rows)


def calibration_rows(calibration: Report) -> list[tuple[str, Report | None, Report | None]]:
    """(what, raw report, calibrated report) for every confidence a family reports."""
    if not calibration:
        return []
    if "raw" in calibration or "calibrated" in calibration:
        return [("top-class confidence", calibration.get("raw"), calibration.get("calibrated"))]
    if "brier" in calibration:
        return [("P(accurate)", None, calibration)]
    return [
        (f"p_{key}", value.get("raw"), value.get("calibrated"))
        for key, value in calibration.items()
        if isinstance(value, dict)
    ]


def calibration_table(reports: list[FamilyReport]) -> str:
    header = [
        "family",
        "confidence",
        "n",
        "Brier raw",
        "ECE raw",
        "Brier calibrated",
        "ECE calibrated",
        "base rate",
        "Brier of base rate",
    ]
    rows = []
    for report in reports:
        entries = calibration_rows(report.calibration)
        if not entries:
            rows.append([report.name, "none (regression output)", *[""] * 7])
        for what, raw, calibrated in entries:
            either = calibrated or raw or {}
            rows.append(
                [
                    report.name,
                    what,
                    f"{either.get('n_samples', 0):,}",
                    number(raw and raw["brier"]),
                    number(raw and raw["ece"]),
                    number(calibrated and calibrated["brier"]),
                    number(calibrated and calibrated["ece"]),
                    number(either.get("base_rate")),
                    number(either.get("brier_of_base_rate")),
                ]
            )
    return table(header, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of candle files")
    parser.add_argument(
        "--coins-file", type=Path, default=None, help="symbol,name,sector (default: data/../)"
    )
    parser.add_argument(
        "--coins", type=int, default=None, help="keep the N coins with the most candles"
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args(argv)
    coins_file = args.coins_file or args.data.parent / COINS_FILE

    started = perf_counter()
    load_before = os.getloadavg()
    loaded = load_candles(args.data, coins_file)
    chosen = most_candles(loaded.candle_counts, args.coins)
    candles = loaded.candles[loaded.candles["symbol"].isin(chosen)]
    build_started = perf_counter()
    panel = MarketPanel.from_candles(
        candles[["symbol", "timestamp", "open", "high", "low", "close", "volume"]], loaded.coins
    )
    build_seconds = perf_counter() - build_started
    del candles
    missing_share = float(panel.close.isna().to_numpy().mean())
    no_sector = sorted(panel.sectors[panel.sectors.isna()].index)
    progress(
        f"panel: {len(panel.symbols)} coins x {len(panel.hours):,} hours, "
        f"{missing_share:.1%} of coin-hours without a candle ({build_seconds:.1f} s)"
    )
    settings = TrainSettings()
    reports = validate_all(panel, settings)
    elapsed = perf_counter() - started
    load_after = os.getloadavg()

    first, last = panel.hours[0], panel.hours[-1]
    # Written before the tables, so a closed stdout (| head) cannot lose the figures.
    results = {
        "data": str(args.data),
        "coins_file": str(coins_file),
        "files": loaded.files,
        "coins": panel.symbols,
        "coins_limit": args.coins,
        "hours": len(panel.hours),
        "first_hour": first.isoformat(),
        "last_hour": last.isoformat(),
        "missing_share": missing_share,
        "coins_without_sector": no_sector,
        "settings": asdict(settings),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "read_seconds": loaded.seconds,
        "panel_seconds": build_seconds,
        "elapsed_s": elapsed,
        "families": [asdict(report) for report in reports],
    }
    args.json.write_text(json.dumps(results, indent=2, default=str))
    progress(f"results written to {args.json}")

    print(
        f"Real data: {loaded.files} files from {args.data} ({loaded.seconds:.1f} s to read and "
        f"validate), {len(panel.symbols)} of {len(loaded.candle_counts)} coins"
        + ("" if args.coins is None else f" (--coins {args.coins}: most candles)")
        + f", {len(panel.hours):,} hours {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
    )
    print(
        f"{missing_share:.1%} of coin-hours have no candle (later listings, maintenance gaps); "
        f"no market caps: dollar-volume index weights; coins without a sector: "
        f"{', '.join(no_sector) or 'none'}"
    )
    print(
        f"default TrainSettings, nothing tuned: horizons {settings.horizons}, "
        f"{settings.n_folds} folds over the last {settings.test_fraction:.0%} of the hours, "
        f"purge = horizon, min_train_hours {settings.min_train_hours}, seed "
        f"{settings.random_state}"
    )
    print(
        f"{os.cpu_count()} CPUs shared with other processes; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; whole run {elapsed:.0f} s"
    )
    print()
    print("validated (out-of-fold rows of the test period):")
    print(
        table(
            ["family", "rows", "features", "seconds", "validation window (UTC)", "baseline"],
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
    print("model beside its naive baseline, over the whole validation window:")
    print(table(METRICS_HEADER, metrics_rows(reports)))
    print()
    print("primary metric fold by fold (each fold trains on everything before it, purged):")
    print(folds_table(reports))
    print()
    print(
        "calibration of the confidence on the held-out last fold "
        "(calibrator fitted on the out-of-fold rows of the earlier folds):"
    )
    print(calibration_table(reports))
    print()
    for report in reports:
        verdict = "beats" if report.beats_baseline else "does NOT beat"
        print(
            f"{report.name}: {verdict} its baseline on {report.primary_metric} "
            f"({number(report.model_metrics[report.primary_metric])} vs "
            f"{number(report.baseline_metrics[report.primary_metric])}); better in "
            f"{report.folds_beaten} of {len(report.fold_metrics)} folds"
        )

    return 0


if __name__ == "__main__":
    sys.exit(main())
