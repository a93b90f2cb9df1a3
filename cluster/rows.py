"""A family's rows left on the workers: validation fits and predicts there, block by block.

`cluster.source.ClusterSource.rows` computes each time block's features and labels in a task
(`cluster.blocks`); this keeps each block's feature frame where it was computed, as a Dask
future, and brings to the training process only what grows with the hours and not with the
width of a row: the labels (with their index of hours and entities) and, for validation, the
raw predictions, the baseline and the few feature columns that a family's serving transform
and scores read (`ModelFamily.serving_columns`). So the training process holds no feature matrix:

- the cross-sectional families' boosters fit with xgboost.dask on the blocks' rows where
  they are (`BlockFrame`, `cluster.trees`), the fold's rows selected on the workers;
- the families that fit in this process (macro, one row per hour; timing, whose GRU takes
  at most `max_sequence_rows` windows) get the fold's rows here, at most `local_fit_rows` of
  them: past that, a uniform sample of whole hours (`sampled_hours`), seeded, so the fit
  is bounded whatever the history and unbiased over time;
- every fitted family predicts on the workers, each block's rows in the task that holds them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd
from distributed import Client, Future

from models.errors import InsufficientData
from models.families import ModelFamily, TrainingData
from models.families.cross_section import CrossSectionalFamily
from models.families.xgb import fit_regressor
from models.panel import hours_of
from models.validation import Positions

# Rows a family fitted in this process fits on at most (a fold's rows, or all of them for
# the final fit): about 0.4 GB of the timing family's rows at QUICK's lookback, 0.7 GB at the
# default. Below it the fit sees exactly the rows it sees in-process.
LOCAL_FIT_ROWS = 250_000


def described_columns(family: ModelFamily, columns: Sequence[str]) -> list[str]:
    """Those of `columns` that `family` serves, scores and calibrates with
    (`ModelFamily.serving_columns`; all of them for a family that names none)."""
    if family.serving_columns is None:
        return list(columns)
    wanted = set(family.serving_columns)
    return [column for column in columns if column in wanted]


def sampled_hours(timestamps: pd.DatetimeIndex, limit: int, seed: int) -> np.ndarray:
    """Mask of the rows of a uniform sample of whole hours holding about `limit` rows (all
    of them when they are fewer): every entity of a kept hour is kept, so cross-sections and
    the families' own per-hour sampling stay whole."""
    if len(timestamps) <= limit:
        return np.ones(len(timestamps), dtype=bool)
    hours = timestamps.unique()
    keep = int(len(hours) * limit / len(timestamps))
    chosen = np.random.default_rng(seed).choice(len(hours), size=keep, replace=False)
    return np.asarray(timestamps.isin(hours[np.sort(chosen)]))


@dataclass
class BlockRows:
    """`models.validation.Rows` whose features stay on the workers, one future per block.

    `offsets[b]` is the position of block b's first row, `offsets[-1]` the number of rows;
    `y` holds every block's labels in the same order, `meta` the features' columns and
    dtypes (no rows).
    """

    client: Client
    parts: list[Future]
    offsets: np.ndarray
    y: pd.DataFrame
    meta: pd.DataFrame
    local_fit_rows: int = LOCAL_FIT_ROWS

    @classmethod
    def from_blocks(
        cls, client: Client, blocks: Sequence[Future], local_fit_rows: int = LOCAL_FIT_ROWS
    ) -> BlockRows:
        """From futures of `cluster.blocks.block_rows`: the features stay, the labels come."""
        features = [client.submit(_first, block) for block in blocks]
        labels = client.gather([client.submit(_second, block) for block in blocks])
        kept = [i for i, y in enumerate(labels) if not y.empty]
        if not kept:
            raise InsufficientData("no rows with both features and a known label")
        lengths = [len(labels[i]) for i in kept]
        meta = client.submit(_head, features[kept[0]], 0).result()
        return cls(
            client,
            [features[i] for i in kept],
            np.cumsum([0, *lengths]),
            pd.concat([labels[i] for i in kept]),
            meta,
            local_fit_rows,
        )

    @property
    def timestamps(self) -> pd.DatetimeIndex:
        return hours_of(self.y.index)

    @property
    def columns(self) -> list[str]:
        return list(self.meta.columns)

    def fit(self, family: ModelFamily, positions: Positions) -> ModelFamily:
        chosen = self.positions(positions)
        if isinstance(family, CrossSectionalFamily):
            # Its fit reads the features only through its fitter (`cluster.trees`), which
            # takes a BlockFrame's rows where they are.
            frame = BlockFrame(self, chosen, self.columns)
            return family.fit(cast(pd.DataFrame, frame), self.y.iloc[chosen])
        hours = hours_of(self.y.index[chosen])
        chosen = chosen[sampled_hours(hours, self.local_fit_rows, family.random_state)]
        return family.fit(self.features(chosen, self.columns), self.y.iloc[chosen])

    def predict(
        self, family: ModelFamily, positions: Positions
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        shared = self.client.scatter(_portable(family), hash=False)
        tasks = [
            self.client.submit(_predict, shared, part, local, pure=False)
            for part, local in self._split(self.positions(positions))
        ]
        predictions = self.client.gather(tasks)
        return pd.concat([raw for raw, _ in predictions]), pd.concat([b for _, b in predictions])

    def described(self, family: ModelFamily, positions: Positions) -> TrainingData:
        chosen = self.positions(positions)
        X = self.features(chosen, described_columns(family, self.columns))
        return TrainingData(X, self.y.iloc[chosen])

    def tail(self, count: int) -> pd.DataFrame:
        total = int(self.offsets[-1])
        return self.features(np.arange(max(0, total - count), total), self.columns)

    def features(self, positions: np.ndarray, columns: list[str]) -> pd.DataFrame:
        """The rows at `positions` (ascending), of `columns`, gathered here."""
        return pd.concat(self.client.gather(self.selected(positions, columns)))

    def selected(
        self, positions: np.ndarray, columns: list[str], keep_index: bool = True
    ) -> list[Future]:
        """Futures of the rows at `positions` of each block that has some, on its worker."""
        return [
            self.client.submit(_select, part, local, columns, keep_index, pure=False)
            for part, local in self._split(positions)
        ]

    def positions(self, positions: Positions) -> np.ndarray:
        """`positions` as an ascending array of row positions."""
        chosen = np.arange(int(self.offsets[-1]))[positions]
        if np.any(np.diff(chosen) <= 0):
            raise ValueError("rows on the cluster are taken in ascending order")
        return chosen

    def _split(self, positions: np.ndarray) -> list[tuple[Future, np.ndarray]]:
        """Each block with rows among `positions`, and those rows' positions within it."""
        cuts = np.searchsorted(positions, self.offsets)
        return [
            (part, positions[cuts[b] : cuts[b + 1]] - self.offsets[b])
            for b, part in enumerate(self.parts)
            if cuts[b + 1] > cuts[b]
        ]


@dataclass(frozen=True)
class BlockFrame:
    """Some rows and columns of a `BlockRows`, standing for the feature frame that
    `CrossSectionalFamily.fit` selects from and hands to its fitter: it has the frame's
    `index`, `columns`, `len`, `frame[columns]` and `frame.loc[mask, columns]`, and
    `cluster.trees.DaskRegressorFitter` fits on its rows where they are."""

    rows: BlockRows
    chosen: np.ndarray
    names: list[str]

    @property
    def index(self) -> pd.Index:
        return self.rows.y.index[self.chosen]

    @property
    def columns(self) -> pd.Index:
        return pd.Index(self.names)

    def __len__(self) -> int:
        return len(self.chosen)

    def __getitem__(self, names: list[str]) -> BlockFrame:
        return BlockFrame(self.rows, self.chosen, list(names))

    @property
    def loc(self) -> _Selector:
        return _Selector(self)

    def parts(self) -> list[Future]:
        """Futures of its rows, one per block that has some, index dropped."""
        return self.rows.selected(self.chosen, self.names, keep_index=False)

    def lengths(self) -> list[int]:
        return [len(local) for _, local in self.rows._split(self.chosen)]

    def meta(self) -> pd.DataFrame:
        return self.rows.meta[self.names].reset_index(drop=True)


@dataclass(frozen=True)
class _Selector:
    frame: BlockFrame

    def __getitem__(self, key: tuple[np.ndarray, list[str]]) -> BlockFrame:
        mask, names = key
        return BlockFrame(self.frame.rows, self.frame.chosen[np.asarray(mask)], list(names))


def _portable(family: ModelFamily) -> ModelFamily:
    """`family` without what holds this process's client (a fitter on the cluster): a fitted
    family predicts on the workers, it does not fit there."""
    if not isinstance(family, CrossSectionalFamily):
        return family
    shipped = copy.copy(family)
    shipped.fitter = fit_regressor
    return shipped


def _first(block: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return block[0]


def _second(block: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return block[1]


def _head(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    return frame.head(count)


def _select(
    frame: pd.DataFrame, local: np.ndarray, columns: list[str], keep_index: bool
) -> pd.DataFrame:
    chosen = frame.iloc[local, frame.columns.get_indexer(columns)]
    return chosen if keep_index else chosen.reset_index(drop=True)


def _predict(
    family: ModelFamily, frame: pd.DataFrame, local: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    X = frame.iloc[local]
    return family.predict(X), family.baseline(X)
