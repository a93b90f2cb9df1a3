"""Validation metrics and reliability summaries for the models' predictions.

Every function returns plain Python values (floats, ints, None, lists and dicts of those) so
results can go straight into MLflow and a JSONB column. None marks a metric that is undefined
for the given data (e.g. a rank correlation of a constant series): NaN is not valid JSON.

Inputs are validated up front: empty input, NaN or infinite values, probabilities outside
[0, 1], outcomes other than 0/1 and mismatched lengths all raise ValueError.

Binning convention (ECE and reliability bins): `n_bins` equal-width bins on [0, 1]; bin i holds
the probabilities p with floor(p * n_bins) == i, i.e. [i/n, (i+1)/n), the last bin also holding
p == 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

# Rows of a probability matrix must sum to 1 within this; loose enough for float32 model output.
ROW_SUM_TOLERANCE = 1e-5
# log_loss_safe floors the probability of the true class at this, so a confident miss costs
# -log(1e-15) ~ 34.5 instead of infinity.
LOG_LOSS_EPSILON = 1e-15
# price_accuracy's relative slack on the threshold, so a prediction exactly at the threshold
# still counts as accurate after float rounding of pred - actual.
PRICE_THRESHOLD_RTOL = 1e-9


# --------------------------------------------------------------------------- validation


def check_finite_vector(values: ArrayLike, name: str) -> np.ndarray:
    """A non-empty, finite, one-dimensional float array."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def check_probabilities(probabilities: ArrayLike, name: str = "probabilities") -> np.ndarray:
    """A non-empty, finite, one-dimensional array of probabilities in [0, 1]."""
    array = check_finite_vector(probabilities, name)
    if array.min() < 0.0 or array.max() > 1.0:
        raise ValueError(f"{name} must lie in [0, 1]")
    return array


def check_binary_outcomes(outcomes: ArrayLike, n_rows: int) -> np.ndarray:
    """Outcomes as a float array of 0s and 1s, `n_rows` long."""
    array = check_finite_vector(outcomes, "outcomes")
    _check_length(array, n_rows, "outcomes")
    if not np.all((array == 0.0) | (array == 1.0)):
        raise ValueError("outcomes must be 0 or 1")
    return array


def check_probability_matrix(probabilities: ArrayLike) -> np.ndarray:
    """An (n, k) matrix, k >= 2, of probabilities in [0, 1] whose rows sum to 1."""
    matrix = np.asarray(probabilities, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"probabilities must be an (n, k) matrix, got shape {matrix.shape}")
    if matrix.shape[0] == 0:
        raise ValueError("probabilities is empty")
    if matrix.shape[1] < 2:
        raise ValueError(f"probabilities needs at least 2 class columns, got {matrix.shape[1]}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("probabilities contains NaN or infinite values")
    if matrix.min() < 0.0 or matrix.max() > 1.0:
        raise ValueError("probabilities must lie in [0, 1]")
    worst = float(np.max(np.abs(matrix.sum(axis=1) - 1.0)))
    if worst > ROW_SUM_TOLERANCE:
        raise ValueError(f"probability rows must sum to 1 (largest deviation {worst:.3g})")
    return matrix


def check_labels(labels: ArrayLike, n_rows: int, n_classes: int) -> np.ndarray:
    """Class labels as an int array of values in 0..n_classes-1, `n_rows` long."""
    array = check_finite_vector(labels, "labels")
    _check_length(array, n_rows, "labels")
    as_int = array.astype(int)
    if not np.array_equal(as_int, array):
        raise ValueError("labels must be integers")
    if as_int.min() < 0 or as_int.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    return as_int


def _check_length(array: np.ndarray, n_rows: int, name: str) -> None:
    if array.size != n_rows:
        raise ValueError(f"{name} has {array.size} rows, expected {n_rows}")


def _check_n_bins(n_bins: int) -> None:
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")


# --------------------------------------------------------------------------- binary


def brier_score(probabilities: ArrayLike, outcomes: ArrayLike) -> float:
    """Mean squared difference between predicted probability and the 0/1 outcome."""
    p = check_probabilities(probabilities)
    y = check_binary_outcomes(outcomes, p.size)
    return float(np.mean((p - y) ** 2))


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability diagram; means are None when the bin is empty."""

    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    observed_rate: float | None


def reliability_bins(
    probabilities: ArrayLike, outcomes: ArrayLike, n_bins: int = 10
) -> list[ReliabilityBin]:
    """All `n_bins` equal-width bins, empty ones included, in ascending order."""
    _check_n_bins(n_bins)
    p = check_probabilities(probabilities)
    y = check_binary_outcomes(outcomes, p.size)
    index = _bin_index(p, n_bins)
    return [_reliability_bin(p[index == i], y[index == i], i, n_bins) for i in range(n_bins)]


def _bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    return np.minimum(np.floor(p * n_bins).astype(int), n_bins - 1)


def _reliability_bin(p: np.ndarray, y: np.ndarray, i: int, n_bins: int) -> ReliabilityBin:
    empty = p.size == 0
    return ReliabilityBin(
        lower=i / n_bins,
        upper=(i + 1) / n_bins,
        count=int(p.size),
        mean_predicted=None if empty else float(p.mean()),
        observed_rate=None if empty else float(y.mean()),
    )


def expected_calibration_error(
    probabilities: ArrayLike, outcomes: ArrayLike, n_bins: int = 10
) -> float:
    """Bin-count-weighted mean of |mean predicted - observed rate| over equal-width bins."""
    bins = reliability_bins(probabilities, outcomes, n_bins)
    total = sum(b.count for b in bins)
    gap = sum(
        b.count * abs(b.mean_predicted - b.observed_rate)
        for b in bins
        if b.mean_predicted is not None and b.observed_rate is not None
    )
    return float(gap / total)


def calibration_report(
    probabilities: ArrayLike,
    outcomes: ArrayLike,
    n_bins: int = 10,
    *,
    reference_rate: float | ArrayLike | None = None,
) -> dict[str, Any]:
    """Brier, ECE and the reliability bins, with a no-skill reference when one is given.

    The reference must be a rate known before the outcomes: the training base rate, or a
    rolling rate per row. The rate of the scored outcomes themselves (`base_rate`, reported
    for information) is hindsight no forecaster has, and its Brier would flatter the
    reference. With `reference_rate`: `reference_rate` (its mean), `brier_of_reference` (the
    Brier of forecasting it) and `brier_skill`, 1 - brier / brier_of_reference (above 0 means
    skill; None when the reference is perfect). Without it no reference figures are reported.
    """
    p = check_probabilities(probabilities)
    y = check_binary_outcomes(outcomes, p.size)
    report: dict[str, Any] = {
        "n_samples": int(p.size),
        "brier": brier_score(p, y),
        "ece": expected_calibration_error(p, y, n_bins),
        "base_rate": float(y.mean()),
        "bins": [asdict(b) for b in reliability_bins(p, y, n_bins)],
    }
    if reference_rate is not None:
        reference = _reference_rates(reference_rate, p.size)
        report.update(_skill_against(report["brier"], reference, y))
    return report


def _reference_rates(reference_rate: float | ArrayLike, n_rows: int) -> np.ndarray:
    """The reference forecast per row: a single rate stands for every row."""
    array = np.asarray(reference_rate, dtype=float)
    if array.ndim == 0:
        array = np.full(n_rows, array)
    rates = check_probabilities(array, "reference_rate")
    _check_length(rates, n_rows, "reference_rate")
    return rates


def _skill_against(brier: float, reference: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    brier_of_reference = brier_score(reference, y)
    return {
        "reference_rate": float(reference.mean()),
        "brier_of_reference": brier_of_reference,
        "brier_skill": None if brier_of_reference == 0.0 else 1.0 - brier / brier_of_reference,
    }


# --------------------------------------------------------------------------- multiclass


def multiclass_brier(probabilities: ArrayLike, labels: ArrayLike) -> float:
    """Mean over rows of the squared distance to the one-hot label (Brier's original; 0..2)."""
    matrix = check_probability_matrix(probabilities)
    y = check_labels(labels, matrix.shape[0], matrix.shape[1])
    return float(np.mean(np.sum((matrix - _one_hot(y, matrix.shape[1])) ** 2, axis=1)))


def _one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes)[labels]


def log_loss_safe(probabilities: ArrayLike, labels: ArrayLike) -> float:
    """Mean negative log probability of the true class, floored at LOG_LOSS_EPSILON."""
    matrix = check_probability_matrix(probabilities)
    y = check_labels(labels, matrix.shape[0], matrix.shape[1])
    true_class = matrix[np.arange(y.size), y]
    return float(-np.mean(np.log(np.maximum(true_class, LOG_LOSS_EPSILON))))


def classification_report(
    probabilities: ArrayLike, labels: ArrayLike, classes: Sequence[str]
) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1, log loss, Brier and F1 per class (`f1_<name>`).

    The predicted class is the arg-max column. Balanced accuracy averages recall over the
    classes present in `labels`; macro F1 averages over the classes present in `labels` or in
    the predictions. A class absent from both gets f1 0.0 and is left out of the macro mean.
    """
    matrix = check_probability_matrix(probabilities)
    n_classes = matrix.shape[1]
    if len(classes) != n_classes:
        raise ValueError(f"{len(classes)} class names for {n_classes} probability columns")
    y = check_labels(labels, matrix.shape[0], n_classes)
    confusion = _confusion(y, matrix.argmax(axis=1), n_classes)
    f1 = _f1_per_class(confusion)
    seen = (confusion.sum(axis=0) + confusion.sum(axis=1)) > 0
    report = {
        "accuracy": float(np.trace(confusion) / y.size),
        "balanced_accuracy": _balanced_accuracy(confusion),
        "macro_f1": float(f1[seen].mean()),
        "log_loss": log_loss_safe(matrix, y),
        "brier": multiclass_brier(matrix, y),
    }
    report.update({f"f1_{name}": float(value) for name, value in zip(classes, f1, strict=True)})
    return report


def _confusion(actual: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts with actual classes as rows and predicted classes as columns."""
    flat = np.bincount(actual * n_classes + predicted, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def _f1_per_class(confusion: np.ndarray) -> np.ndarray:
    true_positive = np.diag(confusion).astype(float)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)  # 2TP + FP + FN
    return np.divide(
        2 * true_positive, denominator, out=np.zeros_like(true_positive), where=denominator > 0
    )


def _balanced_accuracy(confusion: np.ndarray) -> float:
    support = confusion.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(confusion)[present] / support[present]))


# --------------------------------------------------------------------------- regression


def regression_report(
    predicted_returns: ArrayLike, actual_returns: ArrayLike
) -> dict[str, float | None]:
    """Error and skill of predicted returns.

    - mae, rmse: the usual errors.
    - directional_accuracy: share of rows where predicted and actual returns have the same
      sign, over rows where neither is exactly zero (None when there are none).
    - r2_vs_zero: 1 - SSE / SSE of predicting a zero return, the natural no-skill forecast for
      returns (None when every actual return is zero).
    """
    predicted = check_finite_vector(predicted_returns, "predicted_returns")
    actual = check_finite_vector(actual_returns, "actual_returns")
    _check_length(actual, predicted.size, "actual_returns")
    error = predicted - actual
    return {
        "n_samples": int(predicted.size),
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "directional_accuracy": _directional_accuracy(predicted, actual),
        "r2_vs_zero": _r2_vs_zero(error, actual),
    }


def _directional_accuracy(predicted: np.ndarray, actual: np.ndarray) -> float | None:
    nonzero = (predicted != 0.0) & (actual != 0.0)
    if not nonzero.any():
        return None
    return float(np.mean(np.sign(predicted[nonzero]) == np.sign(actual[nonzero])))


def _r2_vs_zero(error: np.ndarray, actual: np.ndarray) -> float | None:
    baseline = float(np.sum(actual**2))
    if baseline == 0.0:
        return None
    return 1.0 - float(np.sum(error**2)) / baseline


# --------------------------------------------------------------------------- prices


def price_accuracy(
    predicted_price: ArrayLike, actual_price: ArrayLike, threshold_percent: float
) -> np.ndarray:
    """The predictions table's is_accurate: |pred - actual| / actual * 100 <= threshold.

    Evaluated without the division, as |pred - actual| * 100 <= threshold * actual, with a
    relative slack of PRICE_THRESHOLD_RTOL on the right-hand side, so a prediction exactly at
    the threshold counts as accurate despite float rounding. Actual prices must be positive.
    """
    if not math.isfinite(threshold_percent) or threshold_percent < 0:
        raise ValueError(f"threshold_percent must be a finite value >= 0, got {threshold_percent}")
    predicted = check_finite_vector(predicted_price, "predicted_price")
    actual = check_finite_vector(actual_price, "actual_price")
    _check_length(actual, predicted.size, "actual_price")
    if actual.min() <= 0.0:
        raise ValueError("actual_price must be positive")
    allowed = threshold_percent * actual * (1.0 + PRICE_THRESHOLD_RTOL)
    return np.abs(predicted - actual) * 100.0 <= allowed
