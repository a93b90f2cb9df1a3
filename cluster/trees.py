"""The cross-sectional families' boosters trained data-parallel on the workers.

`xgboost.dask` splits the rows over the workers, each builds its histograms from its share
and the workers agree on every split through XGBoost's own allreduce; the result is an
ordinary `xgboost.Booster`, saved, registered and served like one fitted in-process. The
trees are not bit-identical to a single process's (the quantile sketches are merged from
the shares), so the validation metrics agree within a tolerance rather than exactly
(`tests/cluster/test_cluster_training.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask.dataframe as dd
import pandas as pd
import xgboost as xgb
from distributed import Client
from xgboost.collective import Config
from xgboost.dask import DaskXGBRegressor

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
        shares = max(1, len(self.client.scheduler_info()["workers"]))
        evals = None
        if eval_set is not None:
            evals = [(self._spread(eval_set[0], shares), self._spread(eval_set[1], shares))]
        estimator.fit(
            self._spread(X, shares), self._spread(y, shares), eval_set=evals, verbose=False
        )
        best = int(estimator.best_iteration) if eval_set is not None else None
        return estimator.get_booster(), best

    def _spread(self, frame: pd.DataFrame | pd.Series, shares: int) -> Any:
        """The rows in `shares` partitions held by the workers (dask has no MultiIndex)."""
        collection = dd.from_pandas(frame.reset_index(drop=True), npartitions=shares)
        return self.client.persist(collection)
