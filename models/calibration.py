"""Probability calibration: map a model's scores to probabilities that match observed rates.

Fit a calibrator on predictions the model did not train on (out-of-fold or a held-out period),
never on its training rows, or it learns the model's overconfidence on data it has memorised.

Both calibrators follow the scikit-learn estimator contract: `__init__` only stores its
arguments, `fit` returns self, learned state ends in an underscore and `transform` refuses to
run before `fit`.
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


class ProbabilityCalibrator(BaseEstimator):
    """Calibrates binary probabilities.

    method="isotonic": a monotone step function (IsotonicRegression, clipped to the fitted
    range outside it); flexible, wants plenty of rows. method="sigmoid": Platt scaling, an
    unregularised logistic regression on logit(p); two parameters, suits small samples and
    fixes over- or under-confidence but not arbitrary shapes.

    When the outcomes hold a single class the calibrator is the constant at that rate (0.0 or
    1.0): that is the only rate the data supports, and no curve can be fitted to one class.
    `constant_` holds it (None otherwise) and `estimator_` is then None.
    """

    def __init__(self, method: CalibrationMethod = "isotonic") -> None:
        self.method = method

    def fit(self, probabilities: ArrayLike, outcomes: ArrayLike) -> ProbabilityCalibrator:
        """Learn the mapping from predicted probabilities to 0/1 outcomes."""
        _check_method(self.method)
        p = check_probabilities(probabilities)
        y = check_binary_outcomes(outcomes, p.size)
        _check_enough_rows(p.size)
        rate = float(y.mean())
        if rate in (0.0, 1.0):
            self.constant_: float | None = rate
            self.estimator_: IsotonicRegression | LogisticRegression | None = None
        else:
            self.constant_ = None
            self.estimator_ = _fit_estimator(self.method, p, y)
        return self

    def transform(self, probabilities: ArrayLike) -> np.ndarray:
        """Calibrated probabilities, clipped to [0, 1]."""
        check_is_fitted(self)
        p = check_probabilities(probabilities)
        if self.estimator_ is None:
            return np.full(p.size, self.constant_, dtype=float)
        if isinstance(self.estimator_, LogisticRegression):
            calibrated = self.estimator_.predict_proba(_logit_feature(p))[:, 1]
        else:
            calibrated = self.estimator_.predict(p)
        return np.clip(np.asarray(calibrated, dtype=float), 0.0, 1.0)


class MulticlassCalibrator(BaseEstimator):
    """One-vs-rest calibration: one ProbabilityCalibrator per class column, then each row is
    renormalised to sum to 1.

    A row whose calibrated values are all zero (possible with isotonic calibration) keeps its
    uncalibrated probabilities rather than becoming undefined. A class absent from the
    training labels calibrates to the constant 0 (see ProbabilityCalibrator).
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
        totals = calibrated.sum(axis=1)
        degenerate = totals <= 0.0
        calibrated[degenerate] = matrix[degenerate]
        totals[degenerate] = matrix[degenerate].sum(axis=1)
        return calibrated / totals[:, np.newaxis]


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
