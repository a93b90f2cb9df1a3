"""The writers of `analyze`, one per table, looked up by the tables a family declares
(`ModelFamily.outputs`): a family writing to a table listed here needs no new writer."""

from __future__ import annotations

from serving.batch.writers.base import AnalysisReport, Hour, Writer
from serving.batch.writers.market import write_indicators, write_regime
from serving.batch.writers.predictions import write_predictions, write_suggestions
from serving.batch.writers.sectors import write_performance, write_rotation
from serving.batch.writers.signals import write_signals

WRITERS: dict[str, Writer] = {
    "market_regime_analysis": write_regime,
    "sector_performance": write_performance,
    "sector_rotation_analysis": write_rotation,
    "predictions": write_predictions,
    "ai_suggestions": write_suggestions,
    "trading_signals": write_signals,
}

__all__ = ["WRITERS", "AnalysisReport", "Hour", "Writer", "write_indicators"]
