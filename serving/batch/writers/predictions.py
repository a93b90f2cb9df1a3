"""Layer 3's tables: a `predictions` row per coin and version line, and, from the primary
line's forecasts, `ai_suggestions` for the active watchlists."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert, select

from db.schema import AiSuggestion, Prediction, Watchlist, WatchlistAsset
from models.families import TableOutput
from serving.batch.writers.base import Hour, crypto_ids
from serving.inference.prediction_rows import market_context, prediction_row, to_decimal
from serving.inference.predictor import Served

ADD_CANDIDATES = 3
REBALANCE_TOLERANCE = 0.05
SUGGESTION_INPUTS = ("predicted_return", "confidence", "volatility_level", "explanation")


def write_predictions(hour: Hour, served: Served, output: TableOutput) -> None:
    """The forecasts of one version line (`serving.inference.prediction_rows` says what it
    reads), but not those it already made for this hour."""
    model, forecasts = served.model, served.frame
    target = hour.as_of + timedelta(hours=model.family.horizon)
    ids = crypto_ids(hour.session, list(forecasts.index))
    done = set(
        hour.session.scalars(
            select(Prediction.crypto_id).where(
                Prediction.model_name == model.name,
                Prediction.model_version == model.version,
                Prediction.target_datetime == target,
            )
        )
    )
    rows = [
        prediction_row(model, hour.view, hour.panel, str(symbol), row, ids[str(symbol)])
        for symbol, row in forecasts.iterrows()
        if ids[str(symbol)] not in done
    ]
    if rows:
        hour.session.execute(insert(Prediction), rows)
    hour.report.written[output.table] += len(rows)
    if len(rows) < len(forecasts):
        hour.report.skipped.append(
            f"{output.table}: {len(forecasts) - len(rows)} of {model.name} already made for "
            "this hour"
        )


def write_suggestions(hour: Hour, served: Served, output: TableOutput) -> None:
    """Reads `predicted_return` (a log return), `confidence`, `volatility_level` and
    `explanation`: adds, removals and reweights for every active watchlist."""
    model, session = served.model, hour.session
    forecasts = served.frame.rename(
        columns={output.column(name): name for name in SUGGESTION_INPUTS}
    )
    horizon = model.family.horizon
    ids = crypto_ids(session, list(forecasts.index))
    symbols = {crypto_id: symbol for symbol, crypto_id in ids.items()}
    pending = set(
        session.execute(
            select(
                AiSuggestion.watchlist_id, AiSuggestion.crypto_id, AiSuggestion.suggestion_type
            ).where(AiSuggestion.status == "pending")
        )
    )
    watchlists = session.scalars(select(Watchlist).where(Watchlist.is_active.is_(True))).all()
    rows = []
    for watchlist in watchlists:
        held = {
            crypto_id: weight
            for crypto_id, weight in session.execute(
                select(WatchlistAsset.crypto_id, WatchlistAsset.weight).where(
                    WatchlistAsset.watchlist_id == watchlist.id,
                    WatchlistAsset.is_active.is_(True),
                )
            )
        }
        for kind, crypto_id, extra in _proposals(forecasts, ids, held, watchlist.max_assets or 25):
            if (watchlist.id, crypto_id, kind) in pending:
                continue
            symbol = symbols[crypto_id]
            prediction = forecasts.loc[symbol]
            rows.append(
                {
                    "watchlist_id": watchlist.id,
                    "crypto_id": crypto_id,
                    "suggestion_type": kind,
                    "ai_layer": model.family.layer,
                    "confidence_score": to_decimal(prediction["confidence"], 4),
                    "reasoning": {
                        "summary": _summary(kind, symbol, prediction, horizon),
                        "top_contributions": prediction["explanation"],
                        "model": model.name,
                        "model_version": model.version,
                    },
                    "context_data": market_context(
                        hour.view, hour.panel, symbol, model.family.upstream
                    ),
                    "expected_return": to_decimal(
                        np.expm1(prediction["predicted_return"]) * 100, 4
                    ),
                    "risk_score": to_decimal(_risk(prediction["volatility_level"]), 4),
                    # The analysis hour, not the wall clock: a backfill dates its
                    # suggestions when they would have been made, and evaluation prices them.
                    "created_at": hour.as_of,
                    "expires_at": hour.as_of + timedelta(hours=horizon),
                    **extra,
                }
            )
    if rows:
        session.execute(insert(AiSuggestion), rows)
    hour.report.written[output.table] += len(rows)


def _proposals(
    assets: pd.DataFrame, ids: dict[str, int], held: dict[int, Any], max_assets: int
) -> list[tuple[str, int, dict[str, Any]]]:
    """Add the best unheld coins, remove held ones expected to fall, reweight the rest."""
    expected = assets["predicted_return"]
    proposals: list[tuple[str, int, dict[str, Any]]] = []
    room = max(0, max_assets - len(held))
    candidates = expected[(expected > 0) & ~assets.index.map(ids).isin(list(held))]
    for position, symbol in enumerate(candidates.nlargest(min(room, ADD_CANDIDATES)).index):
        proposals.append(("add", ids[symbol], {"target_position": len(held) + position + 1}))
    held_symbols = [s for s in assets.index if ids[s] in held]
    for symbol in held_symbols:
        if expected[symbol] < 0:
            proposals.append(("remove", ids[symbol], {"target_weight": Decimal("0")}))
    keep = [s for s in held_symbols if expected[s] >= 0]
    if keep:
        raw = expected[keep].clip(lower=0) + 1e-9
        weights = raw / raw.sum()
        for symbol in keep:
            current = float(held[ids[symbol]] or 0)
            if abs(weights[symbol] - current) > REBALANCE_TOLERANCE:
                proposals.append(
                    ("rebalance", ids[symbol], {"target_weight": to_decimal(weights[symbol], 4)})
                )
    return proposals


def _summary(kind: str, symbol: str, prediction: pd.Series, horizon: int) -> str:
    change = float(np.expm1(prediction["predicted_return"]) * 100)
    verb = {"add": "Add", "remove": "Remove", "rebalance": "Reweight"}[kind]
    return (
        f"{verb} {symbol}: expected {change:+.2f}% over {horizon}h, "
        f"confidence {float(prediction['confidence']):.2f}, "
        f"{prediction['volatility_level']} volatility"
    )


def _risk(level: str) -> float:
    return {"low": 0.25, "medium": 0.5, "high": 0.75, "extreme": 1.0}.get(level, 0.5)
