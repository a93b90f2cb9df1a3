"""How well each version's served ranking of coins holds up live: per-hour rank IC.

A forecast shrunk to persistence predicts no move, yet its ranking of the coins of an hour is
what suggestions rest on, so the nightly evaluation scores the ranking too: for every
analysed hour (predictions of one version sharing a target time), the Spearman correlation
across coins between the served `rank_score` and the realised log return, and beside it the
same for the best one-line factor's score the version served with (`factor_score`). Rows
written before rank scores were stored fall back to the forecast return itself.

Like the other live figures, these are kept as running sums in `performance_metrics`
(`RANK_SUMS_KEY`); each run adds the hours it evaluated. The predictions of one analysed
hour share their target time, so they are realised by the same run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, astuple, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.schema import Prediction
from models.skill import cross_sectional_rank_ic

RANK_SUMS_KEY = "live_rank_sums"


@dataclass
class RankSums:
    """Sums of per-hour rank ICs of the served ranking, and of its difference to the factor's."""

    hours: int = 0
    ic: float = 0.0
    ic_squared: float = 0.0
    compared_hours: int = 0
    factor_ic: float = 0.0
    difference: float = 0.0
    difference_squared: float = 0.0

    def add(self, other: RankSums) -> RankSums:
        return RankSums(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_json(cls, stored: Any) -> RankSums:
        """Sums as `to_json` wrote them; empty sums when absent or malformed."""
        try:
            return cls(**{key: stored[key] for key in asdict(cls())})
        except (KeyError, TypeError):
            return cls()

    def figures(self) -> dict[str, Any]:
        """Mean per-hour rank IC and its IR, and the same for the difference to the factor."""
        if self.hours == 0:
            return {}
        figures: dict[str, Any] = {"rank_ic": self.ic / self.hours, "rank_ic_hours": self.hours}
        figures["icir"] = _ratio_to_sd(self.ic, self.ic_squared, self.hours)
        if self.compared_hours:
            n = self.compared_hours
            figures["factor_rank_ic"] = self.factor_ic / n
            figures["rank_ic_minus_factor"] = self.difference / n
            figures["rank_ic_minus_factor_ir"] = _ratio_to_sd(
                self.difference, self.difference_squared, n
            )
        return figures


def _ratio_to_sd(total: float, squares: float, n: int) -> float | None:
    """mean / sd from running sums; None below two values or without spread."""
    if n < 2:
        return None
    mean = total / n
    variance = (squares - n * mean * mean) / (n - 1)
    return None if variance <= 1e-18 else mean / math.sqrt(variance)


def run_rank_sums(session: Session, evaluated_at: datetime) -> dict[tuple[str, str], RankSums]:
    """Rank-IC sums per version over the predictions this run evaluated (stamped evaluated_at)."""
    rows = session.execute(
        select(
            Prediction.model_name,
            Prediction.model_version,
            Prediction.target_datetime,
            Prediction.crypto_id,
            Prediction.input_price,
            Prediction.actual_price,
            Prediction.predicted_value,
        ).where(Prediction.evaluated_at == evaluated_at, Prediction.is_realized.is_(True))
    ).all()
    if not rows:
        return {}
    frame = pd.DataFrame(
        rows, columns=["name", "version", "timestamp", "entity", "input", "actual", "value"]
    )
    frame["outcome"] = np.log(frame["actual"].astype(float) / frame["input"].astype(float))
    frame["ranking"] = [_score(value, "rank_score") for value in frame["value"]]
    frame["factor"] = [_score(value, "factor_score", None) for value in frame["value"]]
    return {
        (str(name), str(version)): _sums(group.set_index(["timestamp", "entity"]))
        for (name, version), group in frame.groupby(["name", "version"])
    }


def _score(value: Any, key: str, fallback: str | None = "predicted_log_return") -> float:
    """A score from `predicted_value`; the forecast return for rows older than rank scores."""
    if not isinstance(value, dict):
        return math.nan
    chosen = value.get(key, value.get(fallback) if fallback else None)
    return math.nan if chosen is None else float(chosen)


def _sums(rows: pd.DataFrame) -> RankSums:
    served = cross_sectional_rank_ic(rows["ranking"], rows["outcome"])
    factor = cross_sectional_rank_ic(rows["factor"], rows["outcome"])
    both = pd.concat([served.rename("served"), factor.rename("factor")], axis=1).dropna()
    difference = both["served"] - both["factor"]
    return RankSums(
        hours=len(served),
        ic=float(served.sum()),
        ic_squared=float((served**2).sum()),
        compared_hours=len(both),
        factor_ic=float(both["factor"].sum()),
        difference=float(difference.sum()),
        difference_squared=float((difference**2).sum()),
    )
