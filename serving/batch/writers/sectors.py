"""Layer 2's tables: each sector's performance beside its forecast strength, and the rotation
from the weakest sector to the strongest."""

from __future__ import annotations

from math import erf

from sqlalchemy import select

from db.schema import CryptoSector, SectorPerformance, SectorRotationAnalysis
from models.families import TableOutput
from models.features import sector_log_returns
from serving.batch.writers.base import Hour, finite, percent
from serving.inference.prediction_rows import to_decimal
from serving.inference.predictor import Served

MONTH_HOURS = 720


def write_performance(hour: Hour, served: Served, output: TableOutput) -> None:
    """Reads `sector_return_24h`, `sector_return_168h`; every column goes into the metrics."""
    if hour.session.scalar(
        select(SectorPerformance.id).where(SectorPerformance.analysis_time == hour.as_of)
    ):
        hour.report.skipped.append(f"{output.table}: this hour is already analysed")
        return
    ids = _sector_ids(hour)
    sectors = served.frame.loc[served.frame.index.isin(list(ids))]
    month = sector_log_returns(hour.panel).loc[: hour.view.as_of].tail(MONTH_HOURS)
    month_returns = month.sum(min_count=1)
    for sector, row in sectors.iterrows():
        hour.session.add(
            SectorPerformance(
                sector_id=ids[str(sector)],
                performance_24h=percent(row.get(output.column("sector_return_24h"))),
                performance_7d=percent(row.get(output.column("sector_return_168h"))),
                performance_30d=percent(month_returns.get(sector)),
                performance_metrics={
                    **finite(row.to_dict()),
                    "model_version": served.model.version,
                },
                analysis_time=hour.as_of,
            )
        )
    hour.report.written[output.table] += len(sectors)


def write_rotation(hour: Hour, served: Served, output: TableOutput) -> None:
    """Reads `sector_strength`: from the weakest sector to the strongest, if there are two."""
    if hour.session.scalar(
        select(SectorRotationAnalysis.id).where(SectorRotationAnalysis.analysis_time == hour.as_of)
    ):
        hour.report.skipped.append(f"{output.table}: this hour is already analysed")
        return
    ids = _sector_ids(hour)
    frame = served.frame.loc[served.frame.index.isin(list(ids))]
    strength = frame[output.column("sector_strength")].dropna()
    if len(strength) < 2:
        return
    validation_rmse = served.model.performance.get("validation", {}).get("rmse")
    weakest, strongest = strength.idxmin(), strength.idxmax()
    spread = float(strength.max() - strength.min())
    rmse = float(validation_rmse or spread or 1.0)
    hour.session.add(
        SectorRotationAnalysis(
            from_sector_id=ids[str(weakest)],
            to_sector_id=ids[str(strongest)],
            rotation_strength=to_decimal(min(1.0, spread / (2 * rmse)), 4),
            # P(strongest out-earns weakest) if each forecast errs N(0, rmse^2).
            confidence_score=to_decimal(0.5 * (1 + erf(spread / (2 * rmse))), 4),
            rotation_indicators={
                "expected_relative_return": {str(k): float(v) for k, v in strength.items()},
                "model_version": served.model.version,
            },
            analysis_time=hour.as_of,
        )
    )
    hour.report.written[output.table] += 1


def _sector_ids(hour: Hour) -> dict[str, int]:
    rows = hour.session.execute(select(CryptoSector.name, CryptoSector.id))
    return {name: sector_id for name, sector_id in rows}
