"""How each model version does in production: realised accuracy and calibration.

Read from the evaluated `predictions` and written into the version's
`ai_models.performance_metrics["live"]`, beside the validation figures it was promoted on. A
version whose live accuracy or calibration falls clearly below validation raises a drift
alarm: a notification to every admin, with the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, case, cast, func, select
from sqlalchemy.orm import Session

from db.schema import AiModel, Notification, Prediction, User

N_BINS = 10
MIN_ROWS_FOR_ALARM = 50
ACCURACY_DROP = 0.10  # live accuracy rate this far below validation raises the alarm
ECE_LIMIT = 0.15  # expected calibration error of confidence_score above this raises it


@dataclass(frozen=True)
class DriftAlarm:
    name: str
    version: str
    reasons: list[str]


def _as_float(value: Any) -> float:
    return float(value) if value is not None else 0.0


def live_metrics(session: Session, name: str, version: str) -> dict[str, Any] | None:
    """Realised figures of one version's evaluated predictions; None if it has none."""
    realized = (
        Prediction.model_name == name,
        Prediction.model_version == version,
        Prediction.is_realized.is_(True),
    )
    hit = case((Prediction.is_accurate.is_(True), 1.0), else_=0.0)
    confidence = cast(Prediction.confidence_score, Float)
    moved = (Prediction.predicted_price - Prediction.input_price) * (
        Prediction.actual_price - Prediction.input_price
    )
    totals = session.execute(
        select(
            func.count(),
            func.avg(hit),
            func.avg(cast(Prediction.absolute_error * 100 / Prediction.actual_price, Float)),
            func.avg(case((moved > 0, 1.0), else_=0.0)),
            func.avg((confidence - hit) * (confidence - hit)),
            func.avg(confidence),
        ).where(*realized)
    ).one()
    count = int(totals[0])
    if count == 0:
        return None
    # Equal-width bins as a CASE ladder: the same SQL on both dialects, 1.0 in the last bin.
    bin_index = case(
        *[(confidence < (i + 1) / N_BINS, i) for i in range(N_BINS - 1)], else_=N_BINS - 1
    )
    bins = session.execute(
        select(bin_index, func.count(), func.avg(confidence), func.avg(hit))
        .where(*realized)
        .group_by(bin_index)
        .order_by(bin_index)
    ).all()
    reliability = [
        {
            "bin": int(index),
            "count": int(n),
            "mean_confidence": _as_float(mean_confidence),
            "observed_rate": _as_float(rate),
        }
        for index, n, mean_confidence, rate in bins
    ]
    ece = sum(b["count"] * abs(b["mean_confidence"] - b["observed_rate"]) for b in reliability)
    return {
        "n_evaluated": count,
        "accuracy_rate": _as_float(totals[1]),
        "mean_absolute_percentage_error": _as_float(totals[2]),
        "directional_accuracy": _as_float(totals[3]),
        "brier": _as_float(totals[4]),
        "mean_confidence": _as_float(totals[5]),
        "ece": ece / count,
        "reliability": reliability,
    }


def update_live_metrics(session: Session, evaluated_at: datetime) -> list[DriftAlarm]:
    """Refresh `performance_metrics["live"]` of every version with evaluated predictions."""
    versions = session.execute(
        select(Prediction.model_name, Prediction.model_version)
        .where(Prediction.is_realized.is_(True))
        .distinct()
    ).all()
    alarms = []
    for name, version in versions:
        row = session.scalars(
            select(AiModel).where(AiModel.name == name, AiModel.version == version)
        ).one_or_none()
        live = live_metrics(session, name, version)
        if row is None or live is None:
            continue
        live["updated_at"] = evaluated_at.isoformat()
        metrics = dict(row.performance_metrics or {})
        metrics["live"] = live
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
