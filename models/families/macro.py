"""Layer 1, macro: the market regime (bull / bear / sideways) of the coming `horizon` hours.

The naive forecast is uniform: one third each. Anything estimated from data must earn its
place against it, the recent past included: a rolling climatology of recent realised regimes
(`regime_climatology`) was worse than uniform on all three real data sets (regimes turn, and
90 days of them are a handful of independent windows), as was the training window's mix. The
climatology is computed in `features`, point-in-time, and reported beside the served output.

The trees see market-wide features that do not mark the era: returns scaled by volatility,
volatility relative to its own past, breadth, and dominance as changes and trailing z-scores,
never as levels (a dominance level identifies the year, not the regime). The climatology
enters the booster as its base margin instead of as a tree input, so the trees learn the
departure from it (p ~ climatology * exp(f(x))) rather than re-learning it from a slow-moving
column that would itself be an era marker.

Serving pools the model geometrically toward uniform, p ~ uniform^(1 - w) * model^w, with w
fitted on out-of-fold rows and kept only where the improvement holds (`models.shrinkage`): w
is the temperature of the whole model, climatology included, so a separate temperature
would be a second, overlapping parameter. The model's probabilities are first floored at the
add-one rate of the calibration rows, so no served probability is 0 or 1.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import xgboost as xgb

from models.families.base import ModelFamily
from models.families.outputs import TableOutput
from models.families.served import rows_at, rows_from
from models.families.xgb import gain_importance, top_contributions, tree_params
from models.features import (
    INDEX_WEIGHT_HOURS,
    MARKET_FEATURE_HOURS,
    MIN_COVERAGE,
    log_ratio,
    market_features,
)
from models.labels import REGIME_VOLATILITY_WINDOW, REGIMES, regime_labels
from models.layers import DEFAULT_HORIZONS
from models.metrics import (
    calibration_report,
    classification_report,
    expected_calibration_error,
)
from models.panel import MarketPanel, hours_of
from models.shrinkage import blend_distributions, fit_demonstrated_weight
from models.skill import REGIME_ORDER, horizon_blocks, log_losses, ranked_probability_scores

PROBABILITY_COLUMNS = tuple(f"p_{regime}" for regime in REGIMES)
CLIMATOLOGY_COLUMNS = tuple(f"climatology_{regime}" for regime in REGIMES)
MACRO_FEATURES: tuple[str, ...] = (
    "index_return_1h_scaled",
    "index_return_24h_scaled",
    "index_return_168h_scaled",
    "index_vol_ratio_24h_168h",
    "index_vol_168h_z",
    "breadth_positive_24h",
    "breadth_above_sma_168h",
    "btc_dominance_change_168h",
    "eth_dominance_change_168h",
    "btc_dominance_z",
    "eth_dominance_z",
    "index_drawdown_720h",
    "fear_greed",
)
N_REGIMES = len(REGIMES)
LOG_LOSS_UNIFORM = math.log(N_REGIMES)
MODEL_FILE = "model.json"
STATE_FILE = "state.json"

CLIMATOLOGY_HOURS = 90 * 24
# Trailing window of the z-scores that replace trending levels (volatility, dominance).
ZSCORE_HOURS = 720
VOLATILITY_SCALE_HOURS = 168
# Held out at the end of the training hours to stop boosting; a purge of `horizon` hours
# separates it from the inner training rows so that no two labels overlap.
EARLY_STOPPING_FRACTION = 0.2
# Both inner parts must span this many horizon windows, or there is no early stopping.
EARLY_STOPPING_MIN_WINDOWS = 5
# Out-of-fold rows spanning fewer independent windows than this cannot support a weight.
MIN_CALIBRATION_WINDOWS = 5
NON_TREE_PARAMS = ("climatology_hours", "early_stopping_rounds")
# A market-wide model has one row per hour, heavily overlapping: shallow, slow, regularised.
MACRO_TREE_DEFAULTS: dict[str, Any] = {
    "n_estimators": 300,
    "max_depth": 2,
    "learning_rate": 0.03,
    "min_child_weight": 50.0,
    "reg_lambda": 10.0,
    "subsample": 0.7,
    "colsample_bytree": 0.7,
    "objective": "multi:softprob",
    "eval_metric": "mlogloss",
}
# Rounds without improvement on the held-out block before boosting stops; 0 turns it off.
EARLY_STOPPING_ROUNDS = 30


def regime_climatology(
    labels: pd.Series, horizon: int, hours: int = CLIMATOLOGY_HOURS
) -> pd.DataFrame:
    """Add-one rates of the recent realised regimes, per hour; columns `CLIMATOLOGY_COLUMNS`.

    `labels` are regime codes on a complete hourly index (NaN where unknown). The label of
    row s is realised at s + horizon, so row t counts the labels of rows s <= t - horizon:
    the last `hours` of them, s in (t - horizon - hours, t - horizon]. Neighbouring rows
    share all but one hour of their window, so the counts are in independent windows
    (rows / horizon): with w_k windows of regime k among the w known,
    p_k = (w_k + 1) / (w + 3). Uniform with no evidence, never 0 or 1, and no more sure of
    itself than the handful of windows behind it allow (counting rows, 90 days of 168-hour
    labels would weigh as 2,160 observations instead of about 13, and the climatology
    was worse than uniform on the synthetic market).
    """
    realised = labels.shift(horizon)
    counts = (
        pd.DataFrame(
            {
                column: (realised == code).astype(float)
                for code, column in enumerate(CLIMATOLOGY_COLUMNS)
            },
            index=labels.index,
        )
        .rolling(hours, min_periods=1)
        .sum()
        / horizon
    )
    return (counts + 1).div(counts.sum(axis=1) + N_REGIMES, axis=0)


def macro_features(panel: MarketPanel) -> pd.DataFrame:
    """Market-wide features free of era markers; index timestamp, columns `MACRO_FEATURES`.

    Returns are in units of the index's trailing hourly volatility times sqrt(window), the
    scale of the regime band; volatility and dominance levels become trailing z-scores, and
    dominance also its 168-hour change. Breadth, drawdown and the fear & greed proxy are
    already bounded or standardised.
    """
    market = market_features(panel)
    scale = market["index_vol_168h"].where(market["index_vol_168h"] > 0)
    frame = pd.DataFrame(
        {
            "index_return_1h_scaled": market["index_return_1h"] / scale,
            "index_return_24h_scaled": market["index_return_24h"] / (scale * np.sqrt(24)),
            "index_return_168h_scaled": market["index_return_168h"]
            / (scale * np.sqrt(VOLATILITY_SCALE_HOURS)),
            "index_vol_ratio_24h_168h": log_ratio(market["index_vol_24h"], scale),
            "index_vol_168h_z": trailing_zscore(np.log(scale), ZSCORE_HOURS),
            "btc_dominance_z": trailing_zscore(market["btc_dominance"], ZSCORE_HOURS),
            "eth_dominance_z": trailing_zscore(market["eth_dominance"], ZSCORE_HOURS),
        },
        index=market.index,
    )
    for column in MACRO_FEATURES:
        if column not in frame:
            frame[column] = market[column]
    return frame[list(MACRO_FEATURES)]


def trailing_zscore(series: pd.Series, window: int) -> pd.Series:
    """(x - trailing mean) / trailing sd over the `window` hours ending at t.

    NaN below `MIN_COVERAGE` of the window or when the trailing sd is 0.
    """
    rolling = series.rolling(window, min_periods=max(2, math.ceil(MIN_COVERAGE * window)))
    sd = rolling.std()
    return (series - rolling.mean()) / sd.where(sd > 0)


class MacroRegimeFamily(ModelFamily):
    """Shallow XGBoost on the departure from a rolling climatology, shrunk toward it."""

    name: ClassVar[str] = "macro_regime"
    model_type: ClassVar[str] = "macro"
    layer: ClassVar[int] = 1
    primary_metric: ClassVar[str] = "log_loss"
    layer_name: ClassVar[str] = "macro"
    default_horizon: ClassVar[int] = DEFAULT_HORIZONS["macro"]
    outputs: ClassVar[tuple[TableOutput, ...]] = (TableOutput("market_regime_analysis"),)
    quick_horizon: ClassVar[int | None] = 48
    quick_params: ClassVar[dict[str, Any]] = {"n_estimators": 40}
    # Its base margin and the reference its calibration is judged against.
    serving_columns: ClassVar[tuple[str, ...] | None] = CLIMATOLOGY_COLUMNS

    @property
    def climatology_hours(self) -> int:
        return int(self.params.get("climatology_hours", CLIMATOLOGY_HOURS))

    @property
    def history_hours(self) -> int:
        # The climatology counts labels realised by the hour, each of `horizon` hours judged
        # against its trailing volatility.
        climatology = self.climatology_hours + self.horizon + REGIME_VOLATILITY_WINDOW
        return max(climatology + INDEX_WEIGHT_HOURS, MARKET_FEATURE_HOURS)

    # ---- data
    def features(self, panel: MarketPanel, since: pd.Timestamp | None = None) -> pd.DataFrame:
        climatology = regime_climatology(
            regime_labels(panel, self.horizon), self.horizon, self.climatology_hours
        )
        return rows_from(pd.concat([macro_features(panel), climatology], axis=1), since)

    def labels(self, panel: MarketPanel) -> pd.DataFrame:
        return regime_labels(panel, self.horizon).to_frame("regime")

    def baseline(self, X: pd.DataFrame) -> pd.DataFrame:
        """Uniform: a third each, whatever the market did."""
        uniform = np.full((len(X), N_REGIMES), 1 / N_REGIMES)
        return pd.DataFrame(uniform, index=X.index, columns=list(PROBABILITY_COLUMNS))

    # ---- learning
    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> Self:
        codes = y["regime"].to_numpy(dtype=int)
        # XGBoost wants classes 0..k-1; a window without, say, a bear spell has fewer.
        self.classes_ = np.unique(codes)
        self.feature_names_ = [column for column in X.columns if column not in CLIMATOLOGY_COLUMNS]
        self.booster_: xgb.Booster | None = None
        self.n_trees_ = 0
        if len(self.classes_) > 1:
            self.booster_ = self._fit_booster(X, np.searchsorted(self.classes_, codes))
        return self

    def _fit_booster(self, X: pd.DataFrame, encoded: np.ndarray) -> xgb.Booster:
        """Early stopping on a purged inner block picks the tree count; then refit on all."""
        params = tree_params({**MACRO_TREE_DEFAULTS, **_tree_only(self.params)}, self.random_state)
        # Softprob with the base margin even for two classes (XGBoost would go binary).
        params["num_class"] = len(self.classes_)
        margin = self._margin(X)
        rounds = int(self.params.get("early_stopping_rounds", EARLY_STOPPING_ROUNDS))
        inner = self._inner_split(pd.DatetimeIndex(X.index), encoded) if rounds > 0 else None
        if inner is not None:
            train, held = inner
            stopper = xgb.XGBClassifier(**params, early_stopping_rounds=rounds)
            stopper.fit(
                X.loc[train, self.feature_names_],
                encoded[train],
                base_margin=margin[train],
                eval_set=[(X.loc[held, self.feature_names_], encoded[held])],
                base_margin_eval_set=[margin[held]],
                verbose=False,
            )
            params["n_estimators"] = int(stopper.best_iteration) + 1
        self.n_trees_ = int(params["n_estimators"])
        estimator = xgb.XGBClassifier(**params)
        estimator.fit(X[self.feature_names_], encoded, base_margin=margin, verbose=False)
        return estimator.get_booster()

    def _inner_split(
        self, hours: pd.DatetimeIndex, encoded: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Masks of the inner training rows and the last ~20 % of hours, purged between.

        None when either part spans too few horizon windows or the inner training rows
        lack a class (XGBoost needs them all).
        """
        start, end = hours.min(), hours.max()
        cut = end - (end - start) * EARLY_STOPPING_FRACTION
        gap = pd.Timedelta(hours=self.horizon)
        held = np.asarray(hours >= cut)
        train = np.asarray(hours < cut - gap)
        least = gap * EARLY_STOPPING_MIN_WINDOWS
        if not train.any() or not held.any():
            return None
        if hours[train].max() - start < least or end - hours[held].min() < least:
            return None
        if len(np.unique(encoded[train])) < len(self.classes_):
            return None
        return train, held

    def _margin(self, X: pd.DataFrame) -> np.ndarray:
        """Log climatology of the classes the booster knows: its starting point per row."""
        return np.log(_climatology(X)[:, self.classes_])

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """The prior tilted by the trees; a class absent from training keeps its prior."""
        prior = _climatology(X)
        absent = np.setdiff1d(np.arange(N_REGIMES), self.classes_)
        present = np.ones((len(X), len(self.classes_)))
        if self.booster_ is not None:
            matrix = xgb.DMatrix(X[self.feature_names_], base_margin=self._margin(X))
            present = self.booster_.predict(matrix).astype(float).reshape(len(X), -1)
            present /= present.sum(axis=1, keepdims=True)
        probabilities = prior.copy()
        probabilities[:, self.classes_] = present * (1 - prior[:, absent].sum(axis=1))[:, None]
        return pd.DataFrame(probabilities, index=X.index, columns=list(PROBABILITY_COLUMNS))

    # ---- serving
    def calibrate(self, X: pd.DataFrame, raw: pd.DataFrame, y: pd.DataFrame) -> Self:
        """Floor the model at the add-one rate of these rows; fit the pool weight on them."""
        self.floor_ = 1.0 / (len(X) + N_REGIMES)
        codes = y["regime"].to_numpy(dtype=int)
        prior, model = self.baseline(X).to_numpy(), self._floored(raw)
        blocks = horizon_blocks(hours_of(y.index), self.horizon)
        if len(np.unique(blocks)) < MIN_CALIBRATION_WINDOWS:
            self.shrink_weight_ = 0.0
            return self
        self.shrink_weight_ = fit_demonstrated_weight(
            lambda weight: log_losses(blend_distributions(prior, model, weight), codes), blocks
        )
        return self

    def serve(self, X: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
        """Uniform pooled toward the floored model by `shrink_weight`; the climatology beside."""
        prior = self.baseline(X).to_numpy()
        weight = self.shrink_weight
        served = prior if weight == 0 else blend_distributions(prior, self._floored(raw), weight)
        frame = pd.DataFrame(served, index=X.index, columns=list(PROBABILITY_COLUMNS))
        frame["regime"] = np.asarray(REGIMES)[served.argmax(axis=1)]
        frame["confidence"] = served.max(axis=1)
        frame[list(CLIMATOLOGY_COLUMNS)] = _climatology(X)
        return frame

    def _floored(self, raw: pd.DataFrame) -> np.ndarray:
        """floor + (1 - 3 floor) * p: every class keeps at least the add-one rate."""
        floor = float(getattr(self, "floor_", 0.0))
        return floor + (1 - N_REGIMES * floor) * raw[list(PROBABILITY_COLUMNS)].to_numpy(float)

    # ---- metrics
    def losses(self, y: pd.DataFrame, predictions: pd.DataFrame) -> np.ndarray:
        """Log loss per row."""
        return log_losses(_probabilities(predictions), y["regime"].to_numpy(dtype=int))

    def score(self, y: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, Any]:
        """Log loss (primary), its skill over uniform, RPS, Brier, hit rates and top-class ECE.

        `independent_windows` counts the non-overlapping horizon blocks the rows span: the
        evidence behind every number here is that many windows, not that many rows.
        """
        probabilities = _probabilities(predictions)
        codes = y["regime"].to_numpy(dtype=int)
        report: dict[str, Any] = classification_report(probabilities, codes, REGIMES)
        log_loss = float(np.mean(log_losses(probabilities, codes)))
        top = probabilities.argmax(axis=1)
        climatology = {}
        if set(CLIMATOLOGY_COLUMNS) <= set(predictions.columns):
            reference = predictions[list(CLIMATOLOGY_COLUMNS)].to_numpy(float)
            climatology_loss = float(np.mean(log_losses(reference, codes)))
            climatology = {
                "log_loss_climatology": climatology_loss,
                "log_loss_skill_vs_climatology": 1 - log_loss / climatology_loss,
            }
        return {
            **report,
            "log_loss": log_loss,
            "log_loss_uniform": LOG_LOSS_UNIFORM,
            "log_loss_skill_vs_uniform": 1 - log_loss / LOG_LOSS_UNIFORM,
            **climatology,
            "rps": float(np.mean(ranked_probability_scores(probabilities, codes, REGIME_ORDER))),
            "ece": expected_calibration_error(probabilities.max(axis=1), top == codes),
            "n_samples": len(codes),
            "independent_windows": len(np.unique(horizon_blocks(hours_of(y.index), self.horizon))),
        }

    def calibration_report(
        self, X: pd.DataFrame, served: pd.DataFrame, y: pd.DataFrame
    ) -> dict[str, Any]:
        """Reliability of the top-class confidence: P(the served regime is the real one).

        The reference is the climatology's probability of that same class on each row, so
        `brier_skill` says whether the confidence beats what the recent past would say.
        """
        probabilities = _probabilities(served)
        top = probabilities.argmax(axis=1)
        hit = (top == y["regime"].to_numpy(dtype=int)).astype(float)
        reference = _climatology(X)[np.arange(len(X)), top]
        report = calibration_report(probabilities.max(axis=1), hit, reference_rate=reference)
        return {**report, "shrink_weight": self.shrink_weight}

    # ---- serving at one hour
    def serve_at(self, panel: MarketPanel, as_of: pd.Timestamp) -> pd.DataFrame:
        """The market's regime at `as_of`: the most probable one, its probability (the
        confidence), each regime's, and the features that moved them most."""
        X = rows_at(self.features(panel, as_of), as_of)
        served = self.predict_calibrated(X)
        frame = served[["regime", "confidence", *PROBABILITY_COLUMNS]].astype(
            {column: float for column in ("confidence", *PROBABILITY_COLUMNS)}
        )
        frame["explanation"] = self.explain(X)
        return frame

    @classmethod
    def context(cls, served: pd.DataFrame | None, sector: str | None) -> dict[str, Any]:
        """The regime of the hour, as `serve_at` gives it (None without an active version)."""
        if served is None or served.empty:
            return {"regime": None}
        row = served.iloc[0]
        regime = {"regime": row["regime"], "confidence": float(row["confidence"])}
        regime.update({column: float(row[column]) for column in PROBABILITY_COLUMNS})
        return {"regime": {**regime, "explanation": row["explanation"]}}

    # ---- explanations
    def feature_importance(self) -> pd.Series:
        if self.booster_ is None:
            return pd.Series(0.0, index=self.feature_names_)
        return gain_importance(self.booster_, self.feature_names_)

    def explain(self, X: pd.DataFrame, top: int = 5) -> list[dict[str, float]]:
        """SHAP values toward each row's most probable raw class (the prior is the bias)."""
        if self.booster_ is None:
            return [{} for _ in range(len(X))]
        chosen = self.predict(X).to_numpy()[:, self.classes_].argmax(axis=1)
        return top_contributions(self.booster_, X[self.feature_names_], top, chosen)

    # ---- persistence
    def _save_state(self, directory: Path) -> None:
        if self.booster_ is not None:
            self.booster_.save_model(directory / MODEL_FILE)
        state: dict[str, Any] = {
            "classes": [int(code) for code in self.classes_],
            "feature_names": self.feature_names_,
            "n_trees": getattr(self, "n_trees_", 0),
        }
        if hasattr(self, "shrink_weight_"):
            state |= {"shrink_weight": self.shrink_weight_, "floor": self.floor_}
        (directory / STATE_FILE).write_text(json.dumps(state))

    def _load_state(self, directory: Path) -> None:
        state = json.loads((directory / STATE_FILE).read_text())
        self.classes_ = np.asarray(state["classes"], dtype=int)
        self.feature_names_ = list(state["feature_names"])
        self.n_trees_ = int(state["n_trees"])
        if "shrink_weight" in state:
            self.shrink_weight_ = float(state["shrink_weight"])
            self.floor_ = float(state["floor"])
        self.booster_ = None
        if (directory / MODEL_FILE).exists():
            self.booster_ = xgb.Booster()
            self.booster_.load_model(directory / MODEL_FILE)


def _tree_only(params: Any) -> dict[str, Any]:
    return {key: value for key, value in params.items() if key not in NON_TREE_PARAMS}


def _climatology(X: pd.DataFrame) -> np.ndarray:
    return X[list(CLIMATOLOGY_COLUMNS)].to_numpy(float)


def _probabilities(predictions: pd.DataFrame) -> np.ndarray:
    return predictions[list(PROBABILITY_COLUMNS)].to_numpy(float)
