"""Blending toward the baseline, and the weight that only departs from it on evidence."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from models.shrinkage import (
    blend_distributions,
    blend_probabilities,
    blend_values,
    fit_demonstrated_weight,
    fit_weight,
)


def test_blends_are_the_baseline_at_0_and_the_model_at_1() -> None:
    base, model = np.array([0.2, 0.5]), np.array([0.6, 0.9])
    np.testing.assert_allclose(blend_values(base, model, 0.0), base)
    np.testing.assert_allclose(blend_values(base, model, 1.0), model)
    np.testing.assert_allclose(blend_probabilities(base, model, 0.0), base)
    np.testing.assert_allclose(blend_probabilities(base, model, 1.0), model)
    rows_base, rows_model = np.array([[0.2, 0.3, 0.5]]), np.array([[0.6, 0.3, 0.1]])
    np.testing.assert_allclose(blend_distributions(rows_base, rows_model, 0.0), rows_base)
    np.testing.assert_allclose(blend_distributions(rows_base, rows_model, 1.0), rows_model)


def test_probability_blends_stay_strictly_inside_0_and_1() -> None:
    blended = blend_probabilities(np.array([0.5, 0.5]), np.array([0.0, 1.0]), 1.0)
    assert (blended > 0).all() and (blended < 1).all()
    pooled = blend_distributions(np.full((1, 3), 1 / 3), np.array([[1.0, 0.0, 0.0]]), 1.0)
    assert (pooled > 0).all()
    assert pooled.sum() == pytest.approx(1.0)


def test_the_grid_weight_minimises_the_loss_and_ties_go_to_the_baseline() -> None:
    assert fit_weight(lambda w: (w - 0.3) ** 2) == pytest.approx(0.3)
    assert fit_weight(lambda w: 1.0) == 0.0


def test_a_weight_is_kept_only_when_its_improvement_holds_over_blocks() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 1, 2000)
    blocks = np.repeat(np.arange(200), 10)
    informed = truth + rng.normal(0, 0.5, truth.size)
    noise = rng.normal(0, 1, truth.size)

    def losses(model: np.ndarray) -> Callable[[float], np.ndarray]:
        return lambda w: np.abs(blend_values(0.0, model, w) - truth)

    assert fit_demonstrated_weight(losses(informed), blocks) > 0.5
    assert fit_demonstrated_weight(losses(noise), blocks) == 0.0
