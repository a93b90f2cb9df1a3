"""Skill metrics with honest uncertainty: rank IC, quintile spreads and bootstrapped skill.

A point estimate of skill says little when forecast rows overlap: the labels of hours t and
t + 1 share all but one hour of their future, so n hourly rows carry far fewer than n
independent observations. Everything here therefore measures spread over non-overlapping
blocks of `horizon` hours (`horizon_blocks`): t-statistics use the block means, and
intervals come from a block bootstrap that resamples whole blocks. Adjacent blocks still
share a little of their future, so the t-statistics lean slightly optimistic.

Cross-sectional functions take pandas Series indexed (timestamp, entity) and work on every
hour at once (grouped ranks and sums, never a loop over hours), so they scale to a million
rows. Summaries return plain Python values with None where a metric is undefined, as
`models.metrics` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score

from models.labels import BEAR, BULL, SIDEWAYS
from models.metrics import (
    LOG_LOSS_EPSILON,
    check_binary_outcomes,
    check_finite_vector,
    check_labels,
    check_probabilities,
    check_probability_matrix,
)

# Regime codes from the lowest category to the highest, for ranked probability scores.
REGIME_ORDER = (BEAR, SIDEWAYS, BULL)
DOES_NOT_BEAT_FACTOR = "does not beat the best simple factor"
# Verdicts on a skill interval: above 0, or reaching 0 (the served output may be no better
# than its baseline).
EDGE = "demonstrated"
NO_EDGE = "no demonstrated edge"


# --------------------------------------------------------------------------- blocks


def horizon_blocks(timestamps: ArrayLike | pd.Index, horizon: int) -> np.ndarray:
    """Block id per row: floor((t - first t) / horizon hours).

    Rows whose labels overlap (less than `horizon` hours apart) fall in the same or in
    adjacent blocks, so blocks are the unit of independent evidence.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 hour, got {horizon}")
    hours = pd.DatetimeIndex(timestamps)
    if hours.empty:
        return np.zeros(0, dtype=np.int64)
    return np.asarray((hours - hours.min()) // pd.Timedelta(hours=horizon), dtype=np.int64)


def _block_t(per_hour: pd.Series, horizon: int) -> tuple[float | None, float | None, int]:
    """(mean of block means / their sd, t of the block means, number of blocks)."""
    means = per_hour.groupby(horizon_blocks(per_hour.index, horizon)).mean()
    n_blocks = len(means)
    if n_blocks < 2 or means.max() == means.min():  # the sd of equal means may round above 0
        return None, None, n_blocks
    ratio = float(means.mean()) / float(means.std(ddof=1))
    return ratio, ratio * math.sqrt(n_blocks), n_blocks


# --------------------------------------------------------------------------- cross-section


def _valid_pairs(scores: pd.Series, outcomes: pd.Series) -> pd.DataFrame:
    """Scores and outcomes aligned on their (timestamp, entity) index, NaN rows dropped."""
    return pd.DataFrame({"score": scores, "outcome": outcomes}).dropna()


def cross_sectional_rank_ic(
    scores: pd.Series, outcomes: pd.Series, min_entities: int = 5
) -> pd.Series:
    """Per timestamp, the Spearman correlation of scores and outcomes across entities.

    Hours with fewer than `min_entities` valid pairs, or with either side constant, are left
    out. Ranks are the average ranks of ties, as in scipy's spearmanr; the correlation is the
    Pearson correlation of ranks centred on their known mean (n + 1) / 2, from grouped sums.
    """
    pairs = _valid_pairs(scores, outcomes)
    hour = pairs.index.get_level_values(0)
    by_hour = pairs.groupby(hour)
    count = by_hour["score"].transform("size")
    centred = by_hour.rank().sub((count + 1) / 2, axis=0)
    x, y = centred["score"], centred["outcome"]
    totals = pd.DataFrame({"xy": x * y, "xx": x * x, "yy": y * y, "n": 1.0}).groupby(hour).sum()
    valid = (totals["n"] >= min_entities) & (totals["xx"] > 0) & (totals["yy"] > 0)
    totals = totals[valid]
    return (totals["xy"] / np.sqrt(totals["xx"] * totals["yy"])).rename("rank_ic")


def rank_ic_summary(per_hour_ic: pd.Series, horizon: int) -> dict[str, Any]:
    """Mean rank IC over hours, with ICIR and t over non-overlapping `horizon`-hour blocks.

    `icir` is the mean of the block means over their sd (not annualised); `rank_ic_t` is that
    times sqrt(number of blocks). Both are None with fewer than two blocks or a zero sd.
    """
    icir, t, n_blocks = _block_t(per_hour_ic, horizon)
    return {
        "rank_ic": float(per_hour_ic.mean()) if len(per_hour_ic) else None,
        "rank_ic_hours": len(per_hour_ic),
        "rank_ic_blocks": n_blocks,
        "icir": icir,
        "rank_ic_t": t,
    }


def cross_sectional_quintile_spread(
    scores: pd.Series, outcomes: pd.Series, min_entities: int = 5
) -> pd.Series:
    """Per timestamp, mean outcome of the top fifth by score minus that of the bottom fifth.

    Each side holds ceil(n / 5) entities; ties in score are broken by row order. Hours with
    fewer than `min_entities` valid pairs or constant scores are left out, as for rank IC.
    """
    pairs = _valid_pairs(scores, outcomes)
    hour = pairs.index.get_level_values(0)
    by_hour = pairs.groupby(hour)["score"]
    count = by_hour.transform("size")
    position = by_hour.rank(method="first")
    side = np.ceil(count / 5)
    top = pairs["outcome"].where(position > count - side, 0.0).groupby(hour).sum()
    bottom = pairs["outcome"].where(position <= side, 0.0).groupby(hour).sum()
    n = by_hour.size()
    keep = (n >= min_entities) & (by_hour.max() > by_hour.min())
    return ((top - bottom) / np.ceil(n / 5))[keep].rename("quintile_spread")


def quintile_spread(
    scores: pd.Series, outcomes: pd.Series, horizon: int, min_entities: int = 5
) -> dict[str, float | None]:
    """Mean top-minus-bottom quintile outcome over hours, with t over `horizon`-hour blocks."""
    per_hour = cross_sectional_quintile_spread(scores, outcomes, min_entities)
    _, t, _ = _block_t(per_hour, horizon)
    return {
        "quintile_spread": float(per_hour.mean()) if len(per_hour) else None,
        "quintile_spread_t": t,
    }


# --------------------------------------------------------------------------- per-row losses


def absolute_errors(predicted: ArrayLike, actual: ArrayLike) -> np.ndarray:
    """|predicted - actual| per row."""
    p, a = _same_length(predicted, actual, "predicted", "actual")
    return np.abs(p - a)


def squared_errors(predicted: ArrayLike, actual: ArrayLike) -> np.ndarray:
    """(predicted - actual)^2 per row."""
    p, a = _same_length(predicted, actual, "predicted", "actual")
    return (p - a) ** 2


def log_losses(probabilities: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """-log p(true class) per row, the probability floored at LOG_LOSS_EPSILON."""
    matrix = check_probability_matrix(probabilities)
    y = check_labels(labels, matrix.shape[0], matrix.shape[1])
    return -np.log(np.maximum(matrix[np.arange(y.size), y], LOG_LOSS_EPSILON))


def brier_losses(probabilities: ArrayLike, outcomes: ArrayLike) -> np.ndarray:
    """(p - outcome)^2 per row for a binary event."""
    p = check_probabilities(probabilities)
    return (p - check_binary_outcomes(outcomes, p.size)) ** 2


def ranked_probability_scores(
    probabilities: ArrayLike, labels: ArrayLike, order: Sequence[int]
) -> np.ndarray:
    """Ranked probability score per row for ordered categories (0 is perfect, 1 the worst).

    `order` lists the columns from the lowest category to the highest (`REGIME_ORDER` for
    regimes). Unlike log loss, calling bear when it was sideways costs less than calling bull:
    RPS = sum over the K - 1 thresholds of (CDF predicted - CDF observed)^2 / (K - 1).
    """
    matrix = check_probability_matrix(probabilities)
    n_classes = matrix.shape[1]
    if sorted(order) != list(range(n_classes)):
        raise ValueError(f"order must be a permutation of 0..{n_classes - 1}, got {order}")
    y = check_labels(labels, matrix.shape[0], n_classes)
    columns = list(order)
    observed = np.eye(n_classes)[y][:, columns]
    gap = np.cumsum(matrix[:, columns] - observed, axis=1)[:, :-1]
    return np.sum(gap**2, axis=1) / (n_classes - 1)


def ranked_probability_score(
    probabilities: ArrayLike, labels: ArrayLike, order: Sequence[int]
) -> float:
    """Mean of `ranked_probability_scores`."""
    return float(np.mean(ranked_probability_scores(probabilities, labels, order)))


def _same_length(
    first: ArrayLike, second: ArrayLike, first_name: str, second_name: str
) -> tuple[np.ndarray, np.ndarray]:
    a = check_finite_vector(first, first_name)
    b = check_finite_vector(second, second_name)
    if a.size != b.size:
        raise ValueError(f"{second_name} has {b.size} rows, expected {a.size}")
    return a, b


# --------------------------------------------------------------------------- intervals


@dataclass(frozen=True)
class Interval:
    """A point estimate with a block-bootstrap percentile interval."""

    estimate: float
    low: float
    high: float
    n_blocks: int

    @property
    def entirely_above_zero(self) -> bool:
        """The whole interval is positive: the improvement is not a resampling accident."""
        return self.low > 0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "estimate": float(self.estimate),
            "low": float(self.low),
            "high": float(self.high),
            "n_blocks": int(self.n_blocks),
        }


def _resampled_block_sums(
    columns: Sequence[np.ndarray], blocks: ArrayLike, n_resamples: int, seed: int
) -> tuple[np.ndarray, int]:
    """Sums of each column (and the row count, last) over `n_resamples` block resamples.

    Each resample draws as many blocks as there are, with replacement; per-block sums are
    taken once, so a resample costs a matrix product, not a pass over the rows. Returns an
    (n_resamples, len(columns) + 1) array and the number of blocks.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    block_ids = np.asarray(blocks)
    if block_ids.shape != columns[0].shape:
        raise ValueError(f"blocks has shape {block_ids.shape}, expected {columns[0].shape}")
    _, inverse = np.unique(block_ids, return_inverse=True)
    n_blocks = int(inverse.max()) + 1
    per_block = np.column_stack(
        [np.bincount(inverse, weights=column, minlength=n_blocks) for column in columns]
        + [np.bincount(inverse, minlength=n_blocks).astype(float)]
    )
    draws = np.random.default_rng(seed).integers(0, n_blocks, size=(n_resamples, n_blocks))
    offsets = draws + n_blocks * np.arange(n_resamples)[:, None]
    counts = np.bincount(offsets.ravel(), minlength=n_resamples * n_blocks)
    return counts.reshape(n_resamples, n_blocks) @ per_block, n_blocks


def _percentile_interval(
    estimate: float, resampled: np.ndarray, confidence: float, n_blocks: int
) -> Interval:
    finite = resampled[np.isfinite(resampled)]
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return Interval(float(estimate), float(low), float(high), n_blocks)


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def skill_interval(
    model_loss: ArrayLike,
    baseline_loss: ArrayLike,
    blocks: ArrayLike,
    confidence: float = 0.9,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Interval:
    """Skill 1 - mean(model loss) / mean(baseline loss) with a block-bootstrap interval.

    Positive skill is the share of the baseline's loss the model removes. Both losses are
    over the same rows, so the ratio of means is the ratio of sums. A resample whose
    baseline loss sums to zero has no skill and is left out of the percentiles.
    """
    _check_confidence(confidence)
    model, baseline = _same_length(model_loss, baseline_loss, "model_loss", "baseline_loss")
    if baseline.mean() == 0:
        raise ValueError("the baseline loss is zero on average: skill is undefined")
    sums, n_blocks = _resampled_block_sums([model, baseline], blocks, n_resamples, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        resampled = 1 - sums[:, 0] / sums[:, 1]
    estimate = 1 - model.sum() / baseline.sum()
    return _percentile_interval(estimate, resampled, confidence, n_blocks)


def mean_difference_interval(
    a: ArrayLike,
    b: ArrayLike,
    blocks: ArrayLike,
    confidence: float = 0.9,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Interval:
    """mean(a - b) over rows with a block-bootstrap interval (a, b paired row by row)."""
    _check_confidence(confidence)
    first, second = _same_length(a, b, "a", "b")
    difference = first - second
    sums, n_blocks = _resampled_block_sums([difference], blocks, n_resamples, seed)
    resampled = sums[:, 0] / sums[:, 1]
    return _percentile_interval(float(difference.mean()), resampled, confidence, n_blocks)


# --------------------------------------------------------------------------- probability skill


def binary_auc(probabilities: ArrayLike, outcomes: ArrayLike) -> float | None:
    """ROC AUC of a binary forecast; None when only one class occurs."""
    p = check_probabilities(probabilities)
    y = check_binary_outcomes(outcomes, p.size)
    if y.min() == y.max():
        return None
    return float(roc_auc_score(y, p))


def brier_skill(
    probabilities: ArrayLike, outcomes: ArrayLike, reference: ArrayLike
) -> float | None:
    """1 - Brier(p) / Brier(reference); the reference a scalar or per row (a rolling base rate).

    None when the reference is perfect (zero Brier).
    """
    p = check_probabilities(probabilities)
    y = check_binary_outcomes(outcomes, p.size)
    reference_p = check_probabilities(np.broadcast_to(np.asarray(reference, float), p.shape))
    return _skill(float(np.mean((p - y) ** 2)), float(np.mean((reference_p - y) ** 2)))


def log_loss_skill(
    probabilities: ArrayLike, labels: ArrayLike, reference: ArrayLike
) -> float | None:
    """1 - log loss(p) / log loss(reference); `reference` one row or one per row.

    None when the reference's log loss is zero.
    """
    matrix = check_probability_matrix(probabilities)
    reference_matrix = check_probability_matrix(
        np.broadcast_to(np.asarray(reference, float), matrix.shape)
    )
    return _skill(
        float(np.mean(log_losses(matrix, labels))),
        float(np.mean(log_losses(reference_matrix, labels))),
    )


def _skill(loss: float, reference_loss: float) -> float | None:
    return None if reference_loss == 0 else 1 - loss / reference_loss


# --------------------------------------------------------------------------- model vs factor


def compare_rankings(
    model_scores: pd.Series,
    factor_scores: pd.Series,
    outcomes: pd.Series,
    horizon: int,
    confidence: float = 0.9,
    seed: int = 0,
) -> dict[str, Any]:
    """Does the model rank entities better than a simple factor, beyond resampling noise?

    Both are judged on the same rows (all three values known) and the same hours (rank IC
    defined for both). Keys: `model_`/`factor_`-prefixed `rank_ic_summary` and
    `quintile_spread`; `difference` (mean per-hour IC of model minus factor) with
    `difference_low`/`difference_high` from a block bootstrap over `horizon`-hour blocks;
    `beats_factor` when the whole interval is positive. Callers flag a False with
    `DOES_NOT_BEAT_FACTOR`.
    """
    frame = pd.DataFrame(
        {"model": model_scores, "factor": factor_scores, "outcome": outcomes}
    ).dropna()
    model_ic = cross_sectional_rank_ic(frame["model"], frame["outcome"])
    factor_ic = cross_sectional_rank_ic(frame["factor"], frame["outcome"])
    hours = model_ic.index.intersection(factor_ic.index)
    model_ic, factor_ic = model_ic.loc[hours], factor_ic.loc[hours]
    frame = frame[frame.index.get_level_values(0).isin(hours)]
    result: dict[str, Any] = {}
    for name, ic in (("model", model_ic), ("factor", factor_ic)):
        summary = rank_ic_summary(ic, horizon) | quintile_spread(
            frame[name], frame["outcome"], horizon
        )
        result |= {f"{name}_{key}": value for key, value in summary.items()}
    if hours.empty:
        return result | {
            "difference": None,
            "difference_low": None,
            "difference_high": None,
            "beats_factor": False,
        }
    difference = mean_difference_interval(
        model_ic.to_numpy(),
        factor_ic.to_numpy(),
        horizon_blocks(hours, horizon),
        confidence=confidence,
        seed=seed,
    )
    return result | {
        "difference": difference.estimate,
        "difference_low": difference.low,
        "difference_high": difference.high,
        "beats_factor": difference.entirely_above_zero,
    }
