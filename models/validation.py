"""Walk-forward validation of a family, with its naive baseline scored on the same rows.

Every fold fits a fresh family on the rows before its test block (minus the purge gap) and
predicts the block: the concatenated blocks are the out-of-fold (OOF) predictions. They give
the reported metrics, train the confidence calibration, and, for upper layers, the features
the lower layers train on, so no row is ever described by a model that saw its label.
Calibration is itself validated: fitted on the OOF rows of all folds but the last, and
scored on the last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.families.base import ModelFamily, TrainingData
from models.splits import Fold, WalkForwardSplit

FamilyFactory = Callable[[], ModelFamily]


@dataclass
class ValidationResult:
    folds: list[Fold]
    oof: TrainingData
    raw: pd.DataFrame
    baseline: pd.DataFrame
    model_metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    fold_metrics: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, Any] = field(default_factory=dict)

    def beats_baseline(self, metric: str, lower_is_better: bool) -> bool:
        model, baseline = self.model_metrics[metric], self.baseline_metrics[metric]
        return model < baseline if lower_is_better else model > baseline

    @property
    def window(self) -> dict[str, str]:
        """The validation window: first and last test hour."""
        return {
            "validation_start": self.folds[0].test_start.isoformat(),
            "validation_end": self.folds[-1].test_end.isoformat(),
        }


def walk_forward(
    make_family: FamilyFactory,
    data: TrainingData,
    splitter: WalkForwardSplit,
    on_fold: Callable[[Fold], None] | None = None,
) -> ValidationResult:
    """Fit and predict fold by fold; score model and baseline on every OOF row."""
    folds = splitter.split(data.timestamps)
    raw_parts, baseline_parts, fold_metrics = [], [], []
    for fold in folds:
        train, test = data.rows(fold.train_index), data.rows(fold.test_index)
        family = make_family().fit(train.X, train.y)
        raw = family.predict(test.X)
        baseline = family.baseline(test.X, train.y)
        raw_parts.append(raw)
        baseline_parts.append(baseline)
        fold_metrics.append(
            {
                "fold": fold.number,
                "train_rows": len(fold.train_index),
                "test_rows": len(fold.test_index),
                "test_start": fold.test_start.isoformat(),
                "test_end": fold.test_end.isoformat(),
                "model": family.score(test.y, raw),
                "baseline": family.score(test.y, baseline),
            }
        )
        if on_fold:
            on_fold(fold)
    oof_positions = np.concatenate([fold.test_index for fold in folds])
    oof = data.rows(oof_positions)
    raw_all = pd.concat(raw_parts)
    baseline_all = pd.concat(baseline_parts)
    scorer = make_family()
    return ValidationResult(
        folds=folds,
        oof=oof,
        raw=raw_all,
        baseline=baseline_all,
        model_metrics=scorer.score(oof.y, raw_all),
        baseline_metrics=scorer.score(oof.y, baseline_all),
        fold_metrics=fold_metrics,
        calibration=_validate_calibration(make_family, folds, oof, raw_all),
    )


def _validate_calibration(
    make_family: FamilyFactory, folds: list[Fold], oof: TrainingData, raw: pd.DataFrame
) -> dict[str, Any]:
    """Calibrate on every OOF fold but the last; report reliability on the last."""
    if len(folds) < 2:
        return {}
    last = len(folds[-1].test_index)
    early, held_out = slice(0, len(oof.X) - last), slice(len(oof.X) - last, None)
    family = make_family().calibrate(oof.X.iloc[early], raw.iloc[early], oof.y.iloc[early])
    return family.calibration_report(oof.X.iloc[held_out], raw.iloc[held_out], oof.y.iloc[held_out])


def fit_final(
    make_family: FamilyFactory, data: TrainingData, result: ValidationResult
) -> ModelFamily:
    """The version to register: fitted on every row, calibrated on all OOF predictions."""
    family = make_family().fit(data.X, data.y)
    return family.calibrate(result.oof.X, result.raw, result.oof.y)
