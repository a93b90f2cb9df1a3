"""The cross-sectional families' boosters trained data-parallel on the workers.

`xgboost.dask` takes the rows where they are (a `cluster.rows.BlockFrame`: each time block's
selected rows on the worker that computed them; a frame in this process is spread over the
workers first), each worker builds its histograms from its share
and the workers agree on every split through XGBoost's own allreduce; the result is an
ordinary `xgboost.Booster`, saved, registered and served like one fitted in-process. The
trees are not bit-identical to a single process's (the quantile sketches are merged from
the shares), so the validation metrics agree within a tolerance rather than exactly
(`tests/cluster/test_cluster_training.py`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
import xgboost as xgb
from distributed import Client
from xgboost.collective import Config
from xgboost.dask import DaskXGBRegressor

from cluster.rows import BlockFrame
from models.families.xgb import EvalSet

# A worker lost in the middle of a fit leaves the others waiting in an allreduce for ever;
# past this many seconds without an answer XGBoost gives up and the fit raises, so the run
# ends as `error` instead of hanging. Far above one collective step of any fit measured.
COLLECTIVE_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class DaskRegressorFitter:
    """A `models.families.xgb.RegressorFitter` that fits on the workers of `client`."""

    client: Client

    def __call__(
        self, params: dict[str, Any], X: pd.DataFrame, y: pd.Series, eval_set: EvalSet | None
    ) -> tuple[xgb.Booster, int | None]:
        timeout = COLLECTIVE_TIMEOUT_SECONDS
        estimator = DaskXGBRegressor(
            **params, coll_cfg=Config(timeout=timeout, tracker_timeout=timeout)
        )
        estimator.client = self.client
        evals = None
        if eval_set is not None:
            evals = [self._collections(*eval_set)]
        estimator.fit(*self._collections(X, y), eval_set=evals, verbose=False)
        best = int(estimator.best_iteration) if eval_set is not None else None
        return estimator.get_booster(), best

    def _collections(self, X: pd.DataFrame | BlockFrame, y: pd.Series) -> tuple[Any, Any]:
        """Features and target as dask collections of the same partitions."""
        if not isinstance(X, BlockFrame):
            shares = max(1, len(self.client.scheduler_info()["workers"]))
            return self._spread(X, shares), self._spread(y, shares)
        bounds = np.cumsum([0, *X.lengths()])
        values = y.reset_index(drop=True)
        targets = [
            self.client.scatter(values.iloc[start:end].reset_index(drop=True), hash=False)
            for start, end in itertools.pairwise(bounds)
        ]
        features = dd.from_delayed(X.parts(), meta=X.meta(), verify_meta=False)
        target = dd.from_delayed(targets, meta=values.iloc[:0], verify_meta=False)
        return features, target

    def _spread(self, frame: pd.DataFrame | pd.Series, shares: int) -> Any:
        """The rows in `shares` partitions held by the workers (dask has no MultiIndex)."""
        collection = dd.from_pandas(frame.reset_index(drop=True), npartitions=shares)
        return self.client.persist(collection)
