"""Layer 4, timing: does a long (or short) entry now reach its target before its stop?

Labels are triple-barrier outcomes: target and stop are ATR multiples from the entry, the
horizon is the time barrier.

The baseline is the rolling base rate of each side: at hour t, the add-one rate of the hits
of all coins' entries whose outcome was known by t (entry hour s with s + horizon <= t) over
the last `base_rate_hours` entry hours. It is a feature column, so it is the same number in
validation and in serving, and it is the prior the model departs from: both estimators get
its logit as an offset and learn only the departure, and what is served is

    logit(served) = logit(base rate) + w * (logit(calibrated model) - logit(base rate))

with w fitted out of fold (`calibrate`); w = 0 serves the base rate itself.

Two estimators, chosen out of fold when `estimator` is "auto": a small GRU
(`models.sequence.SequenceClassifier`) over the last `lookback` hours of each coin's features,
and gradient-boosted trees (one XGBoost classifier per side) on the last hour's features.
Each row carries its whole window as lag columns, so the family keeps the tabular contract of
the others and no window reaches past its own hour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np
import pandas as pd
import xgboost as xgb

from models.calibration import MIN_CALIBRATION_ROWS, ProbabilityCalibrator
from models.families.base import ModelFamily
from models.families.outputs import TableOutput
from models.families.served import RISK_LEVELS, atr_levels, rows_at, rows_from
from models.families.xgb import gain_importance, tree_params
from models.features import (
    COIN_FEATURES,
    EMA_SETTLE_HOURS,
    INDEX_WEIGHT_HOURS,
    average_true_range,
    coin_features,
    stack_wide,
)
from models.labels import BarrierSpec, triple_barrier_labels
from models.layers import DEFAULT_HORIZONS
from models.metrics import brier_score, calibration_report, expected_calibration_error
from models.panel import MarketPanel
from models.sequence import SequenceClassifier, make_sequences
from models.shrinkage import blend_probabilities, fit_demonstrated_weight, logit
from models.skill import binary_auc, brier_losses, horizon_blocks
from models.splits import purged_holdout

SIDES = ("long", "short")
PROBABILITY_COLUMNS = ("p_long", "p_short")
BASE_RATE_COLUMNS = ("base_rate_long", "base_rate_short")
ESTIMATORS = ("gru", "trees", "auto")
WEIGHTS_FILE = "sequence.pt"
STATE_FILE = "state.joblib"
HOUR = pd.Timedelta(hours=1)

DEFAULTS: dict[str, Any] = {
    "target_atr": 2.0,
    "stop_atr": 1.0,
    "lookback": 24,
    "base_rate_hours": 720,
    # One side of a trade; a round trip pays it twice, on the entry price.
    "fee": 0.001,
    "estimator": "auto",
    # The GRU trains on every `stride`-th hour of each coin (staggered across coins), and on
    # at most `max_sequence_rows` windows: neighbouring hours overlap almost entirely.
    "stride": 3,
    "max_sequence_rows": 40_000,
    # The trees on every `tree_stride`-th hour of each coin: half the time, hardly less data.
    "tree_stride": 2,
    # "auto" compares the estimators on this last share of the training hours.
    "inner_fraction": 0.2,
}
SEQUENCE_DEFAULTS: dict[str, Any] = {"hidden_size": 16, "max_epochs": 8, "patience": 2}


def lag_columns(lookback: int) -> list[str]:
    """Window columns, oldest hour first and every feature within an hour: reshapes to
    (rows, lookback, features)."""
    return [f"{name}_lag{lag}" for lag in range(lookback - 1, -1, -1) for name in COIN_FEATURES]


TREE_COLUMNS: tuple[str, ...] = tuple(f"{name}_lag0" for name in COIN_FEATURES)


def rolling_base_rates(
    labels: pd.DataFrame, hours: pd.Index, horizon: int, window: int
) -> pd.DataFrame:
    """Per hour t, the add-one hit rate of each side over the entries known by t.

    Entries s with s + horizon <= t and s > t - horizon - window, pooled over all coins:
    (hits + 1) / (entries + 2), so 1/2 before any outcome is known and never 0 or 1. `hours`
    is the panel's complete hourly index; `labels` the triple-barrier frame.
    """
    by_hour = labels[["long_hit", "short_hit"]].groupby(level="timestamp")
    hits, counts = by_hour.sum().reindex(hours, fill_value=0.0), by_hour.count()
    counts = counts.reindex(hours, fill_value=0).astype(float)
    known_hits = hits.rolling(window, min_periods=1).sum().shift(horizon).fillna(0.0)
    known_counts = counts.rolling(window, min_periods=1).sum().shift(horizon).fillna(0.0)
    rates = (known_hits + 1.0) / (known_counts + 2.0)  # `add_one_rate`, hour by hour
    return rates.set_axis(list(BASE_RATE_COLUMNS), axis=1)


def staggered_rows(index: pd.Index, stride: int) -> np.ndarray:
    """Positions of every `stride`-th hour of each coin, the coins' offsets staggered.

    Row (t, coin) is kept when (hours since the first t + the coin's code) % stride == 0, so
    every coin keeps a 1/stride share of its hours and the hours kept differ between coins.
    Positions stay in the order of `index` (time order when it is sorted by time).
    """
    if stride <= 1:
        return np.arange(len(index))
    timestamps = pd.DatetimeIndex(index.get_level_values("timestamp"))
    hours = np.asarray((timestamps - timestamps.min()) // HOUR, dtype=np.int64)
    codes, _ = pd.factorize(index.get_level_values("symbol"), sort=True)
    return np.flatnonzero((hours + codes) % stride == 0)


class TradeTimingFamily(ModelFamily):
    """Rolling base rate per side, departed from by a GRU or trees, shrunk out of fold."""

    name: ClassVar[str] = "trade_timing"
    model_type: ClassVar[str] = "timing"
    layer: ClassVar[int] = 4
    primary_metric: ClassVar[str] = "brier"
    layer_name: ClassVar[str] = "timing"
    default_horizon: ClassVar[int] = DEFAULT_HORIZONS["timing"]
    upstream: ClassVar[tuple[str, ...]] = ("macro",)
    outputs: ClassVar[tuple[TableOutput, ...]] = (TableOutput("trading_signals"),)
    quick_horizon: ClassVar[int | None] = 12
    quick_params: ClassVar[dict[str, Any]] = {
        "lookback": 12,
        "stride": 4,
        "sequence": {"max_epochs": 3},
    }
    empty_reason: ClassVar[str] = "no coin has a side with a positive expected return after fees"
    # Its baseline and the prior its serving shrinks toward.
    serving_columns: ClassVar[tuple[str, ...] | None] = BASE_RATE_COLUMNS

    # Fitted state: the estimator kept ("gru" or "trees") and its model.
    estimator_: str
    sequence_: SequenceClassifier | None
    boosters_: dict[str, xgb.Booster]

    def param(self, name: str) -> Any:
        return self.params.get(name, DEFAULTS[name])

    @property
    def barrier(self) -> BarrierSpec:
        return BarrierSpec(
            horizon=self.horizon,
            target_atr=float(self.param("target_atr")),
            stop_atr=float(self.param("stop_atr")),
        )

    @property
    def lookback(self) -> int:
        return int(self.param("lookback"))

    @property
    def history_hours(self) -> int:
        # The base rates count barrier outcomes realised by the hour; the lag window's oldest
        # hour carries exponential averages.
        base_rates = int(self.param("base_rate_hours")) + self.horizon
        return base_rates + self.lookback + EMA_SETTLE_HOURS + INDEX_WEIGHT_HOURS

    # ---- data
    def features(self, panel: MarketPanel, since: pd.Timestamp | None = None) -> pd.DataFrame:
        """Base rates of both sides, then the last `lookback` hours of the coin's features.

        From `since` on, the windows are cut from the coin features of the hours they cover
        only: the lag matrix, the widest frame of all the families, is built for the hours
        asked for and not for the warm-up before them.
        """
        first = None if since is None else since - (self.lookback - 1) * HOUR
        windows, index = make_sequences(rows_from(coin_features(panel), first), self.lookback)
        frame = pd.DataFrame(
            windows.reshape(len(windows), -1), index=index, columns=lag_columns(self.lookback)
        )
        rates = rolling_base_rates(
            triple_barrier_labels(panel, self.barrier),
            panel.hours,
            self.horizon,
            int(self.param("base_rate_hours")),
        )
        hourly = rates.reindex(index.get_level_values("timestamp")).to_numpy()
        for position, column in enumerate(BASE_RATE_COLUMNS):
            frame.insert(position, column, hourly[:, position])
        return frame

    def labels(self, panel: MarketPanel) -> pd.DataFrame:
        """Triple-barrier outcomes, with the entry's ATR relative to its price (for fees)."""
        labels = triple_barrier_labels(panel, self.barrier)
        close = stack_wide({"close": panel.close}, "symbol")["close"]
        labels["atr_rel"] = labels["atr"] / close.reindex(labels.index)
        return labels

    def _prior_logits(self, X: pd.DataFrame) -> np.ndarray:
        return logit(X[list(BASE_RATE_COLUMNS)].to_numpy(dtype=np.float64))

    def _windows(self, X: pd.DataFrame) -> np.ndarray:
        values = X[lag_columns(self.lookback)].to_numpy(dtype=np.float32)
        return values.reshape(len(X), self.lookback, len(COIN_FEATURES))

    # ---- learning
    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> Self:
        """Fit the chosen estimator on all rows; with "auto", choose it on an inner hold-out.

        "auto" fits both on the training hours before the last `inner_fraction` (less a
        `horizon` gap, so no inner training label overlaps the held-out ones), keeps the one
        with the lower Brier on the held-out hours and refits it on all rows: the latest hours
        are the most informative, and the refit costs one more fit of the winner only.
        """
        choice = str(self.param("estimator"))
        if choice not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {choice!r}")
        self.inner_briers_: dict[str, float] = {}
        if choice == "auto":
            self.inner_briers_ = self._compare_estimators(X, y)
            choice = min(self.inner_briers_, key=lambda name: self.inner_briers_[name])
        self.estimator_ = choice
        self.sequence_, self.boosters_ = None, {}  # nothing left over from the comparison
        self._fit_estimator(choice, X, y)
        return self

    def _compare_estimators(self, X: pd.DataFrame, y: pd.DataFrame) -> dict[str, float]:
        inner_rows, held_rows = purged_holdout(
            X.index.get_level_values("timestamp"), float(self.param("inner_fraction")), self.horizon
        )
        inner, held = np.flatnonzero(inner_rows), np.flatnonzero(held_rows)
        if len(inner) < 2 or len(held) == 0:
            raise ValueError("too few training hours to compare the estimators")
        briers = {}
        for name in ("gru", "trees"):
            self._fit_estimator(name, X.iloc[inner], y.iloc[inner])
            predicted = self._predict_with(name, X.iloc[held])
            briers[name] = self._brier(y.iloc[held], predicted)
        return briers

    def _fit_estimator(self, name: str, X: pd.DataFrame, y: pd.DataFrame) -> None:
        hits = y[["long_hit", "short_hit"]].to_numpy(dtype=np.float32)
        if name == "trees":
            rows = staggered_rows(X.index, int(self.param("tree_stride")))
            self.boosters_ = self._fit_trees(X.iloc[rows], hits[rows])
            return
        stride = max(
            int(self.param("stride")), math.ceil(len(X) / int(self.param("max_sequence_rows")))
        )
        rows = staggered_rows(X.index, stride)
        sample = X.iloc[rows]
        settings = {**SEQUENCE_DEFAULTS, **self.params.get("sequence", {})}
        sequence = SequenceClassifier(random_state=self.random_state, **settings)
        self.sequence_ = sequence.fit(
            self._windows(sample), hits[rows], offset=self._prior_logits(sample)
        )

    def _fit_trees(self, X: pd.DataFrame, hits: np.ndarray) -> dict[str, xgb.Booster]:
        settings = tree_params(self.params.get("trees", {}), self.random_state)
        features, prior = X[list(TREE_COLUMNS)], self._prior_logits(X)
        boosters = {}
        for position, side in enumerate(SIDES):
            classifier = xgb.XGBClassifier(**settings)
            classifier.fit(features, hits[:, position], base_margin=prior[:, position])
            boosters[side] = classifier.get_booster()
        return boosters

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        return self._predict_with(self.estimator_, X)

    def _predict_with(self, name: str, X: pd.DataFrame) -> pd.DataFrame:
        prior = self._prior_logits(X)
        if name == "gru":
            if self.sequence_ is None:
                raise ValueError("the GRU is not fitted")
            probabilities = self.sequence_.predict_proba(self._windows(X), offset=prior)
        else:
            features = X[list(TREE_COLUMNS)]
            probabilities = np.column_stack(
                [
                    self.boosters_[side].predict(
                        xgb.DMatrix(features, base_margin=prior[:, position])
                    )
                    for position, side in enumerate(SIDES)
                ]
            ).astype(np.float64)
        return pd.DataFrame(probabilities, index=X.index, columns=list(PROBABILITY_COLUMNS))

    def baseline(self, X: pd.DataFrame) -> pd.DataFrame:
        """The rolling base rate of each side, a column of X (known at the row's hour)."""
        values = X[list(BASE_RATE_COLUMNS)].to_numpy(dtype=np.float64)
        return pd.DataFrame(values, index=X.index, columns=list(PROBABILITY_COLUMNS))

    # ---- serving transform
    def calibrate(self, X: pd.DataFrame, raw: pd.DataFrame, y: pd.DataFrame) -> Self:
        """Platt-calibrate each side on all rows; choose w honestly on a later half.

        Fitting w on the rows the calibrator was fitted on would credit the calibrator's
        intercept, the rows' own hit rate, as skill over the rolling base rate. So w is chosen
        on the rows of the later half of the hours, served through calibrators fitted on the
        earlier half; then the calibrators are refitted on all rows. Too few rows for that
        split leaves w at 0.
        """
        self.calibrators_ = self._fit_calibrators(raw, y)
        timestamps = pd.DatetimeIndex(X.index.get_level_values("timestamp"))
        later = np.asarray(timestamps > timestamps.sort_values()[len(timestamps) // 2])
        if min(later.sum(), (~later).sum()) < MIN_CALIBRATION_ROWS:
            self.shrink_weight_ = 0.0
            return self
        early = self._fit_calibrators(raw.loc[~later], y.loc[~later])
        base, calibrated = self.baseline(X.loc[later]), self._calibrated(raw.loc[later], early)
        y_later = y.loc[later]
        self.shrink_weight_ = fit_demonstrated_weight(
            lambda weight: self.losses(y_later, self._blend(base, calibrated, weight)),
            horizon_blocks(timestamps[later], self.horizon),
        )
        return self

    @staticmethod
    def _fit_calibrators(raw: pd.DataFrame, y: pd.DataFrame) -> dict[str, ProbabilityCalibrator]:
        return {
            side: ProbabilityCalibrator("sigmoid").fit(raw[column], y[f"{side}_hit"])
            for side, column in zip(SIDES, PROBABILITY_COLUMNS, strict=True)
        }

    @staticmethod
    def _calibrated(
        raw: pd.DataFrame, calibrators: Mapping[str, ProbabilityCalibrator]
    ) -> pd.DataFrame:
        columns = {
            column: calibrators[side].transform(raw[column])
            for side, column in zip(SIDES, PROBABILITY_COLUMNS, strict=True)
        }
        return pd.DataFrame(columns, index=raw.index)

    @staticmethod
    def _blend(base: pd.DataFrame, model: pd.DataFrame, weight: float) -> pd.DataFrame:
        blended = blend_probabilities(base.to_numpy(), model[base.columns].to_numpy(), weight)
        return pd.DataFrame(blended, index=base.index, columns=base.columns)

    def serve(self, X: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
        base = self.baseline(X)
        if not hasattr(self, "calibrators_"):
            return base
        return self._blend(base, self._calibrated(raw, self.calibrators_), self.shrink_weight)

    # ---- metrics
    def losses(self, y: pd.DataFrame, predictions: pd.DataFrame) -> np.ndarray:
        """Mean of the long and the short Brier loss, row by row."""
        per_side = [
            brier_losses(predictions[column], y[f"{side}_hit"])
            for side, column in zip(SIDES, PROBABILITY_COLUMNS, strict=True)
        ]
        return np.asarray((per_side[0] + per_side[1]) / 2)

    def _brier(self, y: pd.DataFrame, predictions: pd.DataFrame) -> float:
        return float(self.losses(y, predictions).mean())

    def score(self, y: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, Any]:
        scores: dict[str, Any] = {}
        for side, column in zip(SIDES, PROBABILITY_COLUMNS, strict=True):
            p = predictions[column].to_numpy(dtype=float)
            hits = y[f"{side}_hit"].to_numpy(dtype=float)
            scores[f"brier_{side}"] = brier_score(p, hits)
            scores[f"auc_{side}"] = binary_auc(p, hits)
            scores[f"ece_{side}"] = expected_calibration_error(p, hits)
            scores[f"hit_rate_{side}"] = float(hits.mean())
        scores["brier"] = (scores["brier_long"] + scores["brier_short"]) / 2
        scores.update(self.policy_returns(y, predictions))
        return scores

    def expected_net_returns(
        self, predictions: pd.DataFrame, atr_rel: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Per side, the expected return of an entry net of a round trip's fees.

        As a share of the entry price: atr_rel * (p * target_atr - (1 - p) * stop_atr) - 2 * fee
        (a timeout counted as a stop, which is conservative). The fee belongs in the rule:
        hourly ATR is about a percent of the price, so a round trip of 0.2 % costs a fifth of
        an ATR or more, and an edge smaller than that loses money however often it is right.
        Training's policy and the served signals both decide with this.
        """
        spec, cost = self.barrier, 2 * float(self.param("fee"))
        return {
            side: atr_rel
            * (
                predictions[column].to_numpy(dtype=float) * spec.target_atr
                - (1 - predictions[column].to_numpy(dtype=float)) * spec.stop_atr
            )
            - cost
            for side, column in zip(SIDES, PROBABILITY_COLUMNS, strict=True)
        }

    def serve_at(self, panel: MarketPanel, as_of: pd.Timestamp) -> pd.DataFrame:
        """The side worth entering at `as_of` for each coin, if any, after fees: entry, ATR
        target and stop, the side's probability, the expected R-multiple and the risk level."""
        X = rows_at(self.features(panel, as_of), as_of)
        if X.empty:
            return pd.DataFrame()
        X = X.reset_index(level="timestamp", drop=True)
        probabilities = self.predict_calibrated(X)
        spec = self.barrier
        atr = average_true_range(panel).loc[as_of].reindex(X.index)
        close = panel.close.loc[as_of].reindex(X.index)
        net = self.expected_net_returns(probabilities, (atr / close).to_numpy(dtype=float))
        side = np.where(net["long"] >= net["short"], "long", "short")
        # The R-multiple net of fees: the expected net return in units of the stop distance.
        edge = np.maximum(net["long"], net["short"]) / (spec.stop_atr * atr / close).to_numpy()
        sign = np.where(side == "long", 1.0, -1.0)
        frame = pd.DataFrame(
            {
                "signal_type": side,
                "entry_price": close,
                "target_price": close + sign * spec.target_atr * atr,
                "stop_loss": close - sign * spec.stop_atr * atr,
                "confidence": np.where(
                    side == "long", probabilities["p_long"], probabilities["p_short"]
                ),
                "expected_r": edge,
                "p_long": probabilities["p_long"],
                "p_short": probabilities["p_short"],
                "risk_level": atr_levels(panel, as_of, X.index, RISK_LEVELS),
                "risk_reward_ratio": spec.target_atr / spec.stop_atr,
            },
            index=X.index,
        )
        valid = (frame["expected_r"] > 0) & atr.notna() & (frame["stop_loss"] > 0)
        return frame.loc[valid & (frame["target_price"] > 0)]

    def policy_returns(self, y: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, Any]:
        """Realised return per trade, net of fees, of entering the side with the higher
        positive expected net return (`expected_net_returns`) and staying out otherwise."""
        cost = 2 * float(self.param("fee"))
        expected = self.expected_net_returns(predictions, y["atr_rel"].to_numpy(dtype=float))
        go_long = (expected["long"] > 0) & (expected["long"] >= expected["short"])
        go_short = (expected["short"] > 0) & ~go_long
        net = {side: y[f"{side}_return"].to_numpy(dtype=float) - cost for side in SIDES}
        taken = np.concatenate([net["long"][go_long], net["short"][go_short]])
        return {
            "expectancy_per_trade": float(taken.mean()) if taken.size else None,
            "trades": int(taken.size),
            "trade_share": float(taken.size / len(y)) if len(y) else 0.0,
            "long_trades": int(go_long.sum()),
            "short_trades": int(go_short.sum()),
            "always_long_expectancy": float(net["long"].mean()) if len(y) else None,
        }

    def calibration_report(
        self, X: pd.DataFrame, served: pd.DataFrame, y: pd.DataFrame
    ) -> dict[str, Any]:
        """Reliability of the served probabilities per side, against the rolling base rate."""
        report: dict[str, Any] = {
            side: calibration_report(
                served[column],
                y[f"{side}_hit"],
                reference_rate=X[base_column].to_numpy(dtype=float),
            )
            for side, column, base_column in zip(
                SIDES, PROBABILITY_COLUMNS, BASE_RATE_COLUMNS, strict=True
            )
        }
        report["shrink_weight"] = self.shrink_weight
        return report

    def feature_importance(self) -> pd.Series:
        """Gain per last-hour feature, summed over the sides; empty for the GRU."""
        if getattr(self, "estimator_", None) != "trees":
            return pd.Series(dtype=float)
        gains = [gain_importance(self.boosters_[side], list(TREE_COLUMNS)) for side in SIDES]
        return gains[0].add(gains[1], fill_value=0.0).sort_values(ascending=False)

    # ---- persistence
    def _save_state(self, directory: Path) -> None:
        if self.sequence_ is not None:
            self.sequence_.save(directory / WEIGHTS_FILE)
        else:
            for side in SIDES:
                self.boosters_[side].save_model(directory / f"trees_{side}.json")
        state = {
            "estimator": self.estimator_,
            "inner_briers": self.inner_briers_,
            "calibrators": getattr(self, "calibrators_", None),
            "shrink_weight": self.shrink_weight,
        }
        joblib.dump(state, directory / STATE_FILE)

    def _load_state(self, directory: Path) -> None:
        state = joblib.load(directory / STATE_FILE)
        self.estimator_ = state["estimator"]
        self.inner_briers_ = state["inner_briers"]
        if state["calibrators"] is not None:
            self.calibrators_ = state["calibrators"]
            self.shrink_weight_ = float(state["shrink_weight"])
        self.sequence_, self.boosters_ = None, {}
        if self.estimator_ == "gru":
            self.sequence_ = SequenceClassifier.load(directory / WEIGHTS_FILE)
            return
        for side in SIDES:
            self.boosters_[side] = xgb.Booster()
            self.boosters_[side].load_model(directory / f"trees_{side}.json")
