"""Walk-forward splits: purge exactness, test-block coverage, expanding windows, odd input."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from models.splits import Fold, WalkForwardSplit, out_of_fold

HOUR = pd.Timedelta(hours=1)
START = pd.Timestamp("2024-01-01", tz="UTC")


def panel_timestamps(n_hours: int, n_entities: int = 1) -> pd.Series:
    """Every hour repeated once per entity, in (hour, entity) order."""
    hours = pd.date_range(START, periods=n_hours, freq=HOUR)
    return pd.Series(np.repeat(hours, n_entities))


def random_panel(rng: np.random.Generator) -> pd.Series:
    """Shuffled rows of up to 6 entities per hour, with some hours missing entirely."""
    n_hours = int(rng.integers(200, 400))
    hours = pd.date_range(START, periods=n_hours, freq=HOUR)
    present = hours[rng.random(n_hours) > 0.1]
    counts = rng.integers(1, 7, size=len(present))
    times = pd.Series(np.repeat(present, counts))
    return times.sample(frac=1.0, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)


def assert_valid_folds(folds: list[Fold], times: pd.Series, splitter: WalkForwardSplit) -> None:
    gap = pd.Timedelta(hours=splitter.purge + splitter.embargo)
    values = pd.DatetimeIndex(times)
    distinct = values.unique().sort_values()
    assert len(folds) == splitter.n_folds
    for fold in folds:
        train, test = values[fold.train_index], values[fold.test_index]
        # The purge rule: t + purge + embargo <= test_start, and t < test_start.
        assert train.max() + gap <= fold.test_start
        assert train.max() < fold.test_start
        # Nothing the rule allows is left out: training is everything up to the cutoff.
        allowed = (values <= fold.test_start - gap) & (values < fold.test_start)
        np.testing.assert_array_equal(fold.train_index, np.flatnonzero(allowed))
        assert (fold.train_start, fold.train_end) == (train.min(), train.max())
        assert (fold.test_start, fold.test_end) == (test.min(), test.max())
        assert fold.train_start == distinct[0]
    for earlier, later in pairwise(folds):
        assert earlier.test_end < later.test_start
        # Contiguous: no distinct timestamp falls between consecutive blocks.
        between = distinct[(distinct > earlier.test_end) & (distinct < later.test_start)]
        assert between.empty
        assert set(earlier.train_index) < set(later.train_index)
    test_rows = np.concatenate([fold.test_index for fold in folds])
    assert len(test_rows) == len(set(test_rows))
    in_test_period = np.flatnonzero(values >= folds[0].test_start)
    np.testing.assert_array_equal(np.sort(test_rows), in_test_period)
    assert folds[-1].test_end == distinct[-1]


def test_basic_hourly_split_with_known_boundaries() -> None:
    times = panel_timestamps(100, n_entities=3)
    splitter = WalkForwardSplit(n_folds=4, test_fraction=0.4, purge=5, min_train_hours=10)
    folds = splitter.split(times)
    # 40 test hours, 10 per fold, starting at hour 60.
    assert [fold.test_start for fold in folds] == [START + h * HOUR for h in (60, 70, 80, 90)]
    assert [fold.test_end for fold in folds] == [START + h * HOUR for h in (69, 79, 89, 99)]
    # Purge 5: the last training hour is test_start - 5h, its label ends exactly at test_start.
    assert [fold.train_end for fold in folds] == [START + h * HOUR for h in (55, 65, 75, 85)]
    assert [fold.number for fold in folds] == [0, 1, 2, 3]
    assert all(len(fold.test_index) == 30 for fold in folds)
    assert len(folds[0].train_index) == 56 * 3
    assert_valid_folds(folds, times, splitter)


def test_zero_purge_still_keeps_test_rows_out_of_training() -> None:
    times = panel_timestamps(50)
    folds = WalkForwardSplit(n_folds=2, test_fraction=0.2, purge=0, min_train_hours=5).split(times)
    assert folds[0].train_end == folds[0].test_start - HOUR


def test_embargo_widens_the_gap() -> None:
    times = panel_timestamps(100)
    splitter = WalkForwardSplit(n_folds=2, test_fraction=0.2, purge=3, min_train_hours=5, embargo=4)
    folds = splitter.split(times)
    assert all(fold.train_end == fold.test_start - 7 * HOUR for fold in folds)
    assert_valid_folds(folds, times, splitter)


@pytest.mark.parametrize("seed", range(60))
def test_properties_hold_over_random_parameters(seed: int) -> None:
    rng = np.random.default_rng(seed)
    times = random_panel(rng)
    splitter = WalkForwardSplit(
        n_folds=int(rng.integers(1, 6)),
        test_fraction=float(rng.uniform(0.1, 0.6)),
        purge=int(rng.integers(0, 30)),
        min_train_hours=int(rng.integers(1, 20)),
        embargo=int(rng.integers(0, 3)),
    )
    assert_valid_folds(splitter.split(times), times, splitter)


def test_unsorted_rows_give_the_same_folds_as_sorted_rows() -> None:
    times = panel_timestamps(120, n_entities=4)
    order = np.random.default_rng(0).permutation(len(times))
    shuffled = times.iloc[order].reset_index(drop=True)
    splitter = WalkForwardSplit(n_folds=3, test_fraction=0.3, purge=6, min_train_hours=24)
    sorted_folds, shuffled_folds = splitter.split(times), splitter.split(shuffled)
    for a, b in zip(sorted_folds, shuffled_folds, strict=True):
        assert (a.test_start, a.test_end, a.train_end) == (b.test_start, b.test_end, b.train_end)
        # Indices are positions in the shuffled input: map them back to the sorted rows.
        np.testing.assert_array_equal(np.sort(order[b.train_index]), a.train_index)
        np.testing.assert_array_equal(np.sort(order[b.test_index]), a.test_index)
    assert_valid_folds(shuffled_folds, shuffled, splitter)


def test_entities_of_one_hour_never_straddle_a_split() -> None:
    times = panel_timestamps(100, n_entities=5)
    folds = WalkForwardSplit(n_folds=3, test_fraction=0.5, purge=2, min_train_hours=10).split(times)
    for fold in folds:
        assert len(fold.test_index) % 5 == 0
        assert len(fold.train_index) % 5 == 0


def test_accepts_datetime_index_and_numpy_array() -> None:
    times = panel_timestamps(80, n_entities=2)
    splitter = WalkForwardSplit(n_folds=2, test_fraction=0.25, purge=4, min_train_hours=10)
    expected = splitter.split(times)
    for variant in (pd.DatetimeIndex(times), times.dt.tz_localize(None).to_numpy()):
        got = splitter.split(variant)
        for a, b in zip(expected, got, strict=True):
            np.testing.assert_array_equal(a.train_index, b.train_index)
            np.testing.assert_array_equal(a.test_index, b.test_index)


def test_out_of_fold_marks_exactly_the_test_period() -> None:
    times = panel_timestamps(100, n_entities=2)
    folds = WalkForwardSplit(n_folds=4, test_fraction=0.5, purge=3, min_train_hours=10).split(times)
    mask = out_of_fold(folds, len(times))
    np.testing.assert_array_equal(mask, (times >= folds[0].test_start).to_numpy())


def test_not_enough_history_names_hours_available_and_needed() -> None:
    times = panel_timestamps(100)
    # 50 test hours and a 10-hour purge leave hours 0..40 = 41 hours for the first fold.
    splitter = WalkForwardSplit(n_folds=2, test_fraction=0.5, purge=10, min_train_hours=42)
    with pytest.raises(ValueError, match=r"41 hours.*min_train_hours=42.*spans 100 hours"):
        splitter.split(times)
    assert WalkForwardSplit(2, 0.5, 10, 41).split(times)[0].train_end == START + 40 * HOUR


def test_purge_swallowing_all_history_is_reported() -> None:
    splitter = WalkForwardSplit(n_folds=2, test_fraction=0.5, purge=60, min_train_hours=1)
    with pytest.raises(ValueError, match="would train on 0 hours"):
        splitter.split(panel_timestamps(100))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"purge": -1}, "purge"),
        ({"embargo": -1}, "embargo"),
        ({"n_folds": 0}, "n_folds"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"min_train_hours": 0}, "min_train_hours"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WalkForwardSplit(**kwargs)  # type: ignore[arg-type]


def test_more_folds_than_test_timestamps_is_rejected() -> None:
    splitter = WalkForwardSplit(n_folds=5, test_fraction=0.1, purge=0, min_train_hours=1)
    with pytest.raises(ValueError, match="fewer than n_folds=5"):
        splitter.split(panel_timestamps(30))


def test_empty_and_missing_timestamps_are_rejected() -> None:
    splitter = WalkForwardSplit(n_folds=1, test_fraction=0.5, purge=0, min_train_hours=1)
    with pytest.raises(ValueError, match="no timestamps"):
        splitter.split(pd.Series([], dtype="datetime64[ns, UTC]"))
    with pytest.raises(ValueError, match="NaT"):
        splitter.split(pd.Series([START, pd.NaT, START + HOUR]))
