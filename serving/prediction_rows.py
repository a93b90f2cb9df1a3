"""The `predictions` row of one asset forecast: the one shape `analyze` and the API persist."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from models.families.asset import AssetPriceFamily
from models.panel import MarketPanel
from serving.models_cache import LoadedModel
from serving.predictor import MarketView


def to_decimal(value: float, places: int) -> Decimal:
    return Decimal(str(round(float(value), places)))


def market_context(view: MarketView, panel: MarketPanel, symbol: str) -> dict[str, Any]:
    """What the upper layers said when a coin was forecast: regime, its sector's strength."""
    sector = panel.sectors.get(symbol)
    strength = None
    if view.sectors is not None and isinstance(sector, str) and sector in view.sectors.index:
        strength = float(view.sectors.loc[sector, "sector_strength"])
    return {
        "as_of": view.as_of.isoformat(),
        "regime": view.regime,
        "sector": sector if isinstance(sector, str) else None,
        "sector_strength": strength,
        "model_versions": view.versions,
    }


def prediction_row(
    model: LoadedModel,
    view: MarketView,
    panel: MarketPanel,
    symbol: str,
    forecast: pd.Series,
    crypto_id: int,
) -> dict[str, Any]:
    """Column values of a `predictions` row for one row of `Predictor.assets`."""
    family = model.family
    if not isinstance(family, AssetPriceFamily):
        raise TypeError(f"the asset layer serves a {type(family).__name__}")
    horizon = family.horizon
    training_seconds = model.configuration.get("training_seconds")
    return {
        "crypto_id": crypto_id,
        "model_name": model.name,
        "model_version": model.version,
        "layer_source": 3,
        "prediction_type": "price",
        "predicted_price": to_decimal(forecast["predicted_price"], 8),
        "predicted_value": _predicted_value(forecast, family.interval_level),
        "confidence_score": to_decimal(forecast["confidence"], 4),
        "prediction_horizon": horizon,
        "target_datetime": view.as_of.to_pydatetime() + timedelta(hours=horizon),
        "features_used": list(forecast["features"]),
        "model_parameters": model.configuration.get("hyperparameters", {}),
        "input_price": to_decimal(forecast["close"], 8),
        "input_features": forecast["features"],
        "context_data": market_context(view, panel, symbol),
        "accuracy_threshold": to_decimal(family.accuracy_threshold, 2),
        "training_data_end": datetime.fromisoformat(model.configuration["training_end"]),
        "market_conditions": (view.regime or {}).get("regime"),
        "volatility_level": forecast["volatility_level"],
        "model_training_time": (
            None if training_seconds is None else to_decimal(training_seconds, 2)
        ),
        "prediction_time": to_decimal(forecast["prediction_seconds"], 6),
        "debug_info": {"top_contributions": forecast["explanation"]},
    }


def _predicted_value(forecast: pd.Series, level: float) -> dict[str, Any]:
    """The forecast log return; its central interval (prices, and the level); and where the
    coin stands in the served ranking (and in the best one-line factor's) among the coins of
    its hour: the nightly evaluation's live rank IC reads them, since a forecast shrunk to
    persistence carries no ranking of its own."""
    value = {
        "predicted_log_return": float(forecast["predicted_return"]),
        "lower": round(float(forecast["lower_price"]), 8),
        "upper": round(float(forecast["upper_price"]), 8),
        "level": level,
    }
    for key in ("rank_score", "factor_score"):
        if pd.notna(forecast.get(key)):
            value[key] = float(forecast[key])
    return value
