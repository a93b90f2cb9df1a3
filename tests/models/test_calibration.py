"""Calibrators on synthetic data whose true probabilities are known."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from models.calibration import (
    MIN_CALIBRATION_ROWS,
    CalibrationMethod,
    MulticlassCalibrator,
    ProbabilityCalibrator,
    add_one_rate,
    probability_floor,
)
from models.metrics import brier_score, expected_calibration_error, log_loss_safe

N_ROWS = 20_000


def binary_data(seed: int, distort: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True p ~ U(0, 1), outcomes ~ Bernoulli(p) and a miscalibrated score of p."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 1.0, N_ROWS)
    outcomes = (rng.uniform(0.0, 1.0, N_ROWS) < p).astype(float)
    if distort == "cube":
        return p, outcomes, p**3
    # An overconfident model: the logit sharpened threefold.
    return p, outcomes, 1.0 / (1.0 + np.exp(-3.0 * np.log(p / (1.0 - p))))


def halves(*arrays: np.ndarray) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    middle = len(arrays[0]) // 2
    return tuple(a[:middle] for a in arrays), tuple(a[middle:] for a in arrays)


@pytest.mark.parametrize(
    ("method", "distort"),
    [("isotonic", "cube"), ("isotonic", "sharpened"), ("sigmoid", "sharpened")],
)
def test_calibration_recovers_the_true_probabilities(
    method: CalibrationMethod, distort: str
) -> None:
    p, outcomes, score = binary_data(seed=1, distort=distort)
    (_, fit_y, fit_score), (test_p, test_y, test_score) = halves(p, outcomes, score)

    calibrated = ProbabilityCalibrator(method).fit(fit_score, fit_y).transform(test_score)

    raw_ece = expected_calibration_error(test_score, test_y)
    assert raw_ece > 0.1
    assert expected_calibration_error(calibrated, test_y) < 0.03
    assert np.mean(np.abs(calibrated - test_p)) < 0.03
    assert np.mean(np.abs(test_score - test_p)) > 0.1
    assert brier_score(calibrated, test_y) < brier_score(test_score, test_y) - 0.005


def test_sigmoid_also_improves_a_cubed_score() -> None:
    """p**3 is not in Platt's two-parameter family, but logit(p**3) is monotone in logit(p)."""
    _, outcomes, score = binary_data(seed=2, distort="cube")
    (fit_y, fit_score), (test_y, test_score) = halves(outcomes, score)
    calibrated = ProbabilityCalibrator("sigmoid").fit(fit_score, fit_y).transform(test_score)
    assert expected_calibration_error(calibrated, test_y) < expected_calibration_error(
        test_score, test_y
    )


def test_output_is_clipped_to_the_unit_interval_and_one_dimensional() -> None:
    _, outcomes, score = binary_data(seed=3, distort="sharpened")
    methods: tuple[CalibrationMethod, ...] = ("isotonic", "sigmoid")
    for method in methods:
        calibrator = ProbabilityCalibrator(method).fit(score, outcomes)
        out = calibrator.transform(np.array([0.0, 0.5, 1.0]))
        assert out.shape == (3,)
        assert np.all((out >= 0.0) & (out <= 1.0))
        assert np.all(np.diff(out) >= 0.0)


def test_add_one_rate_and_floor_by_hand() -> None:
    assert add_one_rate(0, 8) == 0.1
    assert add_one_rate(8, 8) == 0.9
    assert add_one_rate(3, 6) == 0.5
    assert probability_floor(98) == 0.01


@pytest.mark.parametrize(("rate", "expected"), [(0.0, 1 / 22), (1.0, 21 / 22)])
def test_single_class_outcomes_give_the_add_one_rate(rate: float, expected: float) -> None:
    scores = np.linspace(0.1, 0.9, 20)
    calibrator = ProbabilityCalibrator().fit(scores, np.full(20, rate))
    assert calibrator.constant_ == pytest.approx(expected)
    assert calibrator.estimator_ is None
    np.testing.assert_allclose(calibrator.transform([0.0, 0.7, 1.0]), expected)


def test_isotonic_gives_the_realised_outcome_a_chance_outside_the_fitted_range() -> None:
    """Scores in [0.2, 0.8], every row below 0.4 negative and every row above 0.6 positive:
    plain isotonic says 0 below and 1 above, so a positive at 0.0 or a negative at 1.0 would
    cost an infinite log loss."""
    scores = np.linspace(0.2, 0.8, 100)
    outcomes = (scores > 0.5).astype(float)
    calibrated = ProbabilityCalibrator("isotonic").fit(scores, outcomes).transform([0.0, 1.0])
    floor = probability_floor(100)
    np.testing.assert_allclose(calibrated, [floor, 1.0 - floor])
    assert log_loss_safe(np.column_stack([1.0 - calibrated, calibrated]), [1, 0]) < 5.0


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_no_output_is_zero_or_one_even_for_a_steep_curve(method: CalibrationMethod) -> None:
    """True P(y) = sigmoid(8 logit(score)): Platt's fitted slope of about 8 sends the clipped
    logit of a score of 1 to about 110, which rounds to exactly 1.0 without the bound."""
    rng = np.random.default_rng(7)
    scores = rng.uniform(0.0, 1.0, 2_000)
    true = 1.0 / (1.0 + (1.0 / scores - 1.0) ** 8)
    outcomes = (rng.uniform(0.0, 1.0, scores.size) < true).astype(float)
    calibrator = ProbabilityCalibrator(method).fit(scores, outcomes)
    out = calibrator.transform(np.array([0.0, 1e-12, 0.5, 1.0 - 1e-12, 1.0]))
    assert np.all((out > 0.0) & (out < 1.0))
    assert out.min() >= probability_floor(scores.size)
    assert out.max() <= 1.0 - probability_floor(scores.size)


def test_too_few_rows_is_rejected() -> None:
    n = MIN_CALIBRATION_ROWS - 1
    with pytest.raises(ValueError, match=f"at least {MIN_CALIBRATION_ROWS} rows, got {n}"):
        ProbabilityCalibrator().fit(np.linspace(0, 1, n), np.arange(n) % 2)


@pytest.mark.parametrize(
    ("probabilities", "outcomes", "message"),
    [
        ([0.1, np.nan] * 10, [0, 1] * 10, "NaN"),
        ([0.1, 1.2] * 10, [0, 1] * 10, r"\[0, 1\]"),
        ([0.1, 0.9] * 10, [0, 2] * 10, "0 or 1"),
        ([0.1, 0.9] * 10, [0, 1] * 9, "rows"),
        ([], [], "empty"),
    ],
)
def test_invalid_input_is_rejected(
    probabilities: list[float], outcomes: list[int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ProbabilityCalibrator().fit(probabilities, outcomes)


def test_unknown_method_is_rejected_at_fit() -> None:
    calibrator = ProbabilityCalibrator("beta")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method must be one of"):
        calibrator.fit(np.linspace(0, 1, 20), np.arange(20) % 2)


def test_follows_the_estimator_contract() -> None:
    calibrator = ProbabilityCalibrator("sigmoid")
    assert calibrator.get_params() == {"method": "sigmoid"}
    assert clone(calibrator).method == "sigmoid"
    with pytest.raises(NotFittedError):
        calibrator.transform([0.5])
    with pytest.raises(NotFittedError):
        MulticlassCalibrator().transform([[0.5, 0.5]])
    fitted = calibrator.fit(np.linspace(0, 1, 20), np.arange(20) % 2)
    assert fitted is calibrator


# --------------------------------------------------------------------------- multiclass


def multiclass_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True class probabilities from a softmax, labels drawn from them, and an overconfident
    model whose logits are tripled."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (N_ROWS, 3))
    true = softmax(logits)
    labels = (rng.uniform(size=(N_ROWS, 1)) > np.cumsum(true, axis=1)).sum(axis=1)
    return true, labels, softmax(3.0 * logits)


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_multiclass_calibration_sums_to_one_and_improves_log_loss(
    method: CalibrationMethod,
) -> None:
    true, labels, model = multiclass_data(seed=4)
    (_, fit_labels, fit_model), (test_true, test_labels, test_model) = halves(true, labels, model)

    calibrator = MulticlassCalibrator(method).fit(fit_model, fit_labels)
    calibrated = calibrator.transform(test_model)

    assert calibrated.shape == test_model.shape
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0, atol=1e-12)
    assert log_loss_safe(calibrated, test_labels) < log_loss_safe(test_model, test_labels) - 0.1
    assert np.mean(np.abs(calibrated - test_true)) < np.mean(np.abs(test_model - test_true)) / 2


def test_multiclass_class_absent_from_training_gets_a_small_positive_rate() -> None:
    rng = np.random.default_rng(5)
    probabilities = softmax(rng.normal(size=(200, 3)))
    labels = rng.integers(0, 2, size=200)  # class 2 never occurs
    calibrated = MulticlassCalibrator().fit(probabilities, labels).transform(probabilities)
    # The add-one rate of a class never seen, moved a little by renormalising the rows.
    assert np.all((calibrated[:, 2] > 0.0) & (calibrated[:, 2] < 2 * probability_floor(200)))
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_multiclass_rows_stay_inside_the_unit_interval_at_the_extremes(
    method: CalibrationMethod,
) -> None:
    """Confident rows, beyond anything in the fitted range, still leave every class,
    the realised one included, a positive probability."""
    _, labels, model = multiclass_data(seed=8)
    calibrator = MulticlassCalibrator(method).fit(model[:2_000], labels[:2_000])
    extremes = np.vstack([np.eye(3), [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]], model[2_000:]])
    calibrated = calibrator.transform(extremes)
    assert np.all((calibrated > 0.0) & (calibrated < 1.0))
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0, atol=1e-12)


def test_multiclass_rejects_bad_shapes_and_labels() -> None:
    probabilities = softmax(np.random.default_rng(6).normal(size=(50, 3)))
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2"):
        MulticlassCalibrator().fit(probabilities, np.full(50, 3))
    with pytest.raises(ValueError, match="sum to 1"):
        MulticlassCalibrator().fit(probabilities * 0.5, np.zeros(50))
    calibrator = MulticlassCalibrator().fit(probabilities, np.arange(50) % 3)
    with pytest.raises(ValueError, match="fitted on 3"):
        calibrator.transform(np.full((4, 2), 0.5))
    with pytest.raises(ValueError, match="at least"):
        MulticlassCalibrator().fit(probabilities[:5], np.arange(5) % 3)
