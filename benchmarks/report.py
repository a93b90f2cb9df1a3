"""Plain-text tables shared by the benchmark scripts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from training.verdicts import edge_text, skill_text

# The figures worth reading per family, primary metric first.
MAIN_METRICS: dict[str, tuple[str, ...]] = {
    "macro": (
        "log_loss",
        "log_loss_skill_vs_uniform",
        "log_loss_climatology",
        "rps",
        "ece",
        "accuracy",
        "independent_windows",
    ),
    "sector": ("mae", "rank_ic", "icir", "rank_ic_t", "quintile_spread", "directional_accuracy"),
    "asset": (
        "mae",
        "rank_ic",
        "icir",
        "rank_ic_t",
        "quintile_spread",
        "quintile_spread_t",
        "directional_accuracy",
        "up_share",
        "accuracy_rate",
    ),
    "timing": (
        "brier",
        "auc_long",
        "auc_short",
        "ece_long",
        "ece_short",
        "expectancy_per_trade",
        "trades",
    ),
}


class ScoredFamily(Protocol):
    layer: str
    name: str
    model_metrics: Mapping[str, Any]
    raw_metrics: Mapping[str, Any]
    baseline_metrics: Mapping[str, Any]
    skill: Mapping[str, Any]
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
    """Served, raw and baseline side by side for each family's main metrics, and the skill
    of the served output with its interval (header separate)."""
    rows = []
    for family in families:
        for i, metric in enumerate(MAIN_METRICS[family.layer]):
            if i == 0:
                direction = "lower" if family.lower_is_better else "higher"
                label = f"{metric} (primary, {direction} is better)"
                verdict = f"{skill_text(dict(family.skill))} {edge_text({'skill': family.skill})}"
            else:
                label, verdict = metric, ""
            rows.append(
                [
                    family.name if i == 0 else "",
                    label,
                    number(family.model_metrics.get(metric)),
                    number(family.raw_metrics.get(metric)),
                    number(family.baseline_metrics.get(metric)),
                    verdict,
                ]
            )
    return rows


METRICS_HEADER = ["family", "metric", "served", "raw model", "baseline", "skill (90%)"]
