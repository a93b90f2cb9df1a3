"""Probability calibration: map a model's scores to probabilities that match observed rates.

Fit a calibrator on predictions the model did not train on (out-of-fold or a held-out period),
never on its training rows, or it learns the model's overconfidence on data it has memorised.

Both calibrators follow the scikit-learn estimator contract: `__init__` only stores its
arguments, `fit` returns self, learned state ends in an underscore and `transform` refuses to
run before `fit`.

No calibrated probability is exactly 0 or 1: n calibration rows cannot show that an event is
impossible or certain, and a forecast of 0 for what then happens costs an infinite log loss
(isotonic steps of 0 below the lowest positive did exactly that on real data). The bound is
Laplace's rule of succession, (k + 1) / (n + 2) for k positives in n rows, the rate after one
imagined success and one imagined failure: a calibrator fitted on one class alone is that
constant, and every output is clipped to [1 / (n + 2), 1 - 1 / (n + 2)], the most extreme rate
n rows can support. The floor is small (1e-4 at ten thousand rows), so it leaves a well-fitted
curve alone and only takes away claims of certainty.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from models.metrics import (
    check_binary_outcomes,
    check_labels,
    check_probabilities,
    check_probability_matrix,
)

CalibrationMethod = Literal["isotonic", "sigmoid"]
METHODS: tuple[str, ...] = get_args(CalibrationMethod)
# A hard floor against fitting on a handful of rows; useful calibration needs thousands.
MIN_CALIBRATION_ROWS = 10
# Sigmoid calibration works on logit(p); p is clipped to [eps, 1 - eps] so 0 and 1 stay finite.
LOGIT_EPSILON = 1e-6


def add_one_rate(n_positive: float, n_rows: int) -> float:
    """Laplace's rule of succession: the rate of an event seen `n_positive` times in `n_rows`,
    after one imagined success and one imagined failure, so never 0 or 1."""
    return (n_positive + 1.0) / (n_rows + 2.0)


def probability_floor(n_rows: int) -> float:
    """The least probability a calibrator fitted on `n_rows` gives: the add-one rate of an
    event never seen; 1 minus it is the greatest."""
    return add_one_rate(0.0, n_rows)


class ProbabilityCalibrator(BaseEstimator):
    """Calibrates binary probabilities.

    method="isotonic": a monotone step function (IsotonicRegression, clipped to the fitted
    range outside it); flexible, wants plenty of rows. method="sigmoid": Platt scaling, an
    unregularised logistic regression on logit(p); two parameters, suits small samples and
    fixes over- or under-confidence but not arbitrary shapes.

    When the outcomes hold a single class no curve can be fitted, and the calibrator is the
    constant add-one rate, 1 / (n + 2) or (n + 1) / (n + 2). `constant_` holds it (None
    otherwise) and `estimator_` is then None. Every output lies in [floor_, 1 - floor_], with
    floor_ = probability_floor(n) (see the module docstring).
    """

    def __init__(self, method: CalibrationMethod = "isotonic") -> None:
        self.method = method

    def fit(self, probabilities: ArrayLike, outcomes: ArrayLike) -> ProbabilityCalibrator:
        """Learn the mapping from predicted probabilities to 0/1 outcomes."""
        _check_method(self.method)
        p = check_probabilities(probabilities)
        y = check_binary_outcomes(outcomes, p.size)
        _check_enough_rows(p.size)
        self.floor_ = probability_floor(p.size)
        if np.all(y == y[0]):
            self.constant_: float | None = add_one_rate(float(y.sum()), p.size)
            self.estimator_: IsotonicRegression | LogisticRegression | None = None
        else:
            self.constant_ = None
            self.estimator_ = _fit_estimator(self.method, p, y)
        return self

    def transform(self, probabilities: ArrayLike) -> np.ndarray:
        """Calibrated probabilities, strictly inside (0, 1): clipped to [floor_, 1 - floor_]."""
        check_is_fitted(self)
        p = check_probabilities(probabilities)
        if self.estimator_ is None:
            return np.full(p.size, self.constant_, dtype=float)
        if isinstance(self.estimator_, LogisticRegression):
            calibrated = self.estimator_.predict_proba(_logit_feature(p))[:, 1]
        else:
            calibrated = self.estimator_.predict(p)
        return np.clip(np.asarray(calibrated, dtype=float), self.floor_, 1.0 - self.floor_)


class MulticlassCalibrator(BaseEstimator):
    """One-vs-rest calibration: one ProbabilityCalibrator per class column, then each row is
    renormalised to sum to 1.

    Every column is bounded away from 0 and 1 (see ProbabilityCalibrator), so a row total is
    positive and every renormalised probability lies strictly inside (0, 1). A class absent from
    the training labels calibrates to the add-one rate 1 / (n + 2) before renormalising.
    """

    def __init__(self, method: CalibrationMethod = "isotonic") -> None:
        self.method = method

    def fit(self, probabilities: ArrayLike, labels: ArrayLike) -> MulticlassCalibrator:
        """Fit on an (n, k) probability matrix and labels in 0..k-1."""
        _check_method(self.method)
        matrix = check_probability_matrix(probabilities)
        n_rows, n_classes = matrix.shape
        y = check_labels(labels, n_rows, n_classes)
        _check_enough_rows(n_rows)
        self.calibrators_ = [
            ProbabilityCalibrator(self.method).fit(matrix[:, k], (y == k).astype(float))
            for k in range(n_classes)
        ]
        self.n_classes_ = n_classes
        return self

    def transform(self, probabilities: ArrayLike) -> np.ndarray:
        """Calibrated (n, k) probabilities whose rows sum to 1."""
        check_is_fitted(self)
        matrix = check_probability_matrix(probabilities)
        if matrix.shape[1] != self.n_classes_:
            raise ValueError(
                f"probabilities has {matrix.shape[1]} columns, calibrator was fitted on "
                f"{self.n_classes_}"
            )
        calibrated = np.column_stack(
            [calibrator.transform(matrix[:, k]) for k, calibrator in enumerate(self.calibrators_)]
        )
        return calibrated / calibrated.sum(axis=1, keepdims=True)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _check_enough_rows(n_rows: int) -> None:
    if n_rows < MIN_CALIBRATION_ROWS:
        raise ValueError(f"calibration needs at least {MIN_CALIBRATION_ROWS} rows, got {n_rows}")


def _fit_estimator(
    method: str, p: np.ndarray, y: np.ndarray
) -> IsotonicRegression | LogisticRegression:
    if method == "sigmoid":
        return LogisticRegression(C=np.inf).fit(_logit_feature(p), y.astype(int))
    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)


def _logit_feature(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, LOGIT_EPSILON, 1.0 - LOGIT_EPSILON)
    return np.log(clipped / (1.0 - clipped))[:, np.newaxis]
