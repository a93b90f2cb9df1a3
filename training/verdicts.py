"""What a version's validation says, in the words every table uses.

`ai_models.performance_metrics` holds the figures (see `training.train.train_family`); the
command line, the demo and the benchmarks print them through these functions, so "no
demonstrated edge" and "does not beat the best simple factor" read the same everywhere.
"""

from __future__ import annotations

from typing import Any

from models.skill import DOES_NOT_BEAT_FACTOR, EDGE, NO_EDGE


def skill_text(skill: dict[str, Any] | None) -> str:
    """'+1.20% [+0.30%, +2.10%]': the served output's improvement on its baseline, 90 % interval."""
    if not skill or skill.get("estimate") is None:
        return "-"
    return f"{skill['estimate']:+.2%} [{skill['low']:+.2%}, {skill['high']:+.2%}]"


def edge_text(metrics: dict[str, Any]) -> str:
    """'edge' where the skill interval lies above 0, else NO_EDGE."""
    skill = metrics.get("skill") or {}
    return "edge" if skill.get("edge") == EDGE else NO_EDGE


def factor_text(validation: dict[str, Any]) -> str | None:
    """The served ranking beside the best one-line factor chosen out of fold, if compared."""
    factor = validation.get("factor")
    if not factor or factor.get("difference") is None:
        return None
    text = (
        f"rank IC {factor['model_rank_ic']:.3f} vs best factor {factor['factor_rank_ic']:.3f}, "
        f"difference {factor['difference']:+.3f} "
        f"[{factor['difference_low']:+.3f}, {factor['difference_high']:+.3f}]"
    )
    return text if factor.get("beats_factor") else f"{text}: {DOES_NOT_BEAT_FACTOR}"


def interval_text(metrics: dict[str, Any]) -> str | None:
    """'80% interval: covers 79.1% ±4.2% wide (naive 85.3% ±5.0%)': walk-forward coverage and
    mean width of the served interval beside the naive one; None for a family without one."""
    served = metrics.get("validation") or {}
    naive = metrics.get("baseline") or {}
    if served.get("interval_coverage") is None:
        return None
    text = (
        f"{served['interval_level']:.0%} interval: covers {served['interval_coverage']:.1%} "
        f"±{served['interval_width_pct'] / 2:.1f}% wide"
    )
    if naive.get("interval_coverage") is None:
        return text
    return (
        f"{text} (naive {naive['interval_coverage']:.1%} ±{naive['interval_width_pct'] / 2:.1f}%)"
    )
