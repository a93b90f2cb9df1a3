"""Walk-forward validation of a family, scoring exactly what it would have served.

Every fold fits a fresh family on the rows before its test block (minus the purge gap) and
predicts the block: the concatenated blocks are the out-of-fold (OOF) raw predictions. They
train the serving transform (calibration and shrinkage toward the baseline) and, for upper
layers, the features the lower layers train on, so no row is ever described by a model that
saw its label.

Nested, so that nothing is scored by a transform fitted on it: fold k's raw predictions are
served through a transform fitted on the OOF rows of folds 0..k-1 only. The first fold has no
earlier evidence, so it only trains the transform; the scores (served output, raw output and
baseline, all on the same rows) come from the later folds. Skill is the relative improvement
of the served output's primary loss over the baseline's, with a block-bootstrap interval over
non-overlapping horizon blocks; an interval that reaches 0 means "no demonstrated edge".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from models.families.base import ModelFamily, TrainingData
from models.skill import EDGE, NO_EDGE, horizon_blocks, skill_interval
from models.splits import Fold, WalkForwardSplit

FamilyFactory = Callable[[], ModelFamily]
# Row positions in a family's data: an array of them, or a slice (all rows: no copy).
Positions = np.ndarray | slice


class Rows(Protocol):
    """A family's labelled rows, wherever their features are held.

    Validation needs the labels and the hours here, but the features only through the
    family: fitted on some rows, predicting others, and the few columns its serving
    transform and scores read. `InMemoryRows` holds them in this process;
    `cluster.rows.BlockRows` leaves them on the workers of a Dask cluster.
    """

    @property
    def y(self) -> pd.DataFrame: ...

    @property
    def timestamps(self) -> pd.DatetimeIndex: ...

    @property
    def columns(self) -> list[str]:
        """The feature columns."""
        ...

    def fit(self, family: ModelFamily, positions: Positions) -> ModelFamily:
        """`family` (unfitted) fitted on the rows at `positions`."""
        ...

    def predict(
        self, family: ModelFamily, positions: Positions
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The raw predictions of a fitted `family` and its baseline on those rows."""
        ...

    def described(self, family: ModelFamily, positions: Positions) -> TrainingData:
        """The rows' labels and the features `family` serves, scores and calibrates with."""
        ...

    def tail(self, count: int) -> pd.DataFrame:
        """The features of the last `count` rows (a model's signature)."""
        ...


@dataclass(frozen=True)
class InMemoryRows:
    """`Rows` over a `TrainingData` in this process: every column is described."""

    data: TrainingData

    @property
    def y(self) -> pd.DataFrame:
        return self.data.y

    @property
    def timestamps(self) -> pd.DatetimeIndex:
        return self.data.timestamps

    @property
    def columns(self) -> list[str]:
        return list(self.data.X.columns)

    def fit(self, family: ModelFamily, positions: Positions) -> ModelFamily:
        train = self._rows(positions)
        return family.fit(train.X, train.y)

    def predict(
        self, family: ModelFamily, positions: Positions
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        X = self.data.X.iloc[positions]
        return family.predict(X), family.baseline(X)

    def described(self, family: ModelFamily, positions: Positions) -> TrainingData:
        return self._rows(positions)

    def _rows(self, positions: Positions) -> TrainingData:
        if isinstance(positions, slice) and positions == slice(None):
            return self.data
        return self.data.rows(positions)

    def tail(self, count: int) -> pd.DataFrame:
        return self.data.X.tail(count)


# A family's labelled rows: in memory, or wherever a `Rows` holds their features.
FamilyRows = TrainingData | Rows


def as_rows(data: FamilyRows) -> Rows:
    """Rows in memory are their own `InMemoryRows`."""
    return InMemoryRows(data) if isinstance(data, TrainingData) else data


def better(candidate: float, reference: float, lower_is_better: bool) -> bool:
    """Is `candidate` strictly better than `reference` on a metric of this direction?"""
    return bool(candidate < reference if lower_is_better else candidate > reference)


@dataclass
class ValidationResult:
    """OOF rows of every fold; `scored` marks those of folds with an earlier fold to learn from."""

    folds: list[Fold]
    oof: TrainingData  # only the columns the family serves with where the rows are remote
    positions: np.ndarray  # of the OOF rows in the validated data
    raw: pd.DataFrame
    served: pd.DataFrame
    baseline: pd.DataFrame
    scored: np.ndarray
    model_metrics: dict[str, Any]
    raw_metrics: dict[str, Any]
    baseline_metrics: dict[str, Any]
    skill: dict[str, Any]
    fold_metrics: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, Any] = field(default_factory=dict)

    def beats_baseline(self, metric: str, lower_is_better: bool) -> bool:
        return better(self.model_metrics[metric], self.baseline_metrics[metric], lower_is_better)

    @property
    def window(self) -> dict[str, str]:
        """The scored validation window: first and last test hour of the scored folds."""
        scored = [fold for fold in self.folds if fold.number > 0] or self.folds
        return {
            "validation_start": scored[0].test_start.isoformat(),
            "validation_end": scored[-1].test_end.isoformat(),
        }


def walk_forward(
    make_family: FamilyFactory,
    data: FamilyRows,
    splitter: WalkForwardSplit,
    on_fold: Callable[[Fold], None] | None = None,
) -> ValidationResult:
    """Fit and predict fold by fold; serve each fold through a transform fitted before it."""
    rows = as_rows(data)
    folds = splitter.split(rows.timestamps)
    if len(folds) < 2:
        raise ValueError("validation needs at least 2 folds: the first one trains the serving")
    raw_parts, baseline_parts = [], []
    for fold in folds:
        family = rows.fit(make_family(), fold.train_index)
        raw_part, baseline_part = rows.predict(family, fold.test_index)
        raw_parts.append(raw_part)
        baseline_parts.append(baseline_part)
        if on_fold:
            on_fold(fold)
    positions = np.concatenate([fold.test_index for fold in folds])
    scorer = make_family()
    oof = rows.described(scorer, positions)
    raw, baseline = pd.concat(raw_parts), pd.concat(baseline_parts)
    bounds = np.cumsum([0, *(len(fold.test_index) for fold in folds)])
    served = pd.concat([_served_fold(make_family, oof, raw, bounds, k) for k in range(len(folds))])
    scored = np.arange(len(oof.X)) >= bounds[1]
    return ValidationResult(
        folds=folds,
        oof=oof,
        positions=positions,
        raw=raw,
        served=served,
        baseline=baseline,
        scored=scored,
        model_metrics=_score(scorer, oof, served, scored),
        raw_metrics=_score(scorer, oof, raw, scored),
        baseline_metrics=_score(scorer, oof, baseline, scored),
        skill=_skill(scorer, oof, served, baseline, scored),
        fold_metrics=[
            _fold_metrics(scorer, fold, oof, served, raw, baseline, bounds) for fold in folds[1:]
        ],
        calibration=_last_fold_calibration(make_family, oof, raw, served, bounds),
    )


def fit_final(
    make_family: FamilyFactory, data: FamilyRows, result: ValidationResult
) -> ModelFamily:
    """The version to register: fitted on every row, its serving fitted on all OOF rows."""
    family = as_rows(data).fit(make_family(), slice(None))
    return family.calibrate(result.oof.X, result.raw, result.oof.y)


def served_on(family: ModelFamily, data: FamilyRows, positions: Positions) -> pd.DataFrame:
    """What a fitted, calibrated `family` serves for the rows at `positions`
    (`ModelFamily.predict_calibrated`, wherever the rows are)."""
    rows = as_rows(data)
    raw, _ = rows.predict(family, positions)
    return family.serve(rows.described(family, positions).X, raw)


def _served_fold(
    make_family: FamilyFactory, oof: TrainingData, raw: pd.DataFrame, bounds: np.ndarray, k: int
) -> pd.DataFrame:
    """Fold k served through a transform fitted on the OOF rows of the folds before it."""
    server = _server(make_family, oof, raw, bounds[k])
    rows = slice(bounds[k], bounds[k + 1])
    return server.serve(oof.X.iloc[rows], raw.iloc[rows])


def _server(
    make_family: FamilyFactory, oof: TrainingData, raw: pd.DataFrame, end: int
) -> ModelFamily:
    family = make_family()
    if end == 0:
        return family
    rows = slice(0, end)
    return family.calibrate(oof.X.iloc[rows], raw.iloc[rows], oof.y.iloc[rows])


def _last_fold_calibration(
    make_family: FamilyFactory,
    oof: TrainingData,
    raw: pd.DataFrame,
    served: pd.DataFrame,
    bounds: np.ndarray,
) -> dict[str, Any]:
    """Reliability of the last fold's served confidences, by the transform that served them."""
    server = _server(make_family, oof, raw, int(bounds[-2]))
    rows = slice(bounds[-2], bounds[-1])
    return server.calibration_report(oof.X.iloc[rows], served.iloc[rows], oof.y.iloc[rows])


def _at(
    oof: TrainingData, predictions: pd.DataFrame, mask: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return oof.X.loc[mask], predictions.loc[mask], oof.y.loc[mask]


def _score(
    family: ModelFamily, oof: TrainingData, predictions: pd.DataFrame, mask: np.ndarray
) -> dict[str, Any]:
    _, chosen, y = _at(oof, predictions, mask)
    return family.score(y, chosen)


def _skill(
    family: ModelFamily,
    oof: TrainingData,
    served: pd.DataFrame,
    baseline: pd.DataFrame,
    mask: np.ndarray,
) -> dict[str, Any]:
    """Relative improvement of the primary loss over the baseline's, with its interval."""
    y = oof.y.loc[mask]
    blocks = horizon_blocks(TrainingData(oof.X.loc[mask], y).timestamps, family.horizon)
    interval = skill_interval(
        family.losses(y, served.loc[mask]), family.losses(y, baseline.loc[mask]), blocks
    )
    verdict = {"edge": EDGE if interval.low > 0 else NO_EDGE}
    return {"metric": family.primary_metric, **interval.as_dict(), **verdict}


def _fold_metrics(
    family: ModelFamily,
    fold: Fold,
    oof: TrainingData,
    served: pd.DataFrame,
    raw: pd.DataFrame,
    baseline: pd.DataFrame,
    bounds: np.ndarray,
) -> dict[str, Any]:
    rows = slice(bounds[fold.number], bounds[fold.number + 1])
    y = oof.y.iloc[rows]
    return {
        "fold": fold.number,
        "train_rows": len(fold.train_index),
        "test_rows": len(fold.test_index),
        "test_start": fold.test_start.isoformat(),
        "test_end": fold.test_end.isoformat(),
        "model": family.score(y, served.iloc[rows]),
        "raw": family.score(y, raw.iloc[rows]),
        "baseline": family.score(y, baseline.iloc[rows]),
    }
