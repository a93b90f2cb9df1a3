"""Never worse than the baseline, by construction: serve baseline + w * (model - baseline).

A family's served output departs from its naive baseline only as far as out-of-fold evidence
supports. The weight w in [0, 1] is chosen on a grid to minimise the family's own loss on
predictions the model did not train on, and it is 0 when the model adds nothing: then the
baseline itself is served. `fit_demonstrated_weight` asks for more: the blend's improvement
over the baseline on those rows must hold in a block bootstrap (its interval above 0), or
the weight is 0. A weight fitted to noise would otherwise carry a small loss into every
later prediction. Values blend linearly; probabilities blend on the logit scale
(binary) or as a geometric pool of distributions (several classes), so a blend of two
probabilities that lie strictly inside (0, 1) does too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from models.skill import skill_interval

# 21 weights: finer steps would fit noise, since the evidence is a few hundred horizon blocks.
WEIGHT_GRID = np.linspace(0.0, 1.0, 21)
# The improvement must hold at the 2.5 % one-sided level: a gate tried once per fold and
# family at 5 % let a null market through about once per run.
GATE_CONFIDENCE = 0.95
# Probabilities are kept this far from 0 and 1 before taking logs.
PROBABILITY_EPSILON = 1e-6


def blend_values(baseline: ArrayLike, model: ArrayLike, weight: float) -> np.ndarray:
    """baseline + weight * (model - baseline), for returns and other plain values."""
    base = np.asarray(baseline, dtype=float)
    return base + weight * (np.asarray(model, dtype=float) - base)


def blend_probabilities(baseline: ArrayLike, model: ArrayLike, weight: float) -> np.ndarray:
    """Binary probabilities blended on the logit scale."""
    blended = blend_values(logit(baseline), logit(model), weight)
    return np.asarray(1.0 / (1.0 + np.exp(-blended)))


def blend_distributions(baseline: ArrayLike, model: ArrayLike, weight: float) -> np.ndarray:
    """Rows of class probabilities pooled geometrically: p ~ baseline^(1-w) * model^w."""
    log_base = np.log(_clip(baseline))
    pooled = blend_values(log_base, np.log(_clip(model)), weight)
    pooled -= pooled.max(axis=1, keepdims=True)
    weights = np.exp(pooled)
    return np.asarray(weights / weights.sum(axis=1, keepdims=True))


def fit_weight(loss_at: Callable[[float], float], grid: ArrayLike = WEIGHT_GRID) -> float:
    """The grid weight with the lowest loss; ties go to the smaller weight (nearer the baseline)."""
    weights = np.asarray(grid, dtype=float)
    losses = np.array([loss_at(float(weight)) for weight in weights])
    return float(weights[int(np.argmin(losses))])


def fit_demonstrated_weight(
    row_losses: Callable[[float], np.ndarray], blocks: np.ndarray, grid: ArrayLike = WEIGHT_GRID
) -> float:
    """`fit_weight` on the mean of `row_losses(w)`, kept only if its skill interval is above 0.

    `blocks` groups the rows into non-overlapping horizon blocks (`models.skill.horizon_blocks`)
    for the bootstrap.
    """
    weight = fit_weight(lambda w: float(np.mean(row_losses(w))), grid)
    if weight == 0.0:
        return 0.0
    baseline = row_losses(0.0)
    if float(np.mean(baseline)) == 0.0:
        return 0.0
    interval = skill_interval(row_losses(weight), baseline, blocks, confidence=GATE_CONFIDENCE)
    return weight if interval.low > 0 else 0.0


def _clip(probabilities: ArrayLike) -> np.ndarray:
    return np.clip(np.asarray(probabilities, dtype=float), PROBABILITY_EPSILON, 1.0)


def logit(probabilities: ArrayLike) -> np.ndarray:
    """log(p / (1 - p)), p kept `PROBABILITY_EPSILON` away from 0 and 1."""
    p = np.clip(
        np.asarray(probabilities, dtype=float), PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON
    )
    return np.asarray(np.log(p) - np.log1p(-p))
