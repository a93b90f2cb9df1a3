"""A family's training rows built on a Dask cluster, one time block per task.

The training orchestration (`training.train`) asks a source for the rows of a family and for
the window it covers; this one computes the rows on the workers (`cluster.blocks`) and
gathers them in time order, so this process never holds the candles, the panel or the
intermediate frames of the features, only the rows the family trains on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import pandas as pd
from distributed import Client

from cluster.blocks import DEFAULT_BLOCK_HOURS, Scope, block_rows, joined, time_blocks
from cluster.trees import DaskRegressorFitter
from db.engine import make_engine
from models.errors import InsufficientData
from models.families import ModelFamily, TrainingData
from models.families.cross_section import CrossSectionalFamily
from store.datasets import candle_extent


@dataclass
class ClusterSource:
    """Training rows from `price_data` in `scope`, computed on the cluster of `client`."""

    client: Client
    scope: Scope
    first_hour: datetime
    last_hour: datetime
    symbols: list[str]
    block_hours: int = DEFAULT_BLOCK_HOURS

    @classmethod
    def open(
        cls,
        client: Client,
        database_url: str,
        symbols: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        block_hours: int = DEFAULT_BLOCK_HOURS,
    ) -> ClusterSource:
        """The source of what `load_panel(engine, symbols, since, until)` would read."""
        engine = make_engine(database_url)
        try:
            first, last, found = candle_extent(engine, symbols, since, until)
        finally:
            engine.dispose()
        scope = Scope(database_url, tuple(s.upper() for s in symbols or ()), since, until)
        return cls(client, scope, first, last, found, block_hours)

    def fitting(self, family: ModelFamily) -> ModelFamily:
        """The cross-sectional families' boosters fit on the workers (`cluster.trees`); the
        macro family (one row per hour) and the timing family (its GRU on at most
        `max_sequence_rows` windows, its trees on every `tree_stride`-th hour) fit here, on
        the rows gathered for validation."""
        if isinstance(family, CrossSectionalFamily):
            return replace(family, fitter=DaskRegressorFitter(self.client))
        return family

    def rows(self, family: ModelFamily) -> TrainingData:
        """The family's labelled rows, block by block on the workers; a lost worker's
        blocks are recomputed by the scheduler on another."""
        blocks = time_blocks(
            pd.Timestamp(self.first_hour), pd.Timestamp(self.last_hour), self.block_hours
        )
        count = len(blocks)
        futures = self.client.map(
            block_rows, [self.scope] * count, [family] * count, blocks, pure=False
        )
        X, y = joined(self.client.gather(futures))
        if X.empty:
            raise InsufficientData("no rows with both features and a known label")
        return TrainingData(X, y)
