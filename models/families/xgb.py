"""XGBoost for the tabular families: defaults, importance and SHAP explanations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd
import xgboost as xgb

# Conservative on purpose: hourly rows overlap heavily (a 24 h label shares 23 hours with
# its neighbour), so the effective sample is far smaller than the row count.
TREE_DEFAULTS: dict[str, Any] = {
    "n_estimators": 150,
    "max_depth": 2,
    "learning_rate": 0.03,
    "subsample": 0.7,
    "colsample_bytree": 0.7,
    "min_child_weight": 20.0,
    "reg_lambda": 5.0,
    "tree_method": "hist",
    # One thread: on a shared 2-core machine a second XGBoost thread spins against other
    # work and was measured up to 40x slower; one thread gives the same model every time.
    "n_jobs": 1,
}


EvalSet = tuple[pd.DataFrame, pd.Series]


def tree_params(params: Mapping[str, Any], random_state: int) -> dict[str, Any]:
    return {**TREE_DEFAULTS, **params, "random_state": random_state}


class RegressorFitter(Protocol):
    """Fits an `XGBRegressor` of `params`: the booster, and the best round when `eval_set`
    stops the boosting early (else None). `fit_regressor` fits in this process; the cluster
    path passes one that trains data-parallel on its workers (`cluster.trees`)."""

    def __call__(
        self, params: dict[str, Any], X: pd.DataFrame, y: pd.Series, eval_set: EvalSet | None
    ) -> tuple[xgb.Booster, int | None]: ...


def fit_regressor(
    params: dict[str, Any], X: pd.DataFrame, y: pd.Series, eval_set: EvalSet | None
) -> tuple[xgb.Booster, int | None]:
    """`XGBRegressor(**params).fit` here, on one thread (`TREE_DEFAULTS`)."""
    estimator = xgb.XGBRegressor(**params)
    if eval_set is None:
        estimator.fit(X, y)
        return estimator.get_booster(), None
    estimator.fit(X, y, eval_set=[eval_set], verbose=False)
    return estimator.get_booster(), int(estimator.best_iteration)


def gain_importance(booster: xgb.Booster, feature_names: list[str]) -> pd.Series:
    gains = booster.get_score(importance_type="gain")
    return pd.Series({name: gains.get(name, 0.0) for name in feature_names}).sort_values(
        ascending=False
    )


def top_contributions(
    booster: xgb.Booster, X: pd.DataFrame, top: int, output: np.ndarray | None = None
) -> list[dict[str, float]]:
    """XGBoost's own SHAP values: the `top` features that moved each row's prediction most.

    For a multi-class model `output` picks, per row, the class whose contributions to report.
    """
    contributions = booster.predict(xgb.DMatrix(X), pred_contribs=True)
    if contributions.ndim == 3:
        rows = np.arange(len(X))
        chosen = output if output is not None else np.zeros(len(X), dtype=int)
        contributions = contributions[rows, chosen]
    values = contributions[:, :-1]  # the last column is the bias
    names = list(X.columns)
    explanations = []
    for row in values:
        order = np.argsort(-np.abs(row))[:top]
        explanations.append({names[i]: round(float(row[i]), 6) for i in order if row[i] != 0})
    return explanations
