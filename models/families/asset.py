"""Layer 3, assets: each coin's price `horizon` hours ahead, with a calibrated confidence.

The forecast is a market part plus a cross-sectional part (`cross_section`): the market part
is persistence, the cross-sectional part ranks the coins of the hour and is shrunk toward 0
as far as out-of-fold evidence demands. The price is the last close times the exponential of
the forecast log return. The one-line factors (`models.factors`) are both features and the
rankings the model must beat: where one of them ranked the out-of-fold rows better, it is
served instead.

Each price forecast carries a central interval (`lower_return`, `upper_return`) at
`interval_level`: split-conformal on out-of-fold errors, scaled by the coin's volatility
(`models.intervals`); the baseline's is persistence plus or minus a normal quantile of the
same scale. Each horizon is its own version line (`line_name`).

`confidence` is the calibrated probability that the forecast is accurate in the spec's own
sense, |predicted - actual| / actual <= `accuracy_threshold` percent: a logistic model of
that event on the size of the forecast move and the coin's recent volatility (a calm coin
stays within 5 % far more often), fitted on out-of-fold rows of the served forecast.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from models.calibration import add_one_rate, probability_floor
from models.factors import DEFAULT_FACTORS, factor_frame
from models.families.cross_section import RANKED_PREFIX, CrossSectionalFamily
from models.families.outputs import TableOutput
from models.families.served import VOLATILITY_LEVELS, atr_levels, rows_at, rows_from
from models.features import (
    EMA_SETTLE_HOURS,
    INDEX_WEIGHT_HOURS,
    TREND_WINDOW,
    coin_features,
    cross_sectional_ranks,
    sector_features,
)
from models.intervals import (
    DEFAULT_LEVEL,
    LOWER,
    UPPER,
    ConformalInterval,
    check_level,
    interval_report,
    naive_bounds,
    volatility_scale,
)
from models.labels import asset_labels
from models.layers import DEFAULT_HORIZONS
from models.metrics import calibration_report, price_accuracy
from models.panel import MarketPanel

DEFAULT_ACCURACY_THRESHOLD = 5.0  # percent, the spec's predictions.accuracy_threshold default
VOLATILITY_COLUMNS = ("realized_vol_24h", "realized_vol_168h")
SECTOR_COLUMNS = ("sector_relative_24h", "sector_relative_168h", "sector_vol_168h")
FACTOR_NAMES = tuple(factor.name for factor in DEFAULT_FACTORS)
LINE_PREFIX = "asset_price"


def line_name(horizon: int) -> str:
    """The registered name of the asset forecasts `horizon` hours ahead.

    The layer's default horizon keeps the plain name, the one that registries made before
    there were several horizons already hold.
    """
    return LINE_PREFIX if horizon == DEFAULT_HORIZONS["asset"] else f"{LINE_PREFIX}_{horizon}h"


def is_line_name(name: str) -> bool:
    """Whether `name` is the registered name of an asset line (of any horizon)."""
    suffix = name.removeprefix(f"{LINE_PREFIX}_")
    return name == LINE_PREFIX or (
        suffix != name and suffix.endswith("h") and suffix[:-1].isascii() and suffix[:-1].isdigit()
    )


def accurate(
    predicted_return: np.ndarray, actual_return: np.ndarray, threshold: float
) -> np.ndarray:
    """The spec's is_accurate on log returns: prices relative to the current close."""
    return price_accuracy(np.exp(predicted_return), np.exp(actual_return), threshold)


class AssetPriceFamily(CrossSectionalFamily):
    """Ranked coin, sector and factor features; the baseline is persistence (random walk)."""

    name: ClassVar[str] = LINE_PREFIX
    model_type: ClassVar[str] = "asset"
    layer: ClassVar[int] = 3
    target: ClassVar[str] = "forward_return"
    output: ClassVar[str] = "predicted_return"
    non_tree_params: ClassVar[tuple[str, ...]] = ("accuracy_threshold", "interval_level")
    layer_name: ClassVar[str] = "asset"
    default_horizon: ClassVar[int] = DEFAULT_HORIZONS["asset"]
    upstream: ClassVar[tuple[str, ...]] = ("macro", "sector")
    outputs: ClassVar[tuple[TableOutput, ...]] = (
        TableOutput(
            "predictions",
            columns={"input_price": "close", "confidence_score": "confidence"},
        ),
        # Made from the primary line's forecasts only: one proposal per coin and watchlist.
        TableOutput("ai_suggestions", primary_only=True),
    )
    horizon_lines: ClassVar[bool] = True
    quick_params: ClassVar[dict[str, Any]] = {"n_estimators": 40}
    empty_reason: ClassVar[str] = "no coin has a candle at this hour"
    # The one-line factors its ranking is compared with, and what its confidence and
    # interval scale with.
    serving_columns: ClassVar[tuple[str, ...] | None] = (
        *(RANKED_PREFIX + name for name in FACTOR_NAMES),
        *VOLATILITY_COLUMNS,
    )

    @property
    def registered_name(self) -> str:
        return line_name(self.horizon)

    @classmethod
    def registers(cls, name: str) -> bool:
        return is_line_name(name)

    @property
    def accuracy_threshold(self) -> float:
        return float(self.params.get("accuracy_threshold", DEFAULT_ACCURACY_THRESHOLD))

    @property
    def interval_level(self) -> float:
        return check_level(float(self.params.get("interval_level", DEFAULT_LEVEL)))

    @property
    def history_hours(self) -> int:
        return TREND_WINDOW + EMA_SETTLE_HOURS + INDEX_WEIGHT_HOURS

    def features(self, panel: MarketPanel, since: pd.Timestamp | None = None) -> pd.DataFrame:
        """Ranks across the coins of each hour (`xs_*`), plus raw volatilities for confidence."""
        coins = rows_from(coin_features(panel), since)
        sector_keys = pd.MultiIndex.from_arrays(
            [
                coins.index.get_level_values("timestamp"),
                panel.sectors.reindex(coins.index.get_level_values("symbol")).to_numpy(),
            ]
        )
        sectors = sector_features(panel)[list(SECTOR_COLUMNS)].reindex(sector_keys)
        sectors.index = coins.index
        raw = pd.concat([coins, sectors, rows_from(factor_frame(panel), since)], axis=1)
        ranked = cross_sectional_ranks(raw).add_prefix(RANKED_PREFIX)
        return pd.concat([ranked, coins[list(VOLATILITY_COLUMNS)]], axis=1)

    def labels(self, panel: MarketPanel) -> pd.DataFrame:
        return asset_labels(panel, self.horizon).to_frame(self.target)

    def candidates(self, X: pd.DataFrame) -> pd.DataFrame:
        """The one-line factors, ranked across the coins of the hour."""
        return X[[RANKED_PREFIX + name for name in FACTOR_NAMES]].set_axis(
            list(FACTOR_NAMES), axis=1
        )

    def baseline(self, X: pd.DataFrame) -> pd.DataFrame:
        """Persistence, and the naive interval around it."""
        naive = super().baseline(X)
        naive[LOWER], naive[UPPER] = naive_bounds(
            volatility_scale(X, self.horizon), self.interval_level
        )
        return naive

    # ---- confidence and interval
    def calibrate(self, X: pd.DataFrame, raw: pd.DataFrame, y: pd.DataFrame) -> Self:
        super().calibrate(X, raw, y)
        forecast = super().serve(X, raw)[self.output].to_numpy()
        actual = y[self.target].to_numpy()
        self.interval_ = ConformalInterval.fit(
            actual - forecast, volatility_scale(X, self.horizon), self.interval_level
        )
        outcomes = accurate(forecast, actual, self.accuracy_threshold)
        self.accuracy_rate_ = add_one_rate(int(outcomes.sum()), len(outcomes))
        self.confidence_floor_ = probability_floor(len(outcomes))
        self.confidence_model_: LogisticRegression | None = None
        if 0 < outcomes.sum() < len(outcomes):
            inputs = _confidence_inputs(X, forecast)
            self.confidence_model_ = LogisticRegression().fit(inputs, outcomes.astype(int))
        return self

    def serve(self, X: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
        """The forecast, its confidence and its interval; before `calibrate`, the naive
        interval, since nothing yet says how far the forecast errs."""
        served = super().serve(X, raw)
        forecast = served[self.output].to_numpy()
        served["confidence"] = self._confidence(X, forecast)
        interval: ConformalInterval | None = getattr(self, "interval_", None)
        if interval is not None:
            served[LOWER], served[UPPER] = interval.bounds(
                forecast, volatility_scale(X, self.horizon)
            )
        return served

    def _confidence(self, X: pd.DataFrame, forecast: np.ndarray) -> np.ndarray:
        """Calibrated P(accurate), never 0 or 1; the add-one rate if one outcome was never seen.

        NaN before `calibrate`: there is no evidence yet of how often the forecast is right.
        """
        model = getattr(self, "confidence_model_", None)
        if model is None:
            return np.full(len(X), getattr(self, "accuracy_rate_", np.nan))
        probabilities = model.predict_proba(_confidence_inputs(X, forecast))[:, 1]
        floor = self.confidence_floor_
        return np.asarray(np.clip(probabilities, floor, 1.0 - floor))

    # ---- serving at one hour
    def serve_at(self, panel: MarketPanel, as_of: pd.Timestamp) -> pd.DataFrame:
        """Every coin with a candle at `as_of`: its price `horizon` hours ahead (the close
        times the exponential of the forecast log return) and the interval around it, the
        confidence, the rankings, its volatility level, the features and their contributions.

        Served for every coin of the hour at once: a ranking is among all of them.
        """
        started = time.perf_counter()
        X = rows_at(self.features(panel, as_of), as_of).reset_index(level="timestamp", drop=True)
        close = panel.close.loc[as_of].reindex(X.index)
        X = X.loc[close.notna()]
        if X.empty:
            return pd.DataFrame()
        outputs = self.predict_calibrated(X)
        seconds = (time.perf_counter() - started) / len(X)
        result = pd.DataFrame(
            {
                "close": close,
                "predicted_return": outputs[self.output],
                "predicted_price": close * np.exp(outputs[self.output]),
                "lower_price": close * np.exp(outputs[LOWER]),
                "upper_price": close * np.exp(outputs[UPPER]),
                "confidence": outputs["confidence"].clip(0.0, 1.0),
                "rank_score": outputs["rank_score"],
                "factor_score": outputs.get("candidate_score", np.nan),
                "volatility_level": atr_levels(panel, as_of, X.index, VOLATILITY_LEVELS),
                "accuracy_threshold": self.accuracy_threshold,
            },
            index=X.index,
        )
        result["predicted_value"] = [self._predicted_value(row) for _, row in result.iterrows()]
        result["explanation"] = self.explain(X)
        result["input_features"] = [
            {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}
            for row in X.to_dict(orient="records")
        ]
        result["prediction_seconds"] = seconds
        return result

    def _predicted_value(self, forecast: pd.Series) -> dict[str, Any]:
        """The forecast log return; its central interval (prices, and the level); and where
        the coin stands in the served ranking (and in the best one-line factor's) among the
        coins of its hour: the nightly evaluation's live rank IC reads them, since a forecast
        shrunk to persistence carries no ranking of its own."""
        value = {
            "predicted_log_return": float(forecast["predicted_return"]),
            "lower": round(float(forecast["lower_price"]), 8),
            "upper": round(float(forecast["upper_price"]), 8),
            "level": self.interval_level,
        }
        for key in ("rank_score", "factor_score"):
            if pd.notna(forecast.get(key)):
                value[key] = float(forecast[key])
        return value

    def score(self, y: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, Any]:
        scores = super().score(y, predictions)
        predicted = predictions[self.output].to_numpy()
        actual = y[self.target].to_numpy()
        scores["accuracy_rate"] = float(accurate(predicted, actual, self.accuracy_threshold).mean())
        if LOWER in predictions:
            lower, upper = predictions[LOWER].to_numpy(), predictions[UPPER].to_numpy()
            scores.update(interval_report(lower, upper, actual, self.interval_level))
        return scores

    def calibration_report(
        self, X: pd.DataFrame, served: pd.DataFrame, y: pd.DataFrame
    ) -> dict[str, Any]:
        outcomes = accurate(
            served[self.output].to_numpy(), y[self.target].to_numpy(), self.accuracy_threshold
        )
        return calibration_report(
            served["confidence"].to_numpy(),
            outcomes.astype(int),
            reference_rate=getattr(self, "accuracy_rate_", None),
        )

    def _serving_state(self) -> dict[str, Any]:
        names = ("confidence_model_", "accuracy_rate_", "confidence_floor_", "interval_")
        extra = {name: getattr(self, name) for name in names}
        return {**super()._serving_state(), **extra}


def _confidence_inputs(X: pd.DataFrame, forecast: np.ndarray) -> np.ndarray:
    """Size of the forecast move and log volatilities; missing volatility -> its median."""
    frame = pd.DataFrame(
        {"abs_predicted_return": np.abs(forecast)}
        | {name: np.log(X[name].clip(lower=1e-6)).to_numpy() for name in VOLATILITY_COLUMNS},
        index=X.index,
    )
    return frame.fillna(frame.median()).fillna(0.0).to_numpy()
