"""Plain-text tables shared by the benchmark scripts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

# The figures worth reading per family, primary metric first.
MAIN_METRICS: dict[str, tuple[str, ...]] = {
    "macro": ("log_loss", "accuracy", "balanced_accuracy", "macro_f1", "brier"),
    "sector": ("rmse", "mae", "directional_accuracy", "information_coefficient", "r2_vs_zero"),
    "asset": (
        "mae",
        "rmse",
        "directional_accuracy",
        "accuracy_rate",
        "information_coefficient",
        "r2_vs_zero",
    ),
    "timing": ("brier", "brier_long", "brier_short", "policy_return", "trade_share"),
}


class ScoredFamily(Protocol):
    layer: str
    name: str
    model_metrics: Mapping[str, Any]
    baseline_metrics: Mapping[str, Any]
    lower_is_better: bool
    beats_baseline: bool


def table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned first column, right-aligned numbers, a rule under the header."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def number(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.5g}"


def metrics_table(families: Sequence[ScoredFamily]) -> list[list[str]]:
    """Rows of model beside baseline for each family's main metrics (header separate)."""
    rows = []
    for family in families:
        for i, metric in enumerate(MAIN_METRICS[family.layer]):
            if i == 0:
                direction = "lower" if family.lower_is_better else "higher"
                label = f"{metric} (primary, {direction} is better)"
                verdict = "model" if family.beats_baseline else "baseline"
            else:
                label, verdict = metric, ""
            rows.append(
                [
                    family.name if i == 0 else "",
                    label,
                    number(family.model_metrics.get(metric)),
                    number(family.baseline_metrics.get(metric)),
                    verdict,
                ]
            )
    return rows


METRICS_HEADER = ["family", "metric", "model", "baseline", "better"]
