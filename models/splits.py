"""Walk-forward validation over time for panel rows (one row per timestamp and entity).

Folds are cut on distinct timestamps, never on rows, so every entity of an hour lands on the
same side of a split. Row order is irrelevant: indices are positions in the input.

Purge rule. The label of a row at time t spans (t, t + horizon]. A fold whose test block
starts at test_start trains only on rows with

    t + purge + embargo <= test_start   and   t < test_start

With purge equal to the label horizon the last allowed training label ends exactly at
test_start, where the first test label begins, so no training label overlaps the test period.
`embargo` widens the gap further, e.g. against features that are serially correlated beyond
the label horizon. The second condition only matters when purge + embargo is zero: a row is
never both training and test data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.errors import InsufficientData

HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == is ambiguous on arrays
class Fold:
    """One walk-forward fold; bounds are inclusive and are the actual first/last timestamps."""

    number: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    train_index: np.ndarray  # positional row indices, ascending
    test_index: np.ndarray


class WalkForwardSplit:
    """Expanding-window walk-forward validation.

    The last `test_fraction` of the distinct timestamps (rounded to a whole count) is cut into
    `n_folds` consecutive, non-overlapping test blocks of near-equal numbers of timestamps;
    every row of the test period belongs to exactly one block. Each fold trains on every row
    before its block that the purge rule (see the module docstring) allows, so training windows
    all start at the first timestamp and grow fold by fold.

    `min_train_hours` is checked on the first, smallest, training window; its length in hours
    counts each timestamp as a one-hour bar: (train_end - train_start) / 1h + 1.
    """

    def __init__(
        self,
        n_folds: int = 4,
        test_fraction: float = 0.5,
        purge: int = 24,
        min_train_hours: int = 24 * 14,
        embargo: int = 0,
    ) -> None:
        if n_folds < 1:
            raise ValueError(f"n_folds must be at least 1, got {n_folds}")
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
        if purge < 0:
            raise ValueError(f"purge must be >= 0 hours, got {purge}")
        if embargo < 0:
            raise ValueError(f"embargo must be >= 0 hours, got {embargo}")
        if min_train_hours < 1:
            raise ValueError(f"min_train_hours must be at least 1, got {min_train_hours}")
        self.n_folds = n_folds
        self.test_fraction = test_fraction
        self.purge = purge
        self.min_train_hours = min_train_hours
        self.embargo = embargo

    @property
    def gap(self) -> pd.Timedelta:
        """Purge plus embargo: the least time between a training timestamp and test_start."""
        return pd.Timedelta(hours=self.purge + self.embargo)

    def split(self, timestamps: pd.Series | pd.DatetimeIndex | np.ndarray) -> list[Fold]:
        """Folds for rows with these timestamps, in time order."""
        times = _as_datetime_index(timestamps)
        distinct = times.unique().sort_values()
        test_times = distinct[-self._n_test(len(distinct)) :]
        blocks = [test_times[positions] for positions in self._block_positions(len(test_times))]
        self._check_training_length(times[self._train_mask(times, blocks[0][0])], distinct)
        return [self._fold(number, times, block) for number, block in enumerate(blocks)]

    def _block_positions(self, n_test: int) -> list[np.ndarray]:
        return np.array_split(np.arange(n_test), self.n_folds)

    def _n_test(self, n_distinct: int) -> int:
        n_test = round(n_distinct * self.test_fraction)
        if n_test < self.n_folds:
            raise InsufficientData(
                f"test_fraction={self.test_fraction} of {n_distinct} distinct timestamps gives "
                f"{n_test} test timestamps, fewer than n_folds={self.n_folds}"
            )
        return n_test

    def _train_mask(self, times: pd.DatetimeIndex, test_start: pd.Timestamp) -> np.ndarray:
        return np.asarray((times < test_start) & (times <= test_start - self.gap))

    def _fold(self, number: int, times: pd.DatetimeIndex, block: pd.DatetimeIndex) -> Fold:
        test_start, test_end = block[0], block[-1]
        train_mask = self._train_mask(times, test_start)
        train_times = times[train_mask]
        return Fold(
            number=number,
            train_start=train_times.min(),
            train_end=train_times.max(),
            test_start=test_start,
            test_end=test_end,
            train_index=np.flatnonzero(train_mask),
            test_index=np.flatnonzero((times >= test_start) & (times <= test_end)),
        )

    def _check_training_length(
        self, first_train: pd.DatetimeIndex, distinct: pd.DatetimeIndex
    ) -> None:
        """The first, smallest, training window must cover min_train_hours."""
        available = 0.0 if first_train.empty else _bar_hours(first_train.min(), first_train.max())
        if available < self.min_train_hours:
            total = _bar_hours(distinct[0], distinct[-1])
            raise InsufficientData(
                f"not enough data: the first fold would train on {available:g} hours but "
                f"min_train_hours={self.min_train_hours} are needed. The data spans {total:g} "
                f"hours; test_fraction={self.test_fraction} of them is held out for testing "
                f"and {self.purge + self.embargo} hours (purge + embargo) are dropped before "
                "the first test block. Supply more history or lower test_fraction or "
                "min_train_hours."
            )


def purged_holdout(
    timestamps: pd.Index | np.ndarray, share: float, purge: int
) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the rows to fit on and of the rows held out: the last `share` of the distinct
    hours (at least one), and the rows whose label, `purge` hours long, ends by the first of
    them. For choices made inside a training window (early stopping, an estimator)."""
    times = pd.DatetimeIndex(timestamps)
    distinct = times.unique().sort_values()
    cut = distinct[len(distinct) - max(1, int(len(distinct) * share))]
    held = np.asarray(times >= cut)
    return np.asarray(times <= cut - pd.Timedelta(hours=purge)), held


def out_of_fold(folds: list[Fold], n_rows: int) -> np.ndarray:
    """Boolean mask of the rows that are in some fold's test block (get an OOF prediction)."""
    mask = np.zeros(n_rows, dtype=bool)
    for fold in folds:
        mask[fold.test_index] = True
    return mask


def _as_datetime_index(timestamps: pd.Series | pd.DatetimeIndex | np.ndarray) -> pd.DatetimeIndex:
    times = pd.DatetimeIndex(pd.to_datetime(timestamps))
    if times.empty:
        raise ValueError("no timestamps to split")
    if times.hasnans:
        raise ValueError("timestamps contain NaT")
    return times


def _bar_hours(start: pd.Timestamp, end: pd.Timestamp) -> float:
    return float((end - start) / HOUR) + 1.0
