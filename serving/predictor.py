"""Predictions of the active models at one hour: the code `analyze` and the API share.

Layers run top-down. The macro model's raw regime probabilities and the sector model's
strengths at hour t become features of the layers below, exactly as their out-of-fold values
did in training. Every feature comes from the same `models` functions training used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.families.macro import PROBABILITY_COLUMNS as REGIME_PROBABILITIES
from models.families.timing import TradeTimingFamily
from models.features import average_true_range, sector_features
from models.intervals import LOWER, UPPER
from models.panel import MarketPanel
from serving.models_cache import LoadedModel, ModelLookup

# fear & greed needs ~1,150 hours of history before its first value; keep some margin.
HISTORY_HOURS = 1500
VOLATILITY_LEVELS = ((0.5, "low"), (0.8, "medium"), (1.01, "high"))
RISK_LEVELS = ((0.5, "low"), (0.8, "medium"), (0.95, "high"), (1.01, "extreme"))
PERCENTILE_WINDOW = 720
NO_ASSET_MODEL = "no active asset model: train one with `cryptopredict train --layer asset`"


class ModelUnavailable(RuntimeError):
    """No active version of a family that the request needs."""


@dataclass
class MarketView:
    """What the upper layers say at `as_of`: the context written beside the coin forecasts."""

    as_of: pd.Timestamp
    regime: dict[str, Any] | None = None
    market: pd.Series | None = None
    sectors: pd.DataFrame | None = None
    versions: dict[str, str] = field(default_factory=dict)


def recent(panel: MarketPanel, as_of: pd.Timestamp | None = None) -> MarketPanel:
    """The panel up to `as_of` (default: its last hour), trimmed to the history features need."""
    end = panel.hours[-1] if as_of is None else as_of
    return panel.between(end - pd.Timedelta(hours=HISTORY_HOURS), end)


def _at(frame: pd.DataFrame, hour: pd.Timestamp) -> pd.DataFrame:
    if frame.index.nlevels == 1:
        return frame.loc[[hour]] if hour in frame.index else frame.iloc[0:0]
    mask = frame.index.get_level_values("timestamp") == hour
    return frame.loc[mask]


class Predictor:
    def __init__(self, models: ModelLookup) -> None:
        self.models = models

    def require(self, layer: str, horizon: int | None = None) -> LoadedModel:
        loaded = self.models.get(layer, horizon)
        if loaded is None:
            at = "" if horizon is None else f" at {horizon} hours"
            raise ModelUnavailable(
                f"no active {layer} model{at}: train one with `cryptopredict train --layer {layer}`"
            )
        return loaded

    def market_view(self, panel: MarketPanel) -> MarketView:
        """Regime and sector strengths at the panel's last hour (layers 1 and 2)."""
        as_of = panel.hours[-1]
        view = MarketView(as_of=as_of)
        macro = self.models.get("macro")
        if macro is not None:
            X = _at(macro.family.features(panel), as_of)
            served = macro.family.predict_calibrated(X).iloc[0]
            view.market = X.iloc[0]
            view.regime = {
                "regime": served["regime"],
                "confidence": float(served["confidence"]),
                **{column: float(served[column]) for column in REGIME_PROBABILITIES},
                "explanation": macro.family.explain(X)[0],
            }
            view.versions["macro"] = macro.version
        sector = self.models.get("sector")
        if sector is not None:
            X = _at(sector.family.features(panel), as_of)
            strength = sector.family.predict_calibrated(X)[["sector_strength"]]
            aggregates = _at(sector_features(panel), as_of)
            view.sectors = aggregates.join(strength).reset_index(level="timestamp", drop=True)
            view.versions["sector"] = sector.version
        return view

    def assets(
        self,
        panel: MarketPanel,
        view: MarketView,
        symbols: list[str] | None = None,
        horizon: int | None = None,
    ) -> pd.DataFrame:
        """Layer 3 for every coin with a candle at `as_of` (or the given ones), by the asset
        line at `horizon` (by default the primary one); prices with their interval."""
        asset = self.require("asset", horizon)
        started = time.perf_counter()
        X = _at(asset.family.features(panel), view.as_of)
        X = X.reset_index(level="timestamp", drop=True)
        close = panel.close.loc[view.as_of].reindex(X.index)
        X = X.loc[close.notna()]
        if X.empty:
            return pd.DataFrame()
        # Served for every coin of the hour, then chosen: a ranking is among all of them.
        outputs = asset.family.predict_calibrated(X)
        if symbols is not None:
            X = X.loc[X.index.intersection(symbols)]
            outputs = outputs.loc[X.index]
        close = close.loc[X.index]
        if X.empty:
            return pd.DataFrame()
        elapsed = (time.perf_counter() - started) / len(X)
        result = pd.DataFrame(
            {
                "close": close,
                "predicted_return": outputs["predicted_return"],
                "predicted_price": close * np.exp(outputs["predicted_return"]),
                "lower_price": close * np.exp(outputs[LOWER]),
                "upper_price": close * np.exp(outputs[UPPER]),
                "confidence": outputs["confidence"].clip(0.0, 1.0),
                "rank_score": outputs["rank_score"],
                "factor_score": outputs.get("candidate_score", np.nan),
                "volatility_level": _levels(panel, view.as_of, X.index, VOLATILITY_LEVELS),
                "prediction_seconds": elapsed,
            },
            index=X.index,
        )
        result["explanation"] = asset.family.explain(X)
        result["features"] = [
            {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}
            for row in X.to_dict(orient="records")
        ]
        result.attrs.update(model=asset)
        return result

    def signals(self, panel: MarketPanel, view: MarketView) -> pd.DataFrame:
        """Layer 4: the side worth entering now for each coin, if any, after fees."""
        timing = self.require("timing")
        family = timing.family
        if not isinstance(family, TradeTimingFamily):
            raise TypeError(f"the timing layer serves a {type(family).__name__}")
        X = _at(family.features(panel), view.as_of)
        if X.empty:
            return pd.DataFrame()
        X = X.reset_index(level="timestamp", drop=True)
        probabilities = family.predict_calibrated(X)
        spec = family.barrier
        atr = average_true_range(panel).loc[view.as_of].reindex(X.index)
        close = panel.close.loc[view.as_of].reindex(X.index)
        net = family.expected_net_returns(probabilities, (atr / close).to_numpy(dtype=float))
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
                "risk_level": _levels(panel, view.as_of, X.index, RISK_LEVELS),
                "risk_reward_ratio": spec.target_atr / spec.stop_atr,
            },
            index=X.index,
        )
        valid = (frame["expected_r"] > 0) & atr.notna() & (frame["stop_loss"] > 0)
        frame = frame.loc[valid & (frame["target_price"] > 0)]
        frame.attrs.update(model=timing, horizon=spec.horizon)
        return frame


def _levels(
    panel: MarketPanel,
    as_of: pd.Timestamp,
    symbols: pd.Index,
    levels: tuple[tuple[float, str], ...],
) -> pd.Series:
    """Each coin's ATR relative to price, as a percentile of its own last 720 hours."""
    relative = (average_true_range(panel) / panel.close).loc[:as_of].tail(PERCENTILE_WINDOW)
    percentile = relative.rank(pct=True).iloc[-1].reindex(symbols)
    names = []
    for value in percentile:
        if pd.isna(value):
            names.append("medium")
            continue
        names.append(next(name for bound, name in levels if value < bound))
    return pd.Series(names, index=symbols)
