"""How each model version does in production: realised accuracy, calibration and interval
coverage.

Written into the version's `ai_models.performance_metrics["live"]`, beside the validation
figures it was promoted on. A version whose live accuracy or calibration falls clearly below
validation, or whose price intervals hold the actual price clearly less often than their
level says, raises a drift alarm: a notification to every admin, with the numbers.

Whether a realised price fell inside its forecast's interval (`predicted_value` `lower` and
`upper`, both inclusive) follows from the stored row, which never changes once realised; the
API returns it as `within_interval`, and the sums here count it.

The figures are kept incrementally. Beside them, `performance_metrics["live_sums"]` holds the
running sums they are made of (counts and sums per reliability bin), and each run folds in
only the rows it evaluated itself (`LiveSums.query` over those rows), so a run costs what it
evaluates, not the version's whole history. The registry starts every new version with empty
sums (it has no predictions yet). A version without stored sums (a row written by an older
release or by hand, perhaps after some of its predictions were evaluated) is aggregated over
all of its realized predictions once instead. Realized rows never change again, so the sums
stay exact; the figures equal a full re-aggregation up to floating-point summation order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Float, FromClause, Select, case, cast, func, select
from sqlalchemy.orm import Session

from db.schema import AiModel, Notification, Prediction, User
from training.live_ranking import RANK_SUMS_KEY, RankSums

N_BINS = 10
MIN_ROWS_FOR_ALARM = 50
ACCURACY_DROP = 0.10  # live accuracy rate this far below validation raises the alarm
ECE_LIMIT = 0.15  # expected calibration error of confidence_score above this raises it
COVERAGE_DROP = 0.10  # live interval coverage this far below the nominal level raises it
LIVE_SUMS_KEY = "live_sums"  # performance_metrics key of the running sums

# What a source of evaluated rows must provide, by Prediction's column names.
SOURCE_COLUMNS = (
    Prediction.model_name,
    Prediction.model_version,
    Prediction.is_accurate,
    Prediction.confidence_score,
    Prediction.absolute_error,
    Prediction.actual_price,
    Prediction.predicted_price,
    Prediction.input_price,
    Prediction.predicted_value["lower"].as_float().label("interval_lower"),
    Prediction.predicted_value["upper"].as_float().label("interval_upper"),
    Prediction.predicted_value["level"].as_float().label("interval_level"),
)

# The additive parts of one reliability bin, in the order `LiveSums.query` selects them.
BIN_FIELDS = (
    "n",  # rows
    "hits",  # rows with is_accurate
    "directional",  # rows whose price moved the predicted way
    "n_directional",  # rows with a predicted move and a realised one (persistence has none)
    "n_ape",  # rows with an absolute percentage error
    "ape",  # sum of absolute percentage errors
    "n_confidence",  # rows with a confidence_score
    "confidence",  # sum of confidence_score
    "brier",  # sum of (confidence_score - hit)^2
    "n_interval",  # rows with a price interval
    "covered",  # rows whose actual price lay inside it
    "interval_width",  # sum of its widths, percent of the input price
    "interval_level",  # sum of its nominal levels
)


@dataclass(frozen=True)
class DriftAlarm:
    name: str
    version: str
    reasons: list[str]


@dataclass
class LiveSums:
    """The running sums behind one version's live figures, per reliability bin."""

    bins: dict[int, dict[str, float]] = field(default_factory=dict)

    @staticmethod
    def query(source: FromClause) -> Select[Any]:
        """Sums per (model_name, model_version, bin) over `source`'s rows."""
        c = source.c
        hit = case((c.is_accurate.is_(True), 1.0), else_=0.0)
        confidence = cast(c.confidence_score, Float)
        moved = (c.predicted_price - c.input_price) * (c.actual_price - c.input_price)
        ape = cast(c.absolute_error * 100 / c.actual_price, Float)
        has_interval = c.interval_lower.is_not(None) & c.interval_upper.is_not(None)
        inside = has_interval & (c.interval_lower <= c.actual_price)
        inside = inside & (c.actual_price <= c.interval_upper)
        width = cast((c.interval_upper - c.interval_lower) * 100 / c.input_price, Float)
        # Equal-width bins as a CASE ladder: the same SQL on both dialects, 1.0 in the last bin.
        bin_index = case(
            *[(confidence < (i + 1) / N_BINS, i) for i in range(N_BINS - 1)], else_=N_BINS - 1
        )
        return select(
            c.model_name,
            c.model_version,
            bin_index,
            func.count(),
            func.sum(hit),
            func.sum(case((moved > 0, 1.0), else_=0.0)),
            func.sum(case((moved != 0, 1.0), else_=0.0)),
            func.count(ape),
            func.sum(ape),
            func.count(confidence),
            func.sum(confidence),
            func.sum((confidence - hit) * (confidence - hit)),
            func.sum(case((has_interval, 1.0), else_=0.0)),
            func.sum(case((inside, 1.0), else_=0.0)),
            func.sum(case((has_interval, width), else_=0.0)),
            func.sum(case((has_interval, c.interval_level), else_=0.0)),
        ).group_by(c.model_name, c.model_version, bin_index)

    @classmethod
    def by_version(cls, rows: Iterable[Any]) -> dict[tuple[str, str], LiveSums]:
        """The rows of `query`, gathered per (model_name, model_version)."""
        sums: dict[tuple[str, str], LiveSums] = {}
        for name, version, index, *values in rows:
            parts = sums.setdefault((name, version), cls())
            parts.bins[int(index)] = {
                key: float(value or 0) for key, value in zip(BIN_FIELDS, values, strict=True)
            }
        return sums

    def add(self, other: LiveSums) -> LiveSums:
        bins = {index: dict(parts) for index, parts in self.bins.items()}
        for index, parts in other.bins.items():
            mine = bins.setdefault(index, dict.fromkeys(BIN_FIELDS, 0.0))
            for key in BIN_FIELDS:
                mine[key] += parts[key]
        return LiveSums(bins)

    def to_json(self) -> dict[str, dict[str, float]]:
        return {str(index): dict(parts) for index, parts in sorted(self.bins.items())}

    @classmethod
    def from_json(cls, stored: Any) -> LiveSums | None:
        """Sums as `to_json` wrote them (`{}`: none yet); None when absent or malformed."""
        if not isinstance(stored, dict):
            return None
        try:
            return cls(
                {
                    int(index): {key: float(parts[key]) for key in BIN_FIELDS}
                    for index, parts in stored.items()
                }
            )
        except (KeyError, TypeError, ValueError):
            return None

    def figures(self) -> dict[str, Any] | None:
        """The live figures these sums make; None when they count no row."""
        total = dict.fromkeys(BIN_FIELDS, 0.0)
        for parts in self.bins.values():
            for key in BIN_FIELDS:
                total[key] += parts[key]
        count = int(total["n"])
        if count == 0:
            return None
        reliability = [
            {
                "bin": index,
                "count": int(parts["n"]),
                "mean_confidence": _ratio(parts["confidence"], parts["n_confidence"]),
                "observed_rate": _ratio(parts["hits"], parts["n"]),
            }
            for index, parts in sorted(self.bins.items())
            if parts["n"] > 0
        ]
        ece = sum(b["count"] * abs(b["mean_confidence"] - b["observed_rate"]) for b in reliability)
        return {
            "n_evaluated": count,
            "accuracy_rate": _ratio(total["hits"], total["n"]),
            "mean_absolute_percentage_error": _ratio(total["ape"], total["n_ape"]),
            "directional_accuracy": (
                _ratio(total["directional"], total["n_directional"])
                if total["n_directional"]
                else None
            ),
            "brier": _ratio(total["brier"], total["n_confidence"]),
            "mean_confidence": _ratio(total["confidence"], total["n_confidence"]),
            "ece": ece / count,
            "reliability": reliability,
            **_interval_figures(total),
        }


def _interval_figures(total: dict[str, float]) -> dict[str, Any]:
    """Coverage beside the nominal level, and the mean width; nothing before intervals."""
    count = total["n_interval"]
    if not count:
        return {}
    return {
        "n_interval": int(count),
        "interval_level": total["interval_level"] / count,
        "interval_coverage": total["covered"] / count,
        "interval_width_pct": total["interval_width"] / count,
    }


def _ratio(total: float, count: float) -> float:
    return total / count if count else 0.0


def history_sums(session: Session, name: str, version: str) -> LiveSums:
    """The sums over every realized prediction of one version."""
    realized = (
        select(*SOURCE_COLUMNS)
        .where(
            Prediction.model_name == name,
            Prediction.model_version == version,
            Prediction.is_realized.is_(True),
        )
        .subquery()
    )
    sums = LiveSums.by_version(session.execute(LiveSums.query(realized)))
    return sums.get((name, version), LiveSums())


def live_metrics(session: Session, name: str, version: str) -> dict[str, Any] | None:
    """Realised figures of one version's evaluated predictions, from its whole history;
    None if it has none."""
    return history_sums(session, name, version).figures()


def update_live_metrics(
    session: Session,
    evaluated_at: datetime,
    evaluated: dict[tuple[str, str], LiveSums],
    ranked: dict[tuple[str, str], RankSums] | None = None,
) -> list[DriftAlarm]:
    """Fold this run's evaluated rows (`evaluated`, per version; `ranked`, the rank-IC sums
    of the hours it realised) into each version's `performance_metrics["live"]`; versions
    this run did not touch are left as they are.

    The `ai_models` rows are locked in a fixed order, so two runs at once fold in turn.
    """
    alarms = []
    for name, version in sorted(evaluated):
        row = session.scalars(
            select(AiModel)
            .where(AiModel.name == name, AiModel.version == version)
            .with_for_update()
        ).one_or_none()
        if row is None:
            continue
        metrics = dict(row.performance_metrics or {})
        stored = LiveSums.from_json(metrics.get(LIVE_SUMS_KEY))
        # The history already holds this run's rows (same transaction).
        sums = (
            history_sums(session, name, version)
            if stored is None
            else stored.add(evaluated[(name, version)])
        )
        live = sums.figures()
        if live is None:
            continue
        rank_sums = RankSums.from_json(metrics.get(RANK_SUMS_KEY)).add(
            (ranked or {}).get((name, version), RankSums())
        )
        live.update(rank_sums.figures())
        live["updated_at"] = evaluated_at.isoformat()
        metrics["live"] = live
        metrics[LIVE_SUMS_KEY] = sums.to_json()
        metrics[RANK_SUMS_KEY] = rank_sums.to_json()
        row.performance_metrics = metrics
        reasons = _drift_reasons(metrics)
        if reasons:
            alarms.append(DriftAlarm(name, version, reasons))
    for alarm in alarms:
        _notify_admins(session, alarm)
    return alarms


def _drift_reasons(metrics: dict[str, Any]) -> list[str]:
    live = metrics["live"]
    if live["n_evaluated"] < MIN_ROWS_FOR_ALARM:
        return []
    reasons = []
    validated = metrics.get("validation", {}).get("accuracy_rate")
    if validated is not None and live["accuracy_rate"] < validated - ACCURACY_DROP:
        reasons.append(
            f"live accuracy rate {live['accuracy_rate']:.3f} is below validation "
            f"{validated:.3f} by more than {ACCURACY_DROP}"
        )
    if live["ece"] > ECE_LIMIT:
        reasons.append(f"confidence calibration error (ECE) {live['ece']:.3f} exceeds {ECE_LIMIT}")
    covered, level = live.get("interval_coverage"), live.get("interval_level")
    enough = live.get("n_interval", 0) >= MIN_ROWS_FOR_ALARM
    if enough and covered is not None and covered < level - COVERAGE_DROP:
        reasons.append(
            f"live interval coverage {covered:.3f} is below its level {level:.2f} by more "
            f"than {COVERAGE_DROP} over {live['n_interval']} predictions"
        )
    return reasons


def _notify_admins(session: Session, alarm: DriftAlarm) -> None:
    admins = session.scalars(
        select(User.id).where(User.role == "admin", User.is_active.is_(True))
    ).all()
    for admin in admins:
        session.add(
            Notification(
                user_id=admin,
                notification_type="alert",
                title=f"Model drift: {alarm.name} v{alarm.version}",
                message="; ".join(alarm.reasons),
                data={"model": alarm.name, "version": alarm.version, "reasons": alarm.reasons},
                priority="high",
            )
        )
