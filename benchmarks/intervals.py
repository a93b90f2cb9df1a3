"""Price intervals on real candles: walk-forward coverage and width per forecast horizon.

For each real set and each horizon (default 4, 24 and 168 hours) the asset family is
validated exactly as `cryptopredict train` does it (`validate_family`, default settings,
nothing tuned on these sets), and three 80 % intervals are scored on the same scored
out-of-fold rows (folds 1 and later; fold 0 only trains the serving transform):

* **served**: split-conformal on out-of-fold errors scaled by the coin's volatility
  (`models.intervals`), each fold's multipliers fitted on the earlier folds only;
* **quantile model**: XGBoost with the quantile loss at 10 % and 90 % on the family's
  features, fitted on each fold's training rows (the other way the issue names);
* **naive**: the persistence price plus or minus the normal quantile of the coin's trailing
  volatility times the square root of the horizon.

Coverage is the share of actual prices inside (goal: the level); width is the mean of
upper minus lower as a percent of the price. Better calibrated = coverage nearer the level.

    .venv/bin/python benchmarks/intervals.py [--data DIR ...] [--coins N] [--horizon H ...]
        [--no-quantile-model]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from real_data import (
    COINS_FILE,
    DEFAULT_SETS,
    SHARED_DATA,
    build_panel,
    load_candles,
    progress,
)
from report import table

from models.families.base import TrainingData
from models.families.cross_section import RANKED_PREFIX
from models.intervals import LOWER, UPPER, interval_report
from models.validation import ValidationResult
from training.candles import read_coins_file
from training.train import TrainSettings, validate_family

DEFAULT_HORIZONS = (4, 24, 168)
DEFAULT_JSON = Path(tempfile.gettempdir()) / "cryptopredict-intervals.json"
QUANTILE_TREES = {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05}


def quantile_model_bounds(
    data: TrainingData, result: ValidationResult, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper log returns of a quantile XGBoost fitted fold by fold, for the
    out-of-fold rows in `result.oof` order (NaN for fold 0, which is not scored)."""
    tail = (1.0 - level) / 2.0
    columns = [c for c in data.X.columns if c.startswith(RANKED_PREFIX)]
    columns += ["realized_vol_24h", "realized_vol_168h"]
    parts = []
    for fold in result.folds:
        test = data.rows(fold.test_index)
        if fold.number == 0:
            parts.append(np.full((len(test.X), 2), np.nan))
            continue
        train = data.rows(fold.train_index)
        model = xgb.XGBRegressor(
            objective="reg:quantileerror",
            quantile_alpha=np.array([tail, 1.0 - tail]),
            tree_method="hist",
            n_jobs=2,
            random_state=0,
            **QUANTILE_TREES,
        )
        model.fit(train.X[columns], train.y["forward_return"])
        bounds = np.sort(np.asarray(model.predict(test.X[columns])), axis=1)
        parts.append(bounds)
    stacked = np.concatenate(parts)
    return stacked[:, 0], stacked[:, 1]


def horizon_row(
    panel: Any, horizon: int, settings: TrainSettings, quantile_model: bool
) -> dict[str, Any]:
    started = perf_counter()
    data, result = validate_family("asset", panel, settings, horizon)
    validated = perf_counter() - started
    scored = result.scored
    actual = result.oof.y["forward_return"].to_numpy()[scored]
    level = float(result.model_metrics["interval_level"])
    quantile: dict[str, Any] = {}
    if quantile_model:
        lower, upper = quantile_model_bounds(data, result, level)
        quantile = interval_report(lower[scored], upper[scored], actual, level)
    return {
        "horizon": horizon,
        "rows": int(scored.sum()),
        "served": _interval(result.served, scored, actual, level),
        "quantile_model": quantile,
        "naive": _interval(result.baseline, scored, actual, level),
        "validate_s": validated,
        "quantile_s": perf_counter() - started - validated,
    }


def _interval(
    predictions: pd.DataFrame, scored: np.ndarray, actual: np.ndarray, level: float
) -> dict[str, Any]:
    lower = predictions[LOWER].to_numpy()[scored]
    upper = predictions[UPPER].to_numpy()[scored]
    return interval_report(lower, upper, actual, level)


def print_rows(name: str, rows: list[dict[str, Any]]) -> None:
    header = ["set", "horizon", "rows"]
    for method in ("served", "quantile model", "naive"):
        header += [f"{method} coverage", f"{method} width %"]
    lines = []
    for row in rows:
        line = [name, f"{row['horizon']} h", f"{row['rows']:,}"]
        for method in ("served", "quantile_model", "naive"):
            figures = row[method]
            if not figures:
                line += ["-", "-"]
                continue
            line += [f"{figures['interval_coverage']:.1%}", f"{figures['interval_width_pct']:.2f}"]
        lines.append(line)
    print(table(header, lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, action="append", help="folder of candle files")
    parser.add_argument("--coins", type=int, default=None, help="the N coins with most candles")
    parser.add_argument("--horizon", type=int, action="append", help="hours ahead (repeat)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument(
        "--no-quantile-model",
        action="store_true",
        help="score the served and naive intervals only (the quantile fits take most of the time)",
    )
    args = parser.parse_args(argv)
    folders = args.data or [SHARED_DATA / name for name in DEFAULT_SETS]
    horizons = tuple(args.horizon or DEFAULT_HORIZONS)
    coins = read_coins_file(COINS_FILE)
    settings = TrainSettings()
    load_before = os.getloadavg()
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_average_before": load_before}
    for folder in folders:
        panel = build_panel(load_candles(folder), coins, args.coins)
        progress(f"{folder.name}: {len(panel.symbols)} coins x {len(panel.hours):,} hours")
        rows = []
        for horizon in horizons:
            progress(f"{folder.name}: {horizon} h")
            rows.append(horizon_row(panel, horizon, settings, not args.no_quantile_model))
        print_rows(folder.name, rows)
        results[folder.name] = rows
        args.json.write_text(json.dumps(results, indent=2, default=str))
    progress(f"results in {args.json}; load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
