"""Metrics against values computed by hand on tiny arrays.

Float tolerance: results are compared with pytest.approx (relative 1e-6) unless the inputs are
exactly representable (0.5, 0.25, 0.75, ...), in which case the comparison is exact.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from models.metrics import (
    ReliabilityBin,
    brier_score,
    calibration_report,
    classification_report,
    expected_calibration_error,
    log_loss_safe,
    multiclass_brier,
    price_accuracy,
    regression_report,
    reliability_bins,
)

# --------------------------------------------------------------------------- binary


def test_brier_score_by_hand() -> None:
    assert brier_score([0.9, 0.1], [1, 0]) == pytest.approx(0.01)
    assert brier_score([0.5, 0.5], [1, 0]) == 0.25
    assert brier_score([1.0, 0.0], [1, 0]) == 0.0
    assert isinstance(brier_score([0.5], [1]), float)


def test_ece_of_a_perfectly_calibrated_set_is_zero() -> None:
    # Bin [0.2, 0.3): four rows at 0.25, one positive. Bin [0.7, 0.8): four at 0.75, three.
    probabilities = [0.25] * 4 + [0.75] * 4
    outcomes = [1, 0, 0, 0, 1, 1, 1, 0]
    assert expected_calibration_error(probabilities, outcomes) == 0.0


def test_ece_by_hand() -> None:
    # Bin [0.0, 0.5): predicted 0.25, observed 0.5, 2 rows -> gap 0.25.
    # Bin [0.5, 1.0]: predicted 0.75, observed 1.0, 2 rows -> gap 0.25; predicted 1.0 lands
    # in the last bin too. Weighted: (2 * 0.25 + 3 * |0.8333 - 1|) / 5.
    probabilities = [0.25, 0.25, 0.75, 0.75, 1.0]
    outcomes = [1, 0, 1, 1, 1]
    expected = (2 * 0.25 + 3 * (1.0 - (0.75 + 0.75 + 1.0) / 3)) / 5
    assert expected_calibration_error(probabilities, outcomes, n_bins=2) == pytest.approx(expected)


def test_reliability_bins_counts_edges_and_empty_bins() -> None:
    bins = reliability_bins([0.0, 0.25, 0.5, 0.5, 1.0], [0, 0, 1, 0, 1], n_bins=4)
    edges = [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)]
    assert [(b.lower, b.upper) for b in bins] == edges
    # 0.25 and 0.5 open their bins; 1.0 closes the last one.
    assert [b.count for b in bins] == [1, 1, 2, 1]
    assert bins[2] == ReliabilityBin(0.5, 0.75, 2, 0.5, 0.5)
    empty = reliability_bins([0.1, 0.2], [0, 1], n_bins=2)[1]
    assert empty == ReliabilityBin(0.5, 1.0, 0, None, None)


def test_calibration_report_is_json_serialisable_with_the_no_skill_reference() -> None:
    report = calibration_report(
        [0.25, 0.25, 0.75, 0.75], [0, 0, 1, 1], n_bins=2, reference_rate=0.25
    )
    assert report["base_rate"] == 0.5
    assert report["brier"] == 0.0625
    assert report["ece"] == 0.25
    assert report["n_samples"] == 4
    # Forecasting 0.25 throughout: (2 * 0.25**2 + 2 * 0.75**2) / 4.
    assert report["reference_rate"] == 0.25
    assert report["brier_of_reference"] == 0.3125
    assert report["brier_skill"] == pytest.approx(0.8)
    assert report["bins"][0] == {
        "lower": 0.0,
        "upper": 0.5,
        "count": 2,
        "mean_predicted": 0.25,
        "observed_rate": 0.0,
    }
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_calibration_report_scores_the_reference_known_beforehand_not_hindsight() -> None:
    """Every scored outcome is 1: the hindsight rate would be a perfect forecast (Brier 0),
    while the training rate of 0.5 had no way to know it."""
    report = calibration_report([0.75] * 4, [1] * 4, reference_rate=0.5)
    assert report["base_rate"] == 1.0
    assert report["brier_of_reference"] == 0.25
    assert report["brier_skill"] == 0.75
    assert "brier_of_base_rate" not in report


def test_calibration_report_takes_a_reference_rate_per_row() -> None:
    report = calibration_report([0.5] * 4, [0, 0, 1, 1], reference_rate=[0.0, 0.5, 0.5, 1.0])
    assert report["reference_rate"] == 0.5
    assert report["brier_of_reference"] == 0.125
    assert report["brier_skill"] == -1.0


def test_calibration_report_skill_is_undefined_against_a_perfect_reference() -> None:
    report = calibration_report([0.5, 0.5], [0, 1], reference_rate=[0.0, 1.0])
    assert report["brier_of_reference"] == 0.0
    assert report["brier_skill"] is None


def test_calibration_report_without_a_reference_reports_no_reference_figures() -> None:
    report = calibration_report([0.25, 0.75], [0, 1])
    assert set(report) == {"n_samples", "brier", "ece", "base_rate", "bins"}


@pytest.mark.parametrize(
    ("reference_rate", "message"),
    [
        (1.5, r"reference_rate must lie in \[0, 1\]"),
        (float("nan"), "reference_rate contains NaN"),
        ([0.5, 0.5, 0.5], "reference_rate has 3 rows, expected 2"),
        ([[0.5, 0.5]], "reference_rate must be one-dimensional"),
    ],
)
def test_calibration_report_rejects_a_bad_reference_rate(
    reference_rate: float | list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        calibration_report([0.25, 0.75], [0, 1], reference_rate=reference_rate)


@pytest.mark.parametrize(
    ("probabilities", "outcomes", "message"),
    [
        ([], [], "empty"),
        ([0.5, float("nan")], [0, 1], "NaN"),
        ([0.5, 0.5], [0, float("nan")], "NaN"),
        ([0.5, 1.5], [0, 1], r"\[0, 1\]"),
        ([0.5, 0.5], [0, 2], "0 or 1"),
        ([0.5, 0.5], [0], "expected 2"),
    ],
)
def test_binary_metrics_reject_bad_input(
    probabilities: list[float], outcomes: list[float], message: str
) -> None:
    for metric in (brier_score, expected_calibration_error, reliability_bins, calibration_report):
        with pytest.raises(ValueError, match=message):
            metric(probabilities, outcomes)


def test_n_bins_must_be_positive() -> None:
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([0.5], [1], n_bins=0)


# --------------------------------------------------------------------------- multiclass

PROBABILITIES = np.array(
    [
        [0.5, 0.25, 0.25],
        [0.25, 0.5, 0.25],
        [0.25, 0.25, 0.5],
        [0.5, 0.25, 0.25],
    ]
)
LABELS = np.array([0, 1, 0, 2])  # predicted 0, 1, 2, 0: rows 0 and 1 right


def test_multiclass_brier_by_hand() -> None:
    # Right rows: 0.25 + 0.0625 + 0.0625 = 0.375. Wrong rows: 0.5625 + 0.0625 + 0.25 = 0.875.
    assert multiclass_brier(PROBABILITIES, LABELS) == (2 * 0.375 + 2 * 0.875) / 4


def test_log_loss_by_hand_and_floored_at_epsilon() -> None:
    expected = -(math.log(0.5) + math.log(0.5) + math.log(0.25) + math.log(0.25)) / 4
    assert log_loss_safe(PROBABILITIES, LABELS) == pytest.approx(expected)
    certain_miss = log_loss_safe([[1.0, 0.0]], [1])
    assert certain_miss == pytest.approx(-math.log(1e-15))


def test_classification_report_by_hand() -> None:
    report = classification_report(PROBABILITIES, LABELS, ["down", "flat", "up"])
    assert report["accuracy"] == 0.5
    # Recall: down 1/2, flat 1/1, up 0/1.
    assert report["balanced_accuracy"] == pytest.approx(0.5)
    # F1 = 2TP / (2TP + FP + FN): down 2/(2+1+1), flat 2/2, up 0.
    assert report["f1_down"] == 0.5
    assert report["f1_flat"] == 1.0
    assert report["f1_up"] == 0.0
    assert report["macro_f1"] == 0.5
    assert report["log_loss"] == pytest.approx(log_loss_safe(PROBABILITIES, LABELS))
    assert report["brier"] == multiclass_brier(PROBABILITIES, LABELS)
    assert all(isinstance(value, float) for value in report.values())


def test_classification_report_ignores_classes_that_never_occur() -> None:
    probabilities = [[0.75, 0.25, 0.0], [0.25, 0.75, 0.0]]
    report = classification_report(probabilities, [0, 0], ["a", "b", "c"])
    assert report["balanced_accuracy"] == 0.5  # only class a has support
    assert report["f1_c"] == 0.0
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2)  # over a and b, not c


@pytest.mark.parametrize(
    ("probabilities", "labels", "message"),
    [
        ([[0.5, 0.5]], [2], r"0\.\.1"),
        ([[0.5, 0.5]], [0.5], "integers"),
        ([[0.5, 0.4]], [0], "sum to 1"),
        ([[0.5, float("nan")]], [0], "NaN"),
        ([[1.0]], [0], "at least 2"),
        (np.empty((0, 2)), [], "empty"),
        ([0.5, 0.5], [0], r"\(n, k\)"),
    ],
)
def test_multiclass_metrics_reject_bad_input(
    probabilities: list[list[float]], labels: list[float], message: str
) -> None:
    for metric in (multiclass_brier, log_loss_safe):
        with pytest.raises(ValueError, match=message):
            metric(probabilities, labels)


def test_classification_report_needs_one_name_per_column() -> None:
    with pytest.raises(ValueError, match="2 class names for 3"):
        classification_report(PROBABILITIES, LABELS, ["down", "up"])


# --------------------------------------------------------------------------- regression


def test_regression_report_by_hand() -> None:
    predicted = [0.5, -0.25, 0.0, 0.25]
    actual = [0.25, -0.5, 0.5, -0.25]
    report = regression_report(predicted, actual)
    # Errors 0.25, 0.25, -0.5, 0.5.
    assert report["mae"] == 0.375
    assert report["rmse"] == pytest.approx(math.sqrt((0.0625 * 2 + 0.25 * 2) / 4))
    # The zero prediction is ignored; of the other three, two agree in sign.
    assert report["directional_accuracy"] == pytest.approx(2 / 3)
    # SSE 0.625 against predicting zero: 0.0625 + 0.25 + 0.25 + 0.0625 = 0.625.
    assert report["r2_vs_zero"] == 0.0
    # A rank correlation pooled over rows and hours is retired: rankings are scored per hour.
    assert "information_coefficient" not in report
    assert report["n_samples"] == 4
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_perfect_return_forecast() -> None:
    report = regression_report([0.1, -0.2, 0.3], [0.1, -0.2, 0.3])
    assert report["mae"] == 0.0
    assert report["directional_accuracy"] == 1.0
    assert report["r2_vs_zero"] == 1.0


def test_undefined_regression_metrics_are_none_not_nan() -> None:
    report = regression_report([0.0, 0.0], [0.0, 0.0])
    assert report["directional_accuracy"] is None
    assert report["r2_vs_zero"] is None
    assert report["mae"] == 0.0


def test_regression_report_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="NaN"):
        regression_report([0.1, float("nan")], [0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        regression_report([], [])
    with pytest.raises(ValueError, match="expected 2"):
        regression_report([0.1, 0.2], [0.1])


# --------------------------------------------------------------------------- prices


def test_price_accuracy_counts_exactly_the_threshold_as_accurate() -> None:
    predicted = [105.0, 95.0, 105.5, 94.5, 100.0]
    actual = [100.0] * 5
    np.testing.assert_array_equal(
        price_accuracy(predicted, actual, threshold_percent=5.0), [True, True, False, False, True]
    )


def test_price_accuracy_tolerates_rounding_at_the_threshold() -> None:
    # 0.303 - 0.3 is 0.0030000000000000027 in floats: a hair over 1 % without the tolerance.
    assert price_accuracy([0.303], [0.3], threshold_percent=1.0).tolist() == [True]
    assert price_accuracy([0.3031], [0.3], threshold_percent=1.0).tolist() == [False]


def test_price_accuracy_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="positive"):
        price_accuracy([1.0], [0.0], 5.0)
    with pytest.raises(ValueError, match="threshold_percent"):
        price_accuracy([1.0], [1.0], -1.0)
    with pytest.raises(ValueError, match="NaN"):
        price_accuracy([float("nan")], [1.0], 5.0)
    with pytest.raises(ValueError, match="empty"):
        price_accuracy([], [], 5.0)
