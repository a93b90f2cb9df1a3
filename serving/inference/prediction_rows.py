"""The `predictions` row of one coin's price forecast: the one shape `analyze` and the API
persist, for any family that declares a `predictions` output.

The family's served frame gives, under the names its `TableOutput` maps: `input_price`,
`predicted_price`, `confidence_score`, `input_features` (a dict), `volatility_level`,
`prediction_seconds`, `explanation` (top contributions) and, optionally, `predicted_value`
(a dict) and `accuracy_threshold` (percent).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from models.panel import MarketPanel
from serving.inference.models_cache import LoadedModel
from serving.inference.predictor import MarketView


def to_decimal(value: float, places: int) -> Decimal:
    return Decimal(str(round(float(value), places)))


def market_context(
    view: MarketView, panel: MarketPanel, symbol: str, layers: tuple[str, ...]
) -> dict[str, Any]:
    """What the upper `layers` said when a coin was forecast (its regime, its sector's
    strength), and the versions of every context layer."""
    sector = panel.sectors.get(symbol)
    return {
        "as_of": view.as_of.isoformat(),
        **view.context(layers, sector if isinstance(sector, str) else None),
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
    """Column values of a `predictions` row for one row of the family's served frame."""
    family = model.family
    column = family.table_output("predictions").column
    horizon = family.horizon
    context = market_context(view, panel, symbol, family.upstream)
    training_seconds = model.configuration.get("training_seconds")
    row = {
        "crypto_id": crypto_id,
        "model_name": model.name,
        "model_version": model.version,
        "layer_source": family.layer,
        "prediction_type": "price",
        "predicted_price": to_decimal(forecast[column("predicted_price")], 8),
        "confidence_score": to_decimal(forecast[column("confidence_score")], 4),
        "prediction_horizon": horizon,
        "target_datetime": view.as_of.to_pydatetime() + timedelta(hours=horizon),
        "features_used": list(forecast[column("input_features")]),
        "model_parameters": model.configuration.get("hyperparameters", {}),
        "input_price": to_decimal(forecast[column("input_price")], 8),
        "input_features": forecast[column("input_features")],
        "context_data": context,
        "training_data_end": datetime.fromisoformat(model.configuration["training_end"]),
        "market_conditions": (context.get("regime") or {}).get("regime"),
        "volatility_level": forecast[column("volatility_level")],
        "model_training_time": (
            None if training_seconds is None else to_decimal(training_seconds, 2)
        ),
        "prediction_time": to_decimal(forecast[column("prediction_seconds")], 6),
        "debug_info": {"top_contributions": forecast[column("explanation")]},
    }
    # Optional: without them the row keeps the table's defaults.
    if column("predicted_value") in forecast:
        row["predicted_value"] = forecast[column("predicted_value")]
    if column("accuracy_threshold") in forecast:
        row["accuracy_threshold"] = to_decimal(forecast[column("accuracy_threshold")], 2)
    return row
