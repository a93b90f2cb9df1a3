"""A small GRU sequence classifier behind the scikit-learn estimator contract.

The trade-timing family (layer 4) asks, from the last `lookback` hours of one coin's features,
how likely a long entry (and, separately, a short entry) is to reach its target before its
stop. `make_sequences` turns a long (timestamp, symbol) feature frame into fixed-length
windows that never look past their own hour; `SequenceClassifier` learns one probability per
outcome from those windows.

Inputs are standardised per feature with robust statistics of the training rows (median and
interquartile range, so a few fat-tailed hours cannot set the scale) and clipped to
+-`clip_z`, so a later era whose levels drift, or a crash hour, reaches the network on the
same bounded scale as the rows it learned from. An optional `offset` (one logit per row and
output) is added to the network's logits in fitting and predicting: the network then learns a
departure from a known prior (the timing family passes the rolling base rate's logit).

The estimator borrows skorch's shape: every hyperparameter is an `__init__` argument that is
only stored, fitting is split into small steps a subclass can override (`_build_module`,
`_train_epoch`, `_evaluate`, ...), and persistence writes weights and plain values rather than
a pickled object, so a saved model loads with `torch.load(weights_only=True)`.

Determinism: fitting and predicting run inside `_torch_runtime`, which pins torch to
`TORCH_THREADS` intra-op threads, turns on `torch.use_deterministic_algorithms` and forks the
CPU random number generator before seeding it, restoring all three afterwards. Those settings
are process-global while a call runs, so two estimators should not fit concurrently in threads
of one process. Batch order comes from a local numpy `Generator`, never the global one. The
same `random_state`, data and thread count give bit-identical predictions on CPU; other devices
get best effort only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import torch
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

logger = logging.getLogger(__name__)

HOUR = pd.Timedelta(hours=1)
# Fixed rather than "all cores" because float reductions split differently with another
# thread count, which would break bit-identical results between machines and runs. One thread:
# on a two-core machine a second one made a training step only ~1.2x faster while the cores
# were idle, but ~7x slower while other processes competed for them (OpenMP threads wait at
# every barrier for a descheduled peer, 96 times per 48-step GRU forward and backward).
TORCH_THREADS = 1
STATE_FORMAT = "cryptopredict.models.sequence.SequenceClassifier"
STATE_VERSION = 2
# Rows per forward pass when only evaluating: no gradients, so larger batches are cheap.
_EVAL_BATCH_SIZE = 4096
# Rows whose steps give the robust scaling statistics; evenly spaced over the training part.
_SCALING_ROWS = 20_000
# IQR / this is the standard deviation of a normal distribution.
_NORMAL_IQR = 1.3489795


def make_sequences(features: pd.DataFrame, lookback: int) -> tuple[np.ndarray, pd.MultiIndex]:
    """Windows of the last `lookback` hours (t-lookback+1 .. t) for every (timestamp, symbol).

    `features` is indexed by a (timestamp, symbol) MultiIndex on whole hours, with numeric
    columns. A row is kept only when all `lookback` hours of its window are present in the
    index with finite values in every column, so windows across gaps or NaN are dropped and no
    window holds data from after its own hour. Returns float32 `X` of shape
    (n, lookback, n_features) and the (timestamp, symbol) index of its rows, sorted by
    timestamp then symbol, which keeps the rows time-ordered as `SequenceClassifier` expects.
    """
    if isinstance(lookback, bool) or not isinstance(lookback, int | np.integer) or lookback < 1:
        raise ValueError(f"lookback must be a positive integer, got {lookback!r}")
    if not isinstance(features.index, pd.MultiIndex) or features.index.nlevels != 2:
        raise ValueError("features must be indexed by a (timestamp, symbol) MultiIndex")
    if features.index.has_duplicates:
        raise ValueError("features has duplicate (timestamp, symbol) rows")
    values = features.to_numpy(dtype=np.float32)
    timestamps = pd.DatetimeIndex(features.index.get_level_values(0))
    groups = features.groupby(level=1).indices
    parts = [
        _symbol_windows(values[positions], timestamps[positions], lookback)
        for positions in groups.values()
    ]
    end_times = timestamps[:0].append([part.end_times for part in parts])
    symbols = pd.Index(list(groups)).repeat([len(part.end_times) for part in parts])
    index = pd.MultiIndex.from_arrays([end_times, symbols], names=features.index.names)
    order = index.argsort()
    return _gather_windows(parts, order, (lookback, values.shape[1])), index[order]


@dataclass(frozen=True)
class _SymbolWindows:
    """One symbol's windows (a strided view), which are complete, and when those end."""

    windows: np.ndarray  # (n_windows, lookback, n_features), a view of the hourly grid
    complete: np.ndarray  # (n_windows,) bool
    end_times: pd.DatetimeIndex


def _symbol_windows(
    values: np.ndarray, timestamps: pd.DatetimeIndex, lookback: int
) -> _SymbolWindows:
    """Slide over one symbol's rows scattered onto a gap-free hourly grid.

    Missing hours become NaN on the grid, so a window is complete exactly when its `lookback`
    grid rows are all finite.
    """
    start = timestamps.min()
    offsets = ((timestamps - start) / HOUR).to_numpy()
    hours = np.rint(offsets).astype(np.int64)
    if not np.allclose(offsets, hours, rtol=0.0, atol=1e-9):
        raise ValueError("feature timestamps must fall on whole hours")
    # At least `lookback` rows so that a short history yields one (incomplete) window.
    grid = np.full((max(hours.max() + 1, lookback), values.shape[1]), np.nan, dtype=np.float32)
    grid[hours] = values
    complete = np.all(sliding_window_view(np.isfinite(grid).all(axis=1), lookback), axis=1)
    # sliding_window_view puts the window axis last: (n_windows, n_features, lookback).
    windows = sliding_window_view(grid, lookback, axis=0).transpose(0, 2, 1)
    end_hours = np.flatnonzero(complete) + lookback - 1
    return _SymbolWindows(windows, complete, start + pd.to_timedelta(end_hours, unit="h"))


def _gather_windows(
    parts: list[_SymbolWindows], order: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """Copy the complete windows straight into their sorted rows of one output array.

    `order` sorts the symbol-by-symbol concatenation of complete windows. Writing each
    symbol's windows to their sorted rows leaves the output as the only full-size array,
    rather than also concatenating and then reordering hundreds of megabytes.
    """
    destination = np.empty_like(order)
    destination[order] = np.arange(len(order))
    X = np.empty((len(order), *shape), dtype=np.float32)
    first = 0
    for part in parts:
        last = first + len(part.end_times)
        X[destination[first:last]] = part.windows[part.complete]
        first = last
    return X


class _GRUClassifierModule(nn.Module):
    """GRU over the sequence; one logit per outcome from the last layer's final hidden state."""

    def __init__(
        self, n_features: int, hidden_size: int, num_layers: int, dropout: float, n_outputs: int
    ) -> None:
        super().__init__()
        # nn.GRU applies dropout only between stacked layers; the extra Dropout makes the
        # hyperparameter act with a single layer too.
        self.gru = nn.GRU(
            n_features,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, hidden = self.gru(x)
        return self.head(self.dropout(hidden[-1]))


@contextmanager
def _torch_runtime(seed: int | None) -> Iterator[None]:
    """Run torch with fixed threads, deterministic kernels and a seeded, forked CPU generator.

    Every setting is restored on exit, so callers' global torch state is left as it was.
    """
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(TORCH_THREADS)
    # warn_only: an op without a deterministic kernel (on some accelerator) warns, not fails.
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


class SequenceClassifier(ClassifierMixin, BaseEstimator):
    """Multi-output binary classifier over fixed-length feature sequences.

    `X` has shape (n, lookback, n_features); `y` has shape (n, n_outputs) of 0/1 (for layer 4:
    long_hit, short_hit). A GRU reads each sequence and a linear head gives one logit per
    output, trained with binary cross-entropy, Adam and shuffled mini-batches.

    Rows must be in time order: the last `validation_fraction` of them, as given, is held out
    for early stopping (a random split would validate on hours interleaved with training
    hours). Training stops after `patience` epochs without a lower validation loss and keeps
    the weights of the best epoch; with `validation_fraction=0` all `max_epochs` run. Features
    are standardised per feature with the training part's median and IQR (as a normal
    standard deviation) and clipped to +-`clip_z` (see `standardise`).

    `predict_proba` returns an (n, n_outputs) array of P(outcome = 1), not scikit-learn's list
    of (n, 2) arrays per output.

    The defaults are sized for time: a fit on 200,000 sequences of 48 hours x 20 features runs
    about 10 s an epoch on one idle core, so three epochs of batches of 512 (with the learning
    rate doubled to match the doubled batch) stay well under a minute. Raise `max_epochs` for
    longer training; early stopping then decides.
    """

    def __init__(
        self,
        hidden_size: int = 32,
        num_layers: int = 1,
        dropout: float = 0.0,
        learning_rate: float = 2e-3,
        batch_size: int = 512,
        max_epochs: int = 3,
        patience: int = 3,
        validation_fraction: float = 0.15,
        weight_decay: float = 0.0,
        clip_z: float = 5.0,
        random_state: int | None = 0,
        device: str = "cpu",
    ) -> None:
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.weight_decay = weight_decay
        self.clip_z = clip_z
        self.random_state = random_state
        self.device = device

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        tags.classifier_tags.multi_label = True
        return tags

    def fit(self, X: np.ndarray, y: np.ndarray, offset: np.ndarray | None = None) -> Self:
        """Train on time-ordered sequences `X` (n, lookback, n_features) and 0/1 targets `y`.

        `offset`, shape (n, n_outputs), is added to the logits: the network learns the
        departure from it.
        """
        self._check_hyperparameters()
        features = self._check_sequences(X)
        targets = self._check_targets(y, len(features))
        offsets = _check_offset(offset, targets.shape)
        n_train = self._n_train_rows(len(features))
        self.n_features_in_ = features.shape[2]
        self.lookback_ = features.shape[1]
        self.n_outputs_ = targets.shape[1]
        self.center_, self.scale_ = _robust_moments(features[:n_train])
        seed = self._seed()
        with _torch_runtime(seed):
            self.module_ = self._build_module()
            self._train(
                torch.from_numpy(features),
                torch.from_numpy(targets),
                torch.from_numpy(offsets),
                n_train,
                np.random.default_rng(seed),
            )
        return self

    def predict_proba(self, X: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
        """P(outcome = 1) for every row and output, shape (n, n_outputs).

        Pass the same kind of `offset` the model was fitted with (none if none).
        """
        check_is_fitted(self)
        features = torch.from_numpy(self._check_sequences(X, fitted=True))
        offsets = torch.from_numpy(_check_offset(offset, (len(features), self.n_outputs_)))
        with _torch_runtime(seed=None):
            logits = self._logits(features) + offsets
            return torch.sigmoid(logits).numpy().astype(np.float64)

    def standardise(self, X: np.ndarray) -> np.ndarray:
        """`X` as the network sees it: (x - median) / (IQR / 1.349), clipped to +-clip_z."""
        check_is_fitted(self)
        features = torch.from_numpy(self._check_sequences(X, fitted=True))
        return self._standardise(features).cpu().numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """0/1 per row and output, shape (n, n_outputs): 1 where the probability is >= 0.5."""
        return (self.predict_proba(X) >= 0.5).astype(np.int64)

    def get_state(self) -> dict[str, Any]:
        """Everything needed to rebuild the fitted estimator, as primitives and CPU tensors."""
        check_is_fitted(self)
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "params": self.get_params(deep=False),
            "n_features_in": self.n_features_in_,
            "lookback": self.lookback_,
            "n_outputs": self.n_outputs_,
            "center": self.center_.tolist(),
            "scale": self.scale_.tolist(),
            "history": [dict(entry) for entry in self.history_],
            "best_epoch": self.best_epoch_,
            "module_state": {
                name: tensor.detach().cpu().clone()
                for name, tensor in self.module_.state_dict().items()
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """Rebuild a fitted estimator from `get_state()`."""
        if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
            raise ValueError(
                f"not a version {STATE_VERSION} {STATE_FORMAT} state: "
                f"{state.get('format')!r} version {state.get('version')!r}"
            )
        estimator = cls(**state["params"])
        estimator.n_features_in_ = int(state["n_features_in"])
        estimator.lookback_ = int(state["lookback"])
        estimator.n_outputs_ = int(state["n_outputs"])
        estimator.center_ = np.asarray(state["center"], dtype=np.float64)
        estimator.scale_ = np.asarray(state["scale"], dtype=np.float64)
        estimator.history_ = [dict(entry) for entry in state["history"]]
        estimator.best_epoch_ = int(state["best_epoch"])
        module = estimator._build_module()
        module.load_state_dict(state["module_state"])
        estimator.module_ = module
        return estimator

    def save(self, path: Path) -> None:
        """Write `get_state()` with `torch.save`: weights and plain values, no pickled classes."""
        torch.save(self.get_state(), path)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read a model written by `save`; safe to load (`weights_only=True`)."""
        return cls.from_state(torch.load(path, map_location="cpu", weights_only=True))

    def _check_hyperparameters(self) -> None:
        checks = {
            "hidden_size": _is_int(self.hidden_size) and self.hidden_size >= 1,
            "num_layers": _is_int(self.num_layers) and self.num_layers >= 1,
            "dropout": 0.0 <= self.dropout < 1.0,
            "learning_rate": self.learning_rate > 0.0,
            "batch_size": _is_int(self.batch_size) and self.batch_size >= 1,
            "max_epochs": _is_int(self.max_epochs) and self.max_epochs >= 1,
            "patience": _is_int(self.patience) and self.patience >= 1,
            "validation_fraction": 0.0 <= self.validation_fraction < 1.0,
            "weight_decay": self.weight_decay >= 0.0,
            "clip_z": self.clip_z > 0.0,
            "random_state": self.random_state is None or _is_int(self.random_state),
        }
        invalid = [f"{name}={getattr(self, name)!r}" for name, ok in checks.items() if not ok]
        if invalid:
            raise ValueError(f"invalid hyperparameters: {', '.join(invalid)}")

    def _check_sequences(self, X: np.ndarray, fitted: bool = False) -> np.ndarray:
        """`X` as a C-contiguous float32 array of shape (n, lookback, n_features), all finite."""
        features = np.ascontiguousarray(X, dtype=np.float32)
        if features.ndim != 3:
            raise ValueError(
                f"X must have shape (n_samples, lookback, n_features), got ndim={features.ndim}"
            )
        # A float64 sum of float32 values cannot overflow, so it is finite exactly when every
        # value is; unlike np.isfinite(features).all() it needs no full-size temporary.
        if not np.isfinite(features.sum(dtype=np.float64)):
            raise ValueError("X contains NaN or infinite values (after conversion to float32)")
        if fitted and features.shape[1:] != (self.lookback_, self.n_features_in_):
            raise ValueError(
                f"X has sequences of shape {features.shape[1:]}, but the model was fitted on "
                f"{(self.lookback_, self.n_features_in_)}"
            )
        return features

    @staticmethod
    def _check_targets(y: np.ndarray, n_rows: int) -> np.ndarray:
        """`y` as a float32 array of shape (n, n_outputs) holding only 0 and 1."""
        targets = np.asarray(y)
        if targets.ndim != 2 or targets.shape[1] < 1:
            raise ValueError(f"y must have shape (n_samples, n_outputs), got {targets.shape}")
        if len(targets) != n_rows:
            raise ValueError(f"X has {n_rows} rows but y has {len(targets)}")
        if not np.isin(targets, (0, 1)).all():
            raise ValueError("y must contain only 0 and 1")
        return np.ascontiguousarray(targets, dtype=np.float32)

    def _n_train_rows(self, n_rows: int) -> int:
        """Rows before the validation tail; at least one row on each side when validating."""
        n_valid = math.ceil(n_rows * self.validation_fraction)
        if n_rows - n_valid < 1:
            raise ValueError(
                f"{n_rows} rows leave no training rows with "
                f"validation_fraction={self.validation_fraction}"
            )
        return n_rows - n_valid

    def _seed(self) -> int:
        """`random_state`, or a fresh seed so that unseeded fits still use one generator."""
        if self.random_state is None:
            return int(np.random.default_rng().integers(2**31))
        return int(self.random_state)

    def _build_module(self) -> nn.Module:
        module = _GRUClassifierModule(
            self.n_features_in_, self.hidden_size, self.num_layers, self.dropout, self.n_outputs_
        )
        return module.to(self.device)

    def _train(
        self,
        features: torch.Tensor,
        targets: torch.Tensor,
        offsets: torch.Tensor,
        n_train: int,
        rng: np.random.Generator,
    ) -> None:
        """Epoch loop with early stopping on the validation tail; keeps the best weights."""
        optimizer = torch.optim.Adam(
            self.module_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        validating = n_train < len(features)
        self.history_: list[dict[str, float]] = []
        self.best_epoch_ = self.max_epochs
        best_loss = math.inf
        best_weights: dict[str, torch.Tensor] = {}
        for epoch in range(1, self.max_epochs + 1):
            train_loss = self._train_epoch(
                features[:n_train], targets[:n_train], offsets[:n_train], optimizer, rng
            )
            valid_loss = (
                self._evaluate(features[n_train:], targets[n_train:], offsets[n_train:])
                if validating
                else math.nan
            )
            self.history_.append(
                {"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss}
            )
            logger.debug(
                "epoch %d: train loss %.5f, valid loss %.5f", epoch, train_loss, valid_loss
            )
            if not validating:
                continue
            if valid_loss < best_loss:
                best_loss, self.best_epoch_ = valid_loss, epoch
                best_weights = {k: v.detach().clone() for k, v in self.module_.state_dict().items()}
            elif epoch - self.best_epoch_ >= self.patience:
                logger.debug("early stop after epoch %d; best %d", epoch, self.best_epoch_)
                break
        if best_weights:
            self.module_.load_state_dict(best_weights)

    def _train_epoch(
        self,
        features: torch.Tensor,
        targets: torch.Tensor,
        offsets: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        rng: np.random.Generator,
    ) -> float:
        """One shuffled pass over the training rows; returns the mean training loss."""
        self.module_.train()
        order = torch.from_numpy(rng.permutation(len(features)))
        total = 0.0
        for batch in order.split(self.batch_size):
            logits = self.module_(self._standardise(features[batch]))
            logits = logits + offsets[batch].to(self.device)
            loss = nn.functional.binary_cross_entropy_with_logits(
                logits, targets[batch].to(self.device)
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        return total / len(features)

    def _evaluate(
        self, features: torch.Tensor, targets: torch.Tensor, offsets: torch.Tensor
    ) -> float:
        """Mean binary cross-entropy of the current weights on the given rows."""
        logits = self._logits(features) + offsets
        return nn.functional.binary_cross_entropy_with_logits(logits, targets).item()

    def _logits(self, features: torch.Tensor) -> torch.Tensor:
        """Logits on the CPU, shape (n, n_outputs), computed in evaluation mode."""
        self.module_.eval()
        with torch.inference_mode():
            chunks = [
                self.module_(self._standardise(chunk)).cpu()
                for chunk in features.split(_EVAL_BATCH_SIZE)
            ]
        return torch.cat(chunks) if chunks else torch.empty((0, self.n_outputs_))

    def _standardise(self, features: torch.Tensor) -> torch.Tensor:
        """Scale a batch with the training statistics; done per batch to avoid copying all X."""
        center = torch.from_numpy(self.center_.astype(np.float32)).to(self.device)
        scale = torch.from_numpy(self.scale_.astype(np.float32)).to(self.device)
        scaled = (features.to(self.device) - center) / scale
        return scaled.clamp(-self.clip_z, self.clip_z)


def _robust_moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature median and IQR / 1.349 over the steps of (at most `_SCALING_ROWS`) rows.

    A feature without spread between its quartiles (mostly one value) falls back to its
    standard deviation, and a constant one to 1, so it maps to 0 instead of dividing by zero.
    """
    step = max(1, math.ceil(len(features) / _SCALING_ROWS))
    values = features[::step].reshape(-1, features.shape[2]).astype(np.float64)
    low, center, high = np.percentile(values, [25.0, 50.0, 75.0], axis=0)
    scale = (high - low) / _NORMAL_IQR
    deviation = values.std(axis=0)
    scale = np.where(scale > 0.0, scale, deviation)
    return center, np.where(scale > 0.0, scale, 1.0)


def _check_offset(offset: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """The logit offset as float32 of the targets' shape; zeros when there is none."""
    if offset is None:
        return np.zeros(shape, dtype=np.float32)
    offsets = np.ascontiguousarray(offset, dtype=np.float32)
    if offsets.shape != shape:
        raise ValueError(f"offset must have shape {shape}, got {offsets.shape}")
    if not np.isfinite(offsets).all():
        raise ValueError("offset contains NaN or infinite values")
    return offsets


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)
