"""Cross-sectional tree families: which entities (coins, sectors) beat the others next.

Most of a coin's move is the market's, and a model fitted on one bull run learns its drift.
These families therefore forecast only the cross-sectional part. Features are ranked across
the entities of each hour (`xs_*` columns, see `models.features.cross_sectional_ranks`); the
target is the entity's forward log return minus that hour's mean over entities; the market
part is persistence (0). XGBoost fits the target with a pseudo-Huber loss (fat tails), a
base score of 0 and early stopping on a purged inner block.

Served outputs, from the transform `calibrate` fits on out-of-fold rows:
- `rank_score`: the ordering of entities, from the model or, where a named candidate
  (a one-line factor) ranked the earlier rows better, from that candidate;
- the forecast itself: `rank_score` scaled to returns and shrunk toward persistence by a
  weight fitted on the same rows, so it is never worse than persistence there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np
import pandas as pd
import xgboost as xgb

from models.families.base import ModelFamily
from models.families.xgb import (
    RegressorFitter,
    fit_regressor,
    gain_importance,
    top_contributions,
    tree_params,
)
from models.features import cross_sectional_ranks
from models.metrics import regression_report
from models.shrinkage import blend_values, fit_demonstrated_weight
from models.skill import (
    DOES_NOT_BEAT_FACTOR,
    absolute_errors,
    compare_rankings,
    cross_sectional_rank_ic,
    horizon_blocks,
    quintile_spread,
    rank_ic_summary,
)
from models.splits import purged_holdout

MODEL_FILE = "model.json"
STATE_FILE = "state.joblib"
RANKED_PREFIX = "xs_"
MODEL_RANKER = "model"
# The last fifth of the training hours (after a purge of one horizon) stops the boosting.
EARLY_STOPPING_SHARE = 0.2
EARLY_STOPPING_ROUNDS = 30
MIN_EARLY_STOPPING_HOURS = 48
CROSS_SECTION_DEFAULTS: dict[str, Any] = {
    "objective": "reg:pseudohubererror",
    "base_score": 0.0,
    "n_estimators": 300,
    "max_depth": 3,
    "learning_rate": 0.05,
    "min_child_weight": 200.0,
}


def demeaned_by_hour(values: pd.Series) -> pd.Series:
    """Each value minus the mean of its hour: the part of a return that is not the market's."""
    return values - values.groupby(level="timestamp").transform("mean")


def robust_scale(values: pd.Series) -> float:
    """1.4826 * median absolute deviation: the sd of the normal core of fat-tailed returns."""
    deviation = (values - values.median()).abs().median()
    return float(1.4826 * deviation) if deviation > 0 else float(values.std() or 1.0)


@dataclass
class CrossSectionalFamily(ModelFamily):
    """One XGBoost regressor on ranked features; subclasses give data, outputs and candidates.

    `target` is the label column (a forward log return); `output` the served forecast
    column. `candidates(X)` are named alternative rankings the served ranking may fall
    back to (none by default). `fitter` is where the regressor fits (here, by default); it
    is not a hyperparameter, and a loaded family fits here.
    """

    fitter: RegressorFitter = field(default=fit_regressor, compare=False, repr=False)

    target: ClassVar[str]
    output: ClassVar[str]
    primary_metric: ClassVar[str] = "mae"
    non_tree_params: ClassVar[tuple[str, ...]] = ()

    # ---- learning
    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> Self:
        self.feature_names_ = [c for c in X.columns if c.startswith(RANKED_PREFIX)]
        target = demeaned_by_hour(y[self.target])
        tree = {k: v for k, v in self.params.items() if k not in self.non_tree_params}
        settings = {**CROSS_SECTION_DEFAULTS, "huber_slope": robust_scale(target), **tree}
        fit_rows, stop_rows = self._early_stopping_split(X)
        if stop_rows is None:
            settings.pop("early_stopping_rounds", None)
            booster, best = self.fitter(
                tree_params(settings, self.random_state), X[self.feature_names_], target, None
            )
        else:
            settings.setdefault("early_stopping_rounds", EARLY_STOPPING_ROUNDS)
            booster, best = self.fitter(
                tree_params(settings, self.random_state),
                X.loc[fit_rows, self.feature_names_],
                target.loc[fit_rows],
                (X.loc[stop_rows, self.feature_names_], target.loc[stop_rows]),
            )
        if best is not None:
            # Boosting ran on past the best round to be sure of it; keep the trees up to it.
            booster = booster[: best + 1]
        self.booster_ = booster
        self.trees_ = booster.num_boosted_rounds()
        return self

    def _early_stopping_split(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows to fit and rows to stop on: the last hours, a purge of one horizon between."""
        hours = X.index.get_level_values("timestamp")
        fit_rows, stop_rows = purged_holdout(hours, EARLY_STOPPING_SHARE, self.horizon)
        too_short = hours[stop_rows].nunique() < MIN_EARLY_STOPPING_HOURS
        if too_short or not fit_rows.any():
            return np.ones(len(X), dtype=bool), None
        return fit_rows, stop_rows

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """The cross-sectional part of the forward log return (raw, not shrunk)."""
        values = self.booster_.inplace_predict(X[self.feature_names_])
        return pd.DataFrame({self.output: values}, index=X.index)

    def baseline(self, X: pd.DataFrame) -> pd.DataFrame:
        """Persistence: every entity stays where it is (a log return of 0)."""
        return pd.DataFrame({self.output: np.zeros(len(X))}, index=X.index)

    # ---- serving transform
    def candidates(self, X: pd.DataFrame) -> pd.DataFrame:
        """Named alternative rankings (higher = expected to do better), one column each."""
        return pd.DataFrame(index=X.index)

    def calibrate(self, X: pd.DataFrame, raw: pd.DataFrame, y: pd.DataFrame) -> Self:
        """Choose the ranking, scale it to returns, fit the shrinkage weight; on OOF rows.

        The rankings on offer are the model's, each candidate's, and the model averaged
        with the best candidate: two rankings that are each right in part are often more
        right together, and less exposed to the period one of them happened to suit.
        """
        actual = y[self.target]
        self.best_candidate_ = None
        candidates = self.candidates(X)
        self.ranking_ics_ = {
            name: _mean_rank_ic(scores, actual) for name, scores in candidates.items()
        }
        known = {name: ic for name, ic in self.ranking_ics_.items() if ic is not None}
        if known:
            self.best_candidate_ = max(known, key=lambda name: known[name])
        rankings = self._rankings(X, raw)
        for name in [name for name in rankings if name not in candidates]:
            self.ranking_ics_[name] = _mean_rank_ic(rankings[name], actual)
        usable = {name: ic for name, ic in self.ranking_ics_.items() if ic is not None}
        self.ranker_ = max(usable, key=lambda name: usable[name]) if usable else MODEL_RANKER
        ranking = rankings[self.ranker_]
        self.return_scale_ = _least_squares_slope(ranking, demeaned_by_hour(actual))
        forecast = self.return_scale_ * ranking.fillna(0.0).to_numpy()
        truth = actual.to_numpy()
        self.shrink_weight_ = fit_demonstrated_weight(
            lambda w: absolute_errors(blend_values(0.0, forecast, w), truth),
            horizon_blocks(X.index.get_level_values("timestamp"), self.horizon),
        )
        return self

    def serve(self, X: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
        served = self.baseline(X)
        ranker = getattr(self, "ranker_", None)
        if ranker is None:
            served["rank_score"] = 0.0
            return served
        ranking = self._rankings(X, raw)[ranker].fillna(0.0)
        served[self.output] = blend_values(
            0.0, self.return_scale_ * ranking.to_numpy(), self.shrink_weight
        )
        served["rank_score"] = ranking.to_numpy()
        if self.best_candidate_ is not None:
            served["candidate_score"] = self.candidates(X)[self.best_candidate_]
        return served

    def _rankings(self, X: pd.DataFrame, raw: pd.DataFrame) -> dict[str, pd.Series]:
        """The model's ranking, the candidates', and the model averaged with the best one."""
        model = raw[self.output]
        rankings = {MODEL_RANKER: model, **dict(self.candidates(X).items())}
        best = getattr(self, "best_candidate_", None)
        if best is not None:
            ranks = cross_sectional_ranks(pd.DataFrame({"model": model, "best": rankings[best]}))
            rankings[f"{MODEL_RANKER}+{best}"] = ranks.mean(axis=1, skipna=False)
        return rankings

    # ---- scoring
    def losses(self, y: pd.DataFrame, predictions: pd.DataFrame) -> np.ndarray:
        return absolute_errors(predictions[self.output], y[self.target])

    def score(self, y: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, Any]:
        """Errors of the forecast; rank IC and quintile spread of the ranking it implies."""
        predicted, actual = predictions[self.output], y[self.target]
        report = regression_report(predicted.to_numpy(), actual.to_numpy())
        scores: dict[str, Any] = {key: value for key, value in report.items() if value is not None}
        scores["up_share"] = float(np.mean(actual.to_numpy() > 0))
        scores["predicted_up_share"] = float(np.mean(predicted.to_numpy() > 0))
        ranking = predictions.get("rank_score", predicted)
        scores.update(rank_ic_summary(cross_sectional_rank_ic(ranking, actual), self.horizon))
        scores.update(quintile_spread(ranking, actual, self.horizon))
        if "candidate_score" in predictions:
            scores["factor"] = self._factor_comparison(actual, predictions)
        return scores

    def _factor_comparison(self, actual: pd.Series, predictions: pd.DataFrame) -> dict[str, Any]:
        """The served ranking beside the best candidate (one-line factor) chosen out of fold."""
        comparison = compare_rankings(
            predictions["rank_score"], predictions["candidate_score"], actual, self.horizon
        )
        if not comparison["beats_factor"]:
            comparison["flag"] = DOES_NOT_BEAT_FACTOR
        return comparison

    # ---- explanations and persistence
    def feature_importance(self) -> pd.Series:
        return gain_importance(self.booster_, self.feature_names_)

    def explain(self, X: pd.DataFrame, top: int = 5) -> list[dict[str, float]]:
        return top_contributions(self.booster_, X[self.feature_names_], top)

    def _serving_state(self) -> dict[str, Any]:
        names = ("ranker_", "best_candidate_", "return_scale_", "shrink_weight_", "ranking_ics_")
        return {name: getattr(self, name) for name in names if hasattr(self, name)}

    def _save_state(self, directory: Path) -> None:
        self.booster_.save_model(directory / MODEL_FILE)
        state = {"feature_names": self.feature_names_, "trees": self.trees_}
        joblib.dump({**state, "serving": self._serving_state()}, directory / STATE_FILE)

    def _load_state(self, directory: Path) -> None:
        state = joblib.load(directory / STATE_FILE)
        self.feature_names_ = state["feature_names"]
        self.trees_ = state["trees"]
        for name, value in state["serving"].items():
            setattr(self, name, value)
        self.booster_ = xgb.Booster()
        self.booster_.load_model(directory / MODEL_FILE)


def _least_squares_slope(ranking: pd.Series, target: pd.Series) -> float:
    """The return per unit of ranking score, through the origin; 0 if it points the wrong way."""
    frame = pd.DataFrame({"x": ranking, "y": target}).dropna()
    denominator = float((frame["x"] ** 2).sum())
    if denominator == 0.0:
        return 0.0
    return max(0.0, float((frame["x"] * frame["y"]).sum()) / denominator)


def _mean_rank_ic(scores: pd.Series, outcomes: pd.Series) -> float | None:
    """Mean per-hour cross-sectional rank IC; None where no hour has one."""
    value = float(cross_sectional_rank_ic(scores, outcomes).mean())
    return value if np.isfinite(value) else None
