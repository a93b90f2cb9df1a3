"""Training benchmark: wall time, CPU time and peak memory of each model family.

A synthetic market (``training.synthetic.generate_market(coins, days, seed)``, hourly candles
with market caps and sectors) is turned into a ``MarketPanel`` in memory; no database is
involved. The four families are then trained top-down with the default ``TrainSettings``
(default horizons, 4 walk-forward folds, default hyperparameters), exactly as
``training.train.train_layers`` does it: each family is validated walk-forward
(``validate_family``: features, labels and the nested folds), then fitted on every row with
its serving transform (calibration, shrinkage weight) fitted on its out-of-fold predictions
(``fit_final``).

Measured per family and step:

* wall seconds of ``validate_family`` (feature and label building included) and of
  ``fit_final``; their sum is the training time the goal is about;
* CPU seconds (user + system, all threads of the process) of the same steps, which depend
  less than wall time on other processes sharing the machine;
* peak resident memory (RSS) of the whole process during the step: the kernel's high-water
  mark is reset before each step (``echo 5 > /proc/self/clear_refs``) and read back after it
  (``VmHWM`` in ``/proc/self/status``). It is the process total, so it includes what is
  already resident (interpreter, libraries, the panel); the rise over the
  RSS at the start of the step is shown beside it. Where the reset is not allowed, the
  column falls back to ``ru_maxrss``: the process peak so far, and the table says so;
* rows and feature columns of the family's training data.

MLflow is timed separately and is *not* part of the training time: ``log_and_register``
(parameters, metrics, plots, the pyfunc model and a registered version) into a throwaway
store ``sqlite:///<tmpdir>/mlflow.db`` with its artifacts in the same temporary folder. The
``ai_models`` rows that ``train_family`` also writes are not measured (no database here).
Generating the market and building the panel are set-up, reported but not counted.

The goal from the issue: all four families (validation + final fit) in under 5 minutes on a
2-core machine, for 20 coins x 2 years of hourly candles. XGBoost uses 2 threads
(``models.families.xgb.TREE_DEFAULTS``) and the GRU 1 (``models.sequence.TORCH_THREADS``).

Run (progress on stderr, the tables on stdout, all figures also as JSON):

    .venv/bin/python benchmarks/train.py [--coins 20] [--days 730] [--seed 2024] [--no-mlflow]

``--xgb-jobs N`` is a diagnostic, not the default configuration: it overrides the XGBoost
thread count of the three tree families (to compare 1 and 2 threads on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from time import perf_counter
from typing import Any

import pandas as pd
from report import METRICS_HEADER, metrics_table, table

from config.settings import DEFAULT_FORECAST_HORIZONS
from models.families import FAMILIES
from models.panel import MarketPanel
from models.validation import ValidationResult, better, fit_final
from store.tracking import configure_tracking
from training.candles import discover_candle_files, read_candle_file, read_coins_file
from training.synthetic import generate_market
from training.train import (
    TrainSettings,
    log_and_register,
    run_configuration,
    validate_family,
)

DEFAULT_COINS = 20
DEFAULT_DAYS = 730
DEFAULT_SEED = 2024
GOAL_SECONDS = 5 * 60
GOAL_CORES = 2
TREE_LAYERS = ("macro", "sector", "asset")  # the XGBoost families; timing is a GRU
DEFAULT_JSON = Path(tempfile.gettempdir()) / "cryptopredict-bench-train.json"
COINS_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "coins-all.csv"
STATUS_FILE = Path("/proc/self/status")
CLEAR_REFS_FILE = Path("/proc/self/clear_refs")
RESET_PEAK = "5"  # clear_refs: reset the peak RSS to the current RSS (Linux >= 4.0)
MIB = 1024 * 1024


def progress(message: str) -> None:
    print(f"[bench-train] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- measuring


def _status_kib(key: str) -> int:
    for line in STATUS_FILE.read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def _can_reset_peak() -> bool:
    try:
        CLEAR_REFS_FILE.write_text(RESET_PEAK)
        _status_kib("VmHWM")
    except OSError:
        return False
    return True


PEAK_RESETTABLE = _can_reset_peak()


def _rss_bytes() -> int:
    return _status_kib("VmRSS") * 1024 if STATUS_FILE.exists() else 0


def _peak_bytes() -> int:
    if PEAK_RESETTABLE:
        return _status_kib("VmHWM") * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Step:
    """One measured step: wall and CPU seconds, RSS at the start and the peak during it."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    rss_start_mib: float = 0.0
    peak_rss_mib: float = 0.0

    @property
    def rise_mib(self) -> float:
        return self.peak_rss_mib - self.rss_start_mib


@contextmanager
def measure() -> Iterator[Step]:
    step = Step(rss_start_mib=_rss_bytes() / MIB)
    if PEAK_RESETTABLE:
        CLEAR_REFS_FILE.write_text(RESET_PEAK)
    cpu, wall = _cpu_seconds(), perf_counter()
    yield step
    step.wall_s = perf_counter() - wall
    step.cpu_s = _cpu_seconds() - cpu
    step.peak_rss_mib = _peak_bytes() / MIB


@dataclass
class FamilyRun:
    layer: str
    name: str
    rows: int
    features: int
    validate: Step
    final_fit: Step
    mlflow: Step | None
    primary_metric: str
    lower_is_better: bool
    model_metrics: dict[str, Any]
    raw_metrics: dict[str, Any]
    baseline_metrics: dict[str, Any]
    skill: dict[str, Any]
    window: dict[str, str]
    fold_metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def train_s(self) -> float:
        return self.validate.wall_s + self.final_fit.wall_s

    @property
    def train_cpu_s(self) -> float:
        return self.validate.cpu_s + self.final_fit.cpu_s

    @property
    def peak_step(self) -> Step:
        """Whichever of validation and final fit reached the higher RSS."""
        if self.validate.peak_rss_mib >= self.final_fit.peak_rss_mib:
            return self.validate
        return self.final_fit

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_step.peak_rss_mib

    @property
    def beats_baseline(self) -> bool:
        return better(
            self.model_metrics[self.primary_metric],
            self.baseline_metrics[self.primary_metric],
            self.lower_is_better,
        )


# ---------------------------------------------------------------------------- the run


class MlflowStore:
    """A throwaway MLflow tracking store and artifact folder, created (and warmed) up front."""

    def __init__(self, root: Path) -> None:
        self.artifact_root = root / "mlartifacts"
        self.client = configure_tracking(f"sqlite:///{root / 'mlflow.db'}", self.artifact_root)
        self.client.search_experiments()  # creates the SQLite schema outside the timings


def train_family(
    layer: str,
    panel: MarketPanel,
    settings: TrainSettings,
    store: MlflowStore | None,
    horizon: int | None = None,
) -> tuple[FamilyRun, ValidationResult]:
    family = settings.family(layer, horizon)
    name = family.registered_name
    progress(f"{name}: walk-forward validation ({settings.n_folds} folds)")
    with measure() as validate:
        data, result = validate_family(layer, panel, settings, horizon)
    progress(f"{name}: validated in {validate.wall_s:.1f} s; final fit on all {len(data.X)} rows")
    with measure() as final_fit:
        final = fit_final(lambda: settings.family(layer, horizon), data, result)
    progress(f"{name}: final fit in {final_fit.wall_s:.1f} s")
    mlflow_step = None
    if store is not None:
        configuration = run_configuration(layer, panel, settings, horizon)
        with measure() as mlflow_step:
            log_and_register(
                store.client, store.artifact_root, layer, final, data, result, configuration
            )
        progress(f"{name}: MLflow run and registered version in {mlflow_step.wall_s:.1f} s")
    run = FamilyRun(
        layer=layer,
        name=name,
        rows=len(data.X),
        features=data.X.shape[1],
        validate=validate,
        final_fit=final_fit,
        mlflow=mlflow_step,
        primary_metric=family.primary_metric,
        lower_is_better=family.lower_is_better,
        model_metrics=result.model_metrics,
        raw_metrics=result.raw_metrics,
        baseline_metrics=result.baseline_metrics,
        skill=result.skill,
        window=result.window,
        fold_metrics=result.fold_metrics,
    )
    return run, result


def train_all(
    panel: MarketPanel, settings: TrainSettings, store: MlflowStore | None
) -> list[FamilyRun]:
    """Every family at every horizon, top-down as `train_layers` trains them."""
    return [
        train_family(layer, panel, settings, store, horizon)[0]
        for layer in FAMILIES
        for horizon in settings.line_horizons(layer)
    ]


# ---------------------------------------------------------------------------- reporting


def timing_table(runs: list[FamilyRun], peak_label: str) -> str:
    header = [
        "family",
        "rows",
        "features",
        "validate s",
        "final fit s",
        "train s",
        "train CPU s",
        peak_label,
        "rise MiB",
        "MLflow s",
        "MLflow peak MiB",
    ]
    rows = []
    for run in runs:
        rows.append(
            [
                run.name,
                f"{run.rows:,}",
                f"{run.features:,}",
                f"{run.validate.wall_s:.1f}",
                f"{run.final_fit.wall_s:.1f}",
                f"{run.train_s:.1f}",
                f"{run.train_cpu_s:.1f}",
                f"{run.peak_rss_mib:,.0f}",
                f"{run.peak_step.rise_mib:+,.0f}",
                "-" if run.mlflow is None else f"{run.mlflow.wall_s:.1f}",
                "-" if run.mlflow is None else f"{run.mlflow.peak_rss_mib:,.0f}",
            ]
        )
    total_mlflow = [run.mlflow.wall_s for run in runs if run.mlflow is not None]
    rows.append(
        [
            "total",
            "",
            "",
            f"{sum(run.validate.wall_s for run in runs):.1f}",
            f"{sum(run.final_fit.wall_s for run in runs):.1f}",
            f"{sum(run.train_s for run in runs):.1f}",
            f"{sum(run.train_cpu_s for run in runs):.1f}",
            f"{max(run.peak_rss_mib for run in runs):,.0f}",
            "",
            f"{sum(total_mlflow):.1f}" if total_mlflow else "-",
            "",
        ]
    )
    return table(header, rows)


def market_candles(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long candles and coins: the synthetic market, or every file of a real folder."""
    if args.real is None:
        market = generate_market(args.coins, args.days, args.seed)
        return market.candles, market.coins
    frames = []
    for path in discover_candle_files(args.real):
        candle_file = read_candle_file(path)
        frames.append(candle_file.candles.assign(symbol=candle_file.symbol))
    columns = ["symbol", "timestamp", "open", "high", "low", "close", "volume"]
    return pd.concat(frames, ignore_index=True)[columns], read_coins_file(COINS_FILE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coins", type=int, default=DEFAULT_COINS, help="coins in the market")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="days of hourly candles")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the market")
    parser.add_argument(
        "--real",
        type=Path,
        default=None,
        help="train on this folder of real candles (with ../shared/data/coins-all.csv) instead",
    )
    parser.add_argument(
        "--no-mlflow", action="store_true", help="skip timing MLflow logging and registration"
    )
    parser.add_argument(
        "--xgb-jobs",
        type=int,
        default=None,
        help="diagnostic: XGBoost threads (n_jobs) of the tree families instead of the default",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    started = perf_counter()
    source = f"synthetic, seed {args.seed}" if args.real is None else f"real: {args.real}"
    progress(f"market: {source}")
    with measure() as generate:
        candles, coins = market_candles(args)
    with measure() as build:
        panel = MarketPanel.from_candles(candles, coins)
    progress(
        f"panel: {len(panel.symbols)} coins x {len(panel.hours)} hours "
        f"(generate {generate.wall_s:.1f} s, panel {build.wall_s:.1f} s)"
    )
    # The asset family at every default forecast horizon, as `cryptopredict train` trains it.
    settings = TrainSettings(forecast_horizons=DEFAULT_FORECAST_HORIZONS)
    if args.xgb_jobs is not None:
        jobs = {"n_jobs": args.xgb_jobs}
        settings = replace(settings, params={layer: jobs for layer in TREE_LAYERS})
    with tempfile.TemporaryDirectory(prefix="bench-train-mlflow-") as tmp:
        store = None
        if not args.no_mlflow:
            with measure() as mlflow_setup:
                store = MlflowStore(Path(tmp))
            progress(f"MLflow store in {tmp} ready in {mlflow_setup.wall_s:.1f} s")
        runs = train_all(panel, settings, store)
    elapsed = perf_counter() - started
    load_after = os.getloadavg()

    train_total = sum(run.train_s for run in runs)
    cores = os.cpu_count() or 0
    # Written before the tables, so a closed stdout (| head) cannot lose the figures.
    results = {
        "coins": len(panel.symbols),
        "hours": len(panel.hours),
        "source": source,
        "xgb_jobs": args.xgb_jobs,
        "settings": asdict(settings),
        "cpus": cores,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "peak_measure": "VmHWM reset per step" if PEAK_RESETTABLE else "ru_maxrss so far",
        "setup": {"generate": asdict(generate), "panel": asdict(build)},
        "families": [
            {**asdict(run), "train_s": run.train_s, "beats_baseline": run.beats_baseline}
            for run in runs
        ],
        "train_total_s": train_total,
        "goal_s": GOAL_SECONDS,
        "goal_met": train_total < GOAL_SECONDS,
        "elapsed_s": elapsed,
    }
    args.json.write_text(json.dumps(results, indent=2, default=str))
    progress(f"results written to {args.json}")

    peak_label = "peak RSS MiB" if PEAK_RESETTABLE else "peak RSS so far MiB"
    print(
        f"Training benchmark: {len(panel.symbols)} coins x {len(panel.hours):,} hours "
        f"({source}), default TrainSettings: horizons {settings.horizons}, asset forecast "
        f"horizons {list(settings.forecast_horizons)}, {settings.n_folds} folds, "
        f"test_fraction {settings.test_fraction}"
        + ("" if args.xgb_jobs is None else f"; NOT default: XGBoost n_jobs={args.xgb_jobs}")
    )
    print(
        f"machine: {cores} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after (other processes share the machine)"
    )
    print()
    print(timing_table(runs, peak_label))
    print()
    print(
        "train s = validate (features, labels, walk-forward folds) + final fit (all rows, "
        "calibration); MLflow (log_and_register into a temp store) is not part of it."
    )
    print(
        f"{peak_label}: whole-process "
        + (
            "high-water mark during the step (VmHWM reset before it); rise = peak - RSS at "
            "its start."
            if PEAK_RESETTABLE
            else "ru_maxrss after the step (peak since the process started)."
        )
    )
    verdict = "met" if train_total < GOAL_SECONDS else "NOT met"
    print(
        f"goal: all four families in under {GOAL_SECONDS / 60:.0f} min on {GOAL_CORES} cores: "
        f"{train_total:.1f} s on {cores} cores -> {verdict}"
    )
    print(
        f"set-up (not counted): market {generate.wall_s:.1f} s, panel {build.wall_s:.1f} s; "
        f"whole script {elapsed:.1f} s"
    )
    print()
    print("nested walk-forward validation, served output beside the raw model and the baseline:")
    print(table(METRICS_HEADER, metrics_table(runs)))
    for run in runs:
        print(f"  {run.name}: {run.window['validation_start']} to {run.window['validation_end']}")

    return 0


if __name__ == "__main__":
    sys.exit(main())
