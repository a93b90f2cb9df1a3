"""Layer 1's tables: the regime the macro family serves, and the market's indicators.

The indicators (sentiment, dominance, macro indicators) come from the candles alone, so they
are written at every analysed hour, whether or not a model is active.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import insert, select

from db.schema import (
    DominanceData,
    MacroIndicator,
    MarketRegimeAnalysis,
    MarketSentimentData,
)
from models.families import TableOutput
from models.features import MARKET_FEATURES
from serving.batch.writers.base import Hour
from serving.inference.prediction_rows import to_decimal
from serving.inference.predictor import Served

DOMINANCE_FEATURES = {"btc_dominance", "eth_dominance"}


def write_regime(hour: Hour, served: Served, output: TableOutput) -> None:
    """Reads `regime`, `confidence` and, into `analysis_data`, every other column."""
    if hour.session.scalar(
        select(MarketRegimeAnalysis.id).where(MarketRegimeAnalysis.analysis_time == hour.as_of)
    ):
        hour.report.skipped.append(f"{output.table}: this hour is already analysed")
        return
    row = served.frame.iloc[0]
    hour.session.add(
        MarketRegimeAnalysis(
            regime=row[output.column("regime")],
            confidence_score=to_decimal(row[output.column("confidence")], 4),
            indicators=hour.indicators,
            analysis_data={**_plain(row), "model_version": served.model.version},
            analysis_time=hour.as_of,
        )
    )
    hour.report.written[output.table] += 1


def write_indicators(hour: Hour) -> None:
    """Sentiment (the price-derived fear & greed proxy), dominance and macro indicators."""
    moment = hour.as_of
    if hour.session.scalar(
        select(MarketSentimentData.id).where(MarketSentimentData.timestamp == moment)
    ):
        hour.report.skipped.append("market tables: this hour is already analysed")
        return
    indicators = hour.indicators
    written = hour.report.written
    if "fear_greed" in indicators:
        hour.session.add(
            MarketSentimentData(
                fear_greed_index=to_decimal(indicators["fear_greed"], 2),
                social_sentiment=None,  # no social data source; see README
                sentiment_sources={"fear_greed": "price-derived proxy (models.features)"},
                analysis_metrics=indicators,
                timestamp=moment,
            )
        )
        written["market_sentiment_data"] += 1
    btc, eth = indicators.get("btc_dominance"), indicators.get("eth_dominance")
    if btc is not None and eth is not None:
        hour.session.add(
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
        written["dominance_data"] += 1
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
        hour.session.execute(insert(MacroIndicator), rows)
        written["macro_indicators"] += len(rows)


def _plain(row: pd.Series) -> dict[str, Any]:
    """A served row as JSON values: numbers as floats, the rest as they are."""
    return {
        str(key): float(value) if isinstance(value, int | float) else value
        for key, value in row.items()
    }
