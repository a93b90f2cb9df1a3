"""A family's training rows built on a Dask cluster, one time block per task.

The training orchestration (`training.train`) asks a source for the rows of a family and for
the window it covers; this one computes the rows on the workers (`cluster.blocks`) and leaves
their features there (`cluster.rows.BlockRows`), so this process never holds the candles, the
panel or the feature matrix: only the labels, predictions and the few columns validation
scores with, and the bounded rows of the fits that run here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import pandas as pd
from distributed import Client

from cluster.blocks import DEFAULT_BLOCK_HOURS, Scope, block_rows, time_blocks
from cluster.rows import LOCAL_FIT_ROWS, BlockRows
from cluster.trees import DaskRegressorFitter
from db.engine import make_engine
from models.families import ModelFamily
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
    local_fit_rows: int = LOCAL_FIT_ROWS

    @classmethod
    def open(
        cls,
        client: Client,
        database_url: str,
        symbols: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        block_hours: int = DEFAULT_BLOCK_HOURS,
        local_fit_rows: int = LOCAL_FIT_ROWS,
    ) -> ClusterSource:
        """The source of what `load_panel(engine, symbols, since, until)` would read."""
        engine = make_engine(database_url)
        try:
            first, last, found = candle_extent(engine, symbols, since, until)
        finally:
            engine.dispose()
        scope = Scope(database_url, tuple(s.upper() for s in symbols or ()), since, until)
        return cls(client, scope, first, last, found, block_hours, local_fit_rows)

    def fitting(self, family: ModelFamily) -> ModelFamily:
        """The cross-sectional families' boosters fit on the workers (`cluster.trees`); the
        macro family (one row per hour) and the timing family (its GRU on at most
        `max_sequence_rows` windows) fit here, on at most `local_fit_rows` rows
        (`cluster.rows`)."""
        if isinstance(family, CrossSectionalFamily):
            return replace(family, fitter=DaskRegressorFitter(self.client))
        return family

    def rows(self, family: ModelFamily) -> BlockRows:
        """The family's labelled rows, block by block on the workers, where their features
        stay; a lost worker's blocks are recomputed by the scheduler on another."""
        blocks = time_blocks(
            pd.Timestamp(self.first_hour), pd.Timestamp(self.last_hour), self.block_hours
        )
        count = len(blocks)
        futures = self.client.map(
            block_rows, [self.scope] * count, [family] * count, blocks, pure=False
        )
        return BlockRows.from_blocks(self.client, futures, self.local_fit_rows)
