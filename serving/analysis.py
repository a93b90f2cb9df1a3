"""`cryptopredict analyze`: run the active models at one hour and write every layer table.

All rows of one analysis are written in one transaction. An hour already analysed by the same
model versions is not written twice, so a cron job or a backfill can be re-run safely.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from math import erf
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from db.schema import (
    AiModel,
    AiSuggestion,
    Cryptocurrency,
    CryptoSector,
    DominanceData,
    MacroIndicator,
    MarketRegimeAnalysis,
    MarketSentimentData,
    Prediction,
    SectorPerformance,
    SectorRotationAnalysis,
    TradingSignal,
    Watchlist,
    WatchlistAsset,
)
from models.features import MARKET_FEATURES, market_features, sector_log_returns
from models.panel import MarketPanel
from serving.prediction_rows import market_context, prediction_row, to_decimal
from serving.predictor import MarketView, Predictor, recent
from serving.signal_alerts import notify_watchers

log = logging.getLogger(__name__)
ADD_CANDIDATES = 3
REBALANCE_TOLERANCE = 0.05
DOMINANCE_FEATURES = {"btc_dominance", "eth_dominance"}


@dataclass
class AnalysisReport:
    as_of: datetime
    written: Counter[str] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)


def analyze(engine: Engine, predictor: Predictor, panel: MarketPanel) -> AnalysisReport:
    """Analyse the panel's last hour with every active model; write what each layer says."""
    panel = recent(panel)
    view = predictor.market_view(panel)
    report = AnalysisReport(as_of=view.as_of.to_pydatetime())
    market = market_features(panel).loc[view.as_of]
    with Session(engine) as session, session.begin():
        _write_market(session, report, view, market)
        _write_sectors(session, report, predictor, panel, view)
        assets = _write_predictions(session, report, predictor, panel, view)
        if assets is not None:
            _write_suggestions(session, report, panel, view, assets)
        _write_signals(session, report, predictor, panel, view)
        _stamp_models(session, predictor, report)
    return report


# ------------------------------------------------------------------------- layer 1


def _write_market(
    session: Session, report: AnalysisReport, view: MarketView, market: pd.Series
) -> None:
    moment = report.as_of
    if session.scalar(
        select(MarketSentimentData.id).where(MarketSentimentData.timestamp == moment)
    ):
        report.skipped.append("market tables: this hour is already analysed")
        return
    indicators = _finite(market.to_dict())
    if view.regime is not None:
        session.add(
            MarketRegimeAnalysis(
                regime=view.regime["regime"],
                confidence_score=to_decimal(view.regime["confidence"], 4),
                indicators=indicators,
                analysis_data={**view.regime, "model_version": view.versions["macro"]},
                analysis_time=moment,
            )
        )
        report.written["market_regime_analysis"] += 1
    else:
        report.skipped.append("market_regime_analysis: no active macro model")
    if "fear_greed" in indicators:
        session.add(
            MarketSentimentData(
                fear_greed_index=to_decimal(indicators["fear_greed"], 2),
                social_sentiment=None,  # no social data source; see README
                sentiment_sources={"fear_greed": "price-derived proxy (models.features)"},
                analysis_metrics=indicators,
                timestamp=moment,
            )
        )
        report.written["market_sentiment_data"] += 1
    btc, eth = indicators.get("btc_dominance"), indicators.get("eth_dominance")
    if btc is not None and eth is not None:
        session.add(
            DominanceData(
                btc_dominance=to_decimal(btc, 2),
                eth_dominance=to_decimal(eth, 2),
                alt_dominance=to_decimal(max(0.0, 100.0 - btc - eth), 2),
                trend_analysis={
                    key: indicators.get(key)
                    for key in ("btc_dominance_change_168h", "eth_dominance_change_168h")
                },
                timestamp=moment,
            )
        )
        report.written["dominance_data"] += 1
    rows = [
        {
            "indicator_name": name,
            "value": to_decimal(indicators[name], 8),
            "timeframe": name.rsplit("_", 1)[-1] if name[-1] == "h" else "1h",
            "metadata_": {"source": "models.features.market_features"},
            "timestamp": moment,
        }
        for name in MARKET_FEATURES
        if name in indicators and name not in DOMINANCE_FEATURES and abs(indicators[name]) < 1e7
    ]
    if rows:
        session.execute(insert(MacroIndicator), rows)
        report.written["macro_indicators"] += len(rows)


# ------------------------------------------------------------------------- layer 2


def _write_sectors(
    session: Session,
    report: AnalysisReport,
    predictor: Predictor,
    panel: MarketPanel,
    view: MarketView,
) -> None:
    if view.sectors is None or view.sectors.empty:
        report.skipped.append("sector tables: no active sector model")
        return
    moment = report.as_of
    if session.scalar(
        select(SectorPerformance.id).where(SectorPerformance.analysis_time == moment)
    ):
        report.skipped.append("sector tables: this hour is already analysed")
        return
    ids = {
        name: sector_id
        for name, sector_id in session.execute(select(CryptoSector.name, CryptoSector.id))
    }
    sector_model = predictor.require("sector")
    validation_rmse = sector_model.performance.get("validation", {}).get("rmse")
    month = sector_log_returns(panel).loc[: view.as_of].tail(720).sum(min_count=1)
    sectors = view.sectors.loc[view.sectors.index.isin(list(ids))]
    for sector, row in sectors.iterrows():
        session.add(
            SectorPerformance(
                sector_id=ids[sector],
                performance_24h=_percent(row.get("sector_return_24h")),
                performance_7d=_percent(row.get("sector_return_168h")),
                performance_30d=_percent(month.get(sector)),
                performance_metrics={
                    **_finite(row.to_dict()),
                    "model_version": view.versions["sector"],
                },
                analysis_time=moment,
            )
        )
    report.written["sector_performance"] += len(sectors)
    strength = sectors["sector_strength"].dropna()
    if len(strength) >= 2:
        weakest, strongest = strength.idxmin(), strength.idxmax()
        spread = float(strength.max() - strength.min())
        rmse = float(validation_rmse or spread or 1.0)
        session.add(
            SectorRotationAnalysis(
                from_sector_id=ids[weakest],
                to_sector_id=ids[strongest],
                rotation_strength=to_decimal(min(1.0, spread / (2 * rmse)), 4),
                # P(strongest out-earns weakest) if each forecast errs N(0, rmse^2).
                confidence_score=to_decimal(0.5 * (1 + erf(spread / (2 * rmse))), 4),
                rotation_indicators={
                    "expected_relative_return": {k: float(v) for k, v in strength.items()},
                    "model_version": view.versions["sector"],
                },
                analysis_time=moment,
            )
        )
        report.written["sector_rotation_analysis"] += 1


# ------------------------------------------------------------------------- layer 3


def _write_predictions(
    session: Session,
    report: AnalysisReport,
    predictor: Predictor,
    panel: MarketPanel,
    view: MarketView,
) -> pd.DataFrame | None:
    """A forecast per coin and active asset line (horizon); the primary line's forecasts,
    which the suggestions are made from."""
    primary = predictor.models.get("asset")
    if primary is None:
        report.skipped.append("predictions and ai_suggestions: no active asset model")
        return None
    chosen = None
    for horizon in predictor.models.horizons("asset"):
        assets = predictor.assets(panel, view, horizon=horizon)
        if assets.empty:
            report.skipped.append("predictions: no coin has a candle at this hour")
            return None
        _write_line(session, report, panel, view, assets)
        if horizon == primary.family.horizon:
            chosen = assets
    return chosen


def _write_line(
    session: Session,
    report: AnalysisReport,
    panel: MarketPanel,
    view: MarketView,
    assets: pd.DataFrame,
) -> None:
    """The forecasts of one asset line, but not those it already made for this hour."""
    model = assets.attrs["model"]
    target = report.as_of + timedelta(hours=model.family.horizon)
    ids = _crypto_ids(session, list(assets.index))
    done = set(
        session.scalars(
            select(Prediction.crypto_id).where(
                Prediction.model_name == model.name,
                Prediction.model_version == model.version,
                Prediction.target_datetime == target,
            )
        )
    )
    rows = [
        prediction_row(model, view, panel, str(symbol), row, ids[symbol])
        for symbol, row in assets.iterrows()
        if ids[symbol] not in done
    ]
    if rows:
        session.execute(insert(Prediction), rows)
    report.written["predictions"] += len(rows)
    if len(rows) < len(assets):
        report.skipped.append(
            f"predictions: {len(assets) - len(rows)} of {model.name} already made for this hour"
        )


def _write_suggestions(
    session: Session,
    report: AnalysisReport,
    panel: MarketPanel,
    view: MarketView,
    assets: pd.DataFrame,
) -> None:
    model = assets.attrs["model"]
    expires = report.as_of + timedelta(hours=model.family.horizon)
    ids = _crypto_ids(session, list(assets.index))
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
        for kind, crypto_id, extra in _proposals(assets, ids, held, watchlist.max_assets or 25):
            if (watchlist.id, crypto_id, kind) in pending:
                continue
            symbol = symbols[crypto_id]
            prediction = assets.loc[symbol]
            rows.append(
                {
                    "watchlist_id": watchlist.id,
                    "crypto_id": crypto_id,
                    "suggestion_type": kind,
                    "ai_layer": 3,
                    "confidence_score": to_decimal(prediction["confidence"], 4),
                    "reasoning": {
                        "summary": _summary(kind, symbol, prediction, model.family.horizon),
                        "top_contributions": prediction["explanation"],
                        "model": model.name,
                        "model_version": model.version,
                    },
                    "context_data": market_context(view, panel, symbol),
                    "expected_return": to_decimal(
                        np.expm1(prediction["predicted_return"]) * 100, 4
                    ),
                    "risk_score": to_decimal(_risk(prediction["volatility_level"]), 4),
                    # The analysis hour, not the wall clock: a backfill dates its
                    # suggestions when they would have been made, and evaluation prices them.
                    "created_at": report.as_of,
                    "expires_at": expires,
                    **extra,
                }
            )
    if rows:
        session.execute(insert(AiSuggestion), rows)
    report.written["ai_suggestions"] += len(rows)


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


# ------------------------------------------------------------------------- layer 4


def _write_signals(
    session: Session,
    report: AnalysisReport,
    predictor: Predictor,
    panel: MarketPanel,
    view: MarketView,
) -> None:
    if predictor.models.get("timing") is None:
        report.skipped.append("trading_signals: no active timing model")
        return
    signals = predictor.signals(panel, view)
    if signals.empty:
        report.skipped.append(
            "trading_signals: no coin has a side with a positive expected return after fees"
        )
        return
    model = signals.attrs["model"]
    horizon = signals.attrs["horizon"]
    moment = report.as_of
    if session.scalar(select(TradingSignal.id).where(TradingSignal.generated_at == moment)):
        report.skipped.append("trading_signals: this hour is already analysed")
        return
    ids = _crypto_ids(session, list(signals.index))
    rows = [
        {
            "crypto_id": ids[symbol],
            "signal_type": row["signal_type"],
            "entry_price": to_decimal(row["entry_price"], 8),
            "target_price": to_decimal(row["target_price"], 8),
            "stop_loss": to_decimal(row["stop_loss"], 8),
            "confidence_score": to_decimal(row["confidence"], 4),
            "risk_level": row["risk_level"],
            "risk_reward_ratio": to_decimal(row["risk_reward_ratio"], 2),
            "time_horizon_hours": horizon,
            "ai_analysis": {
                "p_long": float(row["p_long"]),
                "p_short": float(row["p_short"]),
                "expected_r_multiple": float(row["expected_r"]),
                "model": model.name,
                "model_version": model.version,
            },
            "market_context": {"regime": view.regime, "model_versions": view.versions},
            "generated_at": moment,
            "expires_at": moment + timedelta(hours=horizon),
        }
        for symbol, row in signals.iterrows()
        # At 8 decimals a tiny ATR can round a barrier onto the entry, which the table's
        # price-order CHECK refuses: such a signal carries no usable target or stop.
        if len({to_decimal(row[k], 8) for k in ("entry_price", "target_price", "stop_loss")}) == 3
    ]
    if rows:
        signal_ids = session.scalars(insert(TradingSignal).returning(TradingSignal.id), rows).all()
        report.written["notifications"] += notify_watchers(session, signal_ids)
    report.written["trading_signals"] += len(rows)


# ------------------------------------------------------------------------- shared


def _stamp_models(session: Session, predictor: Predictor, report: AnalysisReport) -> None:
    for layer in ("macro", "sector", "asset", "timing"):
        for horizon in predictor.models.horizons(layer):
            loaded = predictor.models.get(layer, horizon)
            if loaded is not None:
                session.execute(
                    update(AiModel)
                    .where(AiModel.id == loaded.row_id)
                    .values(last_prediction=report.as_of)
                )


def _crypto_ids(session: Session, symbols: list[str]) -> dict[str, int]:
    rows = session.execute(
        select(Cryptocurrency.symbol, Cryptocurrency.id).where(Cryptocurrency.symbol.in_(symbols))
    )
    return {symbol: crypto_id for symbol, crypto_id in rows}


def _finite(values: dict[str, Any]) -> dict[str, float]:
    return {
        str(key): float(value)
        for key, value in values.items()
        if isinstance(value, int | float | np.floating) and np.isfinite(value)
    }


def _percent(log_return: Any) -> Decimal | None:
    if log_return is None or pd.isna(log_return):
        return None
    return to_decimal(min(9999.0, float(np.expm1(log_return) * 100)), 4)
