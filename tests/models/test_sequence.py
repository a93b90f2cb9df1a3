"""Sequence windows and the GRU sequence classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from models.sequence import TORCH_THREADS, SequenceClassifier, make_sequences

LOOKBACK = 10
N_FEATURES = 3
N_TRAIN = 3000
N_TEST = 1000
FAST: dict[str, Any] = {
    "hidden_size": 16,
    "batch_size": 128,
    "learning_rate": 1e-2,
    "max_epochs": 12,
    "patience": 3,
}


def _hourly_frame(hours: int, symbols: list[str], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [pd.date_range("2024-01-01", periods=hours, freq="h", tz="UTC"), symbols],
        names=["timestamp", "symbol"],
    )
    return pd.DataFrame(rng.standard_normal((len(index), 2)), index=index, columns=["a", "b"])


@pytest.fixture
def gappy_frame() -> pd.DataFrame:
    """AAA complete for 8 hours; BBB misses hour 3 and has a NaN at hour 5."""
    frame = _hourly_frame(8, ["AAA", "BBB"])
    hours = frame.index.get_level_values("timestamp")
    start = hours[0]
    frame = frame.drop((start + pd.Timedelta(hours=3), "BBB"))
    frame.loc[(start + pd.Timedelta(hours=5), "BBB"), "a"] = np.nan
    return frame


def test_windows_hold_the_rows_up_to_and_including_t(gappy_frame: pd.DataFrame) -> None:
    X, index = make_sequences(gappy_frame, lookback=3)

    start = gappy_frame.index.get_level_values("timestamp")[0]
    expected = [(start + pd.Timedelta(hours=h), "AAA") for h in range(2, 8)]
    expected.append((start + pd.Timedelta(hours=2), "BBB"))
    assert sorted(index) == sorted(expected)
    assert list(index.names) == ["timestamp", "symbol"]
    assert X.dtype == np.float32
    assert X.shape == (7, 3, 2)
    for window, (timestamp, symbol) in zip(X, index, strict=True):
        hours = [timestamp - pd.Timedelta(hours=lag) for lag in (2, 1, 0)]
        rows = gappy_frame.loc[[(hour, symbol) for hour in hours]].to_numpy(np.float32)
        np.testing.assert_array_equal(window, rows)


def test_windows_are_sorted_by_time_then_symbol(gappy_frame: pd.DataFrame) -> None:
    _, index = make_sequences(gappy_frame.sample(frac=1.0, random_state=1), lookback=2)

    assert index.is_monotonic_increasing


def test_windows_never_see_rows_after_t() -> None:
    frame = _hourly_frame(30, ["AAA", "BBB", "CCC"])
    X, index = make_sequences(frame, lookback=4)
    cutoff = frame.index.get_level_values("timestamp")[15]

    later = frame.index.get_level_values("timestamp") > cutoff
    perturbed = frame.copy()
    perturbed.loc[later] = np.random.default_rng(7).standard_normal((later.sum(), 2)) * 100
    X_perturbed, index_perturbed = make_sequences(perturbed, lookback=4)

    assert index_perturbed.equals(index)
    upto = index.get_level_values("timestamp") <= cutoff
    np.testing.assert_array_equal(X_perturbed[upto], X[upto])
    assert not np.array_equal(X_perturbed[~upto], X[~upto])


def test_too_short_history_gives_no_windows() -> None:
    X, index = make_sequences(_hourly_frame(3, ["AAA"]), lookback=5)

    assert X.shape == (0, 5, 2)
    assert len(index) == 0


def test_empty_frame_gives_no_windows() -> None:
    X, index = make_sequences(_hourly_frame(3, ["AAA"]).iloc[:0], lookback=2)

    assert X.shape == (0, 2, 2)
    assert list(index.names) == ["timestamp", "symbol"]


@pytest.mark.parametrize("lookback", [0, -1, 2.5, True])
def test_make_sequences_rejects_a_bad_lookback(lookback: object) -> None:
    with pytest.raises(ValueError, match="lookback"):
        make_sequences(_hourly_frame(5, ["AAA"]), lookback=lookback)  # type: ignore[arg-type]


def test_make_sequences_rejects_off_hour_timestamps() -> None:
    frame = _hourly_frame(5, ["AAA"]).reset_index()
    frame.loc[2, "timestamp"] += pd.Timedelta(minutes=30)

    with pytest.raises(ValueError, match="whole hours"):
        make_sequences(frame.set_index(["timestamp", "symbol"]), lookback=2)


def _rule_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Output 0: mean of feature 0 over the last 5 steps > 0; output 1: feature 1 at t-2 < 0."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, LOOKBACK, N_FEATURES)) * [1.0, 3.0, 0.5] + [0.0, 10.0, -2.0]
    noise = rng.standard_normal((n, 2)) * 0.2
    long_hit = X[:, -5:, 0].mean(axis=1) + noise[:, 0] > 0
    short_hit = X[:, -3, 1] - 10.0 + 3 * noise[:, 1] < 0
    return X, np.column_stack([long_hit, short_hit]).astype(np.int64)


@pytest.fixture(scope="module")
def rule_data() -> tuple[np.ndarray, np.ndarray]:
    return _rule_data(N_TRAIN + N_TEST, seed=0)


@pytest.fixture(scope="module")
def fitted(rule_data: tuple[np.ndarray, np.ndarray]) -> SequenceClassifier:
    X, y = rule_data
    return SequenceClassifier(**FAST).fit(X[:N_TRAIN], y[:N_TRAIN])


def test_learns_each_output_from_its_own_rule(
    fitted: SequenceClassifier, rule_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = rule_data
    proba = fitted.predict_proba(X[N_TRAIN:])
    y_test = y[N_TRAIN:]

    assert roc_auc_score(y_test[:, 0], proba[:, 0]) > 0.8
    assert roc_auc_score(y_test[:, 1], proba[:, 1]) > 0.8
    # Each output tracks its own rule, not the other's.
    assert abs(roc_auc_score(y_test[:, 1], proba[:, 0]) - 0.5) < 0.1
    assert abs(roc_auc_score(y_test[:, 0], proba[:, 1]) - 0.5) < 0.1


def test_fitted_attributes(fitted: SequenceClassifier) -> None:
    assert fitted.n_features_in_ == N_FEATURES
    assert fitted.lookback_ == LOOKBACK
    assert fitted.n_outputs_ == 2
    assert fitted.center_.shape == fitted.scale_.shape == (N_FEATURES,)
    assert 1 <= fitted.best_epoch_ <= len(fitted.history_) <= FAST["max_epochs"]
    assert set(fitted.history_[0]) == {"epoch", "train_loss", "valid_loss"}


def test_probabilities_and_labels_have_one_column_per_output(
    fitted: SequenceClassifier, rule_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = rule_data
    proba = fitted.predict_proba(X[N_TRAIN:])
    labels = fitted.predict(X[N_TRAIN:])

    assert proba.shape == labels.shape == (N_TEST, 2)
    assert ((proba >= 0.0) & (proba <= 1.0)).all()
    np.testing.assert_array_equal(labels, (proba >= 0.5).astype(int))


def test_standardises_with_the_leading_training_rows_only() -> None:
    X, y = _rule_data(200, seed=3)
    X[100:] += 50.0  # only the validation tail is shifted

    model = SequenceClassifier(**{**FAST, "max_epochs": 1}, validation_fraction=0.5).fit(X, y)

    steps = X[:100].astype(np.float32).reshape(-1, N_FEATURES)
    low, median, high = np.percentile(steps, [25, 50, 75], axis=0)
    np.testing.assert_allclose(model.center_, median, rtol=1e-5)
    np.testing.assert_allclose(model.scale_, (high - low) / 1.3489795, rtol=1e-4)


def test_standardised_inputs_are_clipped_so_a_drifted_era_stays_on_scale() -> None:
    X, y = _rule_data(400, seed=4)
    model = SequenceClassifier(**{**FAST, "max_epochs": 1}, clip_z=4.0).fit(X[:200], y[:200])
    later = X[200:].copy()
    later[:, :, 0] *= 50.0  # a fat-tailed era: unclipped, feature 0 would reach z ~ 100

    training, drifted = model.standardise(X[:200]), model.standardise(later)

    assert np.abs(drifted).max() <= 4.0
    assert np.abs(training).max() <= 4.0
    np.testing.assert_allclose(np.median(training, axis=(0, 1)), 0.0, atol=0.05)


def test_an_offset_shifts_every_logit_by_its_value(
    fitted: SequenceClassifier, rule_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = rule_data
    offset = np.tile([0.5, -1.0], (20, 1))

    plain, shifted = fitted.predict_proba(X[:20]), fitted.predict_proba(X[:20], offset)

    logit = np.log(plain / (1 - plain))
    np.testing.assert_allclose(1 / (1 + np.exp(-(logit + offset))), shifted, rtol=1e-5)


def test_a_model_fitted_with_the_true_prior_as_offset_learns_little_departure() -> None:
    rng = np.random.default_rng(8)
    X = rng.standard_normal((1500, LOOKBACK, N_FEATURES))
    prior = rng.uniform(-2.0, 2.0, size=(1500, 1)).repeat(2, axis=1)
    y = (rng.uniform(size=(1500, 2)) < 1 / (1 + np.exp(-prior))).astype(int)

    model = SequenceClassifier(**{**FAST, "max_epochs": 4}).fit(X, y, offset=prior)

    departure = np.log(model.predict_proba(X) / (1 - model.predict_proba(X)))
    assert np.abs(departure).mean() < 0.3


def test_offset_of_the_wrong_shape_is_rejected(fitted: SequenceClassifier) -> None:
    with pytest.raises(ValueError, match="offset"):
        fitted.predict_proba(np.zeros((2, LOOKBACK, N_FEATURES)), np.zeros((2, 3)))


def test_same_seed_gives_identical_predictions_and_another_seed_does_not(
    fitted: SequenceClassifier, rule_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = rule_data
    again = clone(fitted).fit(X[:N_TRAIN], y[:N_TRAIN])
    other = clone(fitted).set_params(random_state=1).fit(X[:N_TRAIN], y[:N_TRAIN])

    expected = fitted.predict_proba(X[N_TRAIN:])
    np.testing.assert_array_equal(again.predict_proba(X[N_TRAIN:]), expected)
    assert not np.array_equal(other.predict_proba(X[N_TRAIN:]), expected)


def test_fit_and_predict_leave_global_torch_settings_alone(
    fitted: SequenceClassifier, rule_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = rule_data
    threads = TORCH_THREADS + 1
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rng_state = torch.get_rng_state()
        fitted.predict_proba(X[:10])
        SequenceClassifier(**{**FAST, "max_epochs": 1}).fit(X[:50], np.zeros((50, 2)))

        assert torch.get_num_threads() == threads
        assert not torch.are_deterministic_algorithms_enabled()
        assert torch.equal(torch.get_rng_state(), rng_state)
    finally:
        torch.set_num_threads(previous)


def test_save_and_load_round_trip(
    fitted: SequenceClassifier, rule_data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, _ = rule_data
    path = tmp_path / "sequence.pt"
    fitted.save(path)

    loaded = SequenceClassifier.load(path)

    assert isinstance(torch.load(path, weights_only=True), dict)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.history_ == fitted.history_
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


def test_from_state_rebuilds_the_model(
    fitted: SequenceClassifier, rule_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = rule_data

    rebuilt = SequenceClassifier.from_state(fitted.get_state())

    np.testing.assert_array_equal(rebuilt.center_, fitted.center_)
    np.testing.assert_array_equal(rebuilt.predict_proba(X), fitted.predict_proba(X))


def test_from_state_rejects_a_foreign_state(fitted: SequenceClassifier) -> None:
    state = {**fitted.get_state(), "version": 99}

    with pytest.raises(ValueError, match="version"):
        SequenceClassifier.from_state(state)


def test_early_stopping_on_noise_stops_before_max_epochs() -> None:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((600, LOOKBACK, N_FEATURES))
    y = rng.integers(0, 2, size=(600, 2))

    model = SequenceClassifier(hidden_size=32, batch_size=32, max_epochs=60, patience=2).fit(X, y)

    assert len(model.history_) < 60
    assert len(model.history_) == model.best_epoch_ + 2


def _bad_inputs() -> list[object]:
    X, y = _rule_data(20, seed=1)
    with_nan = X.copy()
    with_nan[3, 2, 1] = np.nan
    with_inf = X.copy()
    with_inf[0, 0, 0] = np.inf
    return [
        pytest.param(with_nan, y, "NaN", id="nan"),
        pytest.param(with_inf, y, "infinite", id="inf"),
        pytest.param(X[:, :, 0], y, "ndim", id="2d-X"),
        pytest.param(X, y[:-1], "rows", id="lengths"),
        pytest.param(X, y[:, 0], "n_outputs", id="1d-y"),
        pytest.param(X, y * 2, "only 0 and 1", id="not-binary"),
    ]


@pytest.mark.parametrize(("X", "y", "message"), _bad_inputs())
def test_fit_rejects_bad_input(X: np.ndarray, y: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SequenceClassifier(**FAST).fit(X, y)


def test_fit_rejects_bad_hyperparameters() -> None:
    X, y = _rule_data(20, seed=1)

    with pytest.raises(ValueError, match=r"hidden_size=0.*validation_fraction=1\.0"):
        SequenceClassifier(hidden_size=0, validation_fraction=1.0).fit(X, y)


def test_predict_requires_a_fit() -> None:
    with pytest.raises(NotFittedError):
        SequenceClassifier().predict_proba(np.zeros((1, LOOKBACK, N_FEATURES)))


def test_predict_rejects_another_sequence_shape(fitted: SequenceClassifier) -> None:
    with pytest.raises(ValueError, match="fitted on"):
        fitted.predict_proba(np.zeros((2, LOOKBACK + 1, N_FEATURES)))
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict(np.full((2, LOOKBACK, N_FEATURES), np.nan))
