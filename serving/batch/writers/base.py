"""What the writers of one analysed hour share: the hour itself, its report, row helpers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.schema import Cryptocurrency
from models.families import TableOutput
from models.panel import MarketPanel
from serving.inference.prediction_rows import to_decimal
from serving.inference.predictor import MarketView, Served


@dataclass
class AnalysisReport:
    as_of: datetime
    written: Counter[str] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Hour:
    """One analysed hour: the transaction its rows go into, the market, the context view,
    and the market's indicators at the hour (`models.features.market_features`, finite)."""

    session: Session
    panel: MarketPanel
    view: MarketView
    report: AnalysisReport
    indicators: dict[str, float]

    @property
    def as_of(self) -> datetime:
        return self.report.as_of


# Writes a family's served frame to one table, as the family's `TableOutput` maps it.
Writer = Callable[[Hour, Served, TableOutput], None]


def crypto_ids(session: Session, symbols: list[str]) -> dict[str, int]:
    rows = session.execute(
        select(Cryptocurrency.symbol, Cryptocurrency.id).where(Cryptocurrency.symbol.in_(symbols))
    )
    return {symbol: crypto_id for symbol, crypto_id in rows}


def finite(values: dict[Any, Any]) -> dict[str, float]:
    """The finite numbers of `values`, as floats under string keys (for JSON columns)."""
    return {
        str(key): float(value)
        for key, value in values.items()
        if isinstance(value, int | float | np.floating) and np.isfinite(value)
    }


def percent(log_return: Any) -> Decimal | None:
    if log_return is None or pd.isna(log_return):
        return None
    return to_decimal(min(9999.0, float(np.expm1(log_return) * 100)), 4)
