"""`cryptopredict analyze`: run the active models at one hour and write every layer table.

One loop over the registered families, top-down: each active version line serves
(`Predictor.serve`) and its frame goes to the tables the family declares, each by the writer
`serving.batch.writers` keeps for it. The market's indicators, from the candles alone, are written
whatever is active.

All rows of one analysis are written in one transaction. An hour already analysed by the same
model versions is not written twice, so a cron job or a backfill can be re-run safely.
"""

from __future__ import annotations

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from db.schema import AiModel
from models.families import FAMILIES
from models.features import market_features
from models.panel import MarketPanel
from serving.batch.writers import WRITERS, AnalysisReport, Hour, write_indicators
from serving.batch.writers.base import finite
from serving.inference.predictor import Predictor, recent

__all__ = ["AnalysisReport", "analyze"]


def analyze(engine: Engine, predictor: Predictor, panel: MarketPanel) -> AnalysisReport:
    """Analyse the panel's last hour with every active model; write what each layer says."""
    panel = recent(panel, predictor.history_hours())
    view = predictor.market_view(panel)
    report = AnalysisReport(as_of=view.as_of.to_pydatetime())
    indicators = finite(market_features(panel).loc[view.as_of].to_dict())
    with Session(engine) as session, session.begin():
        hour = Hour(session, panel, view, report, indicators)
        write_indicators(hour)
        for layer in FAMILIES:
            _write_layer(hour, predictor, layer)
        _stamp_models(session, predictor, report)
    return report


def _write_layer(hour: Hour, predictor: Predictor, layer: str) -> None:
    """Every active line of `layer` to the family's tables (some by its primary line only)."""
    family = FAMILIES[layer]
    primary = predictor.models.get(layer)
    if primary is None:
        tables = " and ".join(output.table for output in family.outputs)
        hour.report.skipped.append(f"{tables}: no active {layer} model")
        return
    for horizon in predictor.models.horizons(layer):
        served = predictor.serve(hour.panel, hour.view, layer, horizon)
        is_primary = served.model.row_id == primary.row_id
        outputs = [output for output in family.outputs if is_primary or not output.primary_only]
        if served.frame.empty:
            tables = ", ".join(output.table for output in outputs)
            hour.report.skipped.append(f"{tables}: {family.empty_reason}")
            continue
        for output in outputs:
            WRITERS[output.table](hour, served, output)


def _stamp_models(session: Session, predictor: Predictor, report: AnalysisReport) -> None:
    for layer in FAMILIES:
        for horizon in predictor.models.horizons(layer):
            loaded = predictor.models.get(layer, horizon)
            if loaded is not None:
                session.execute(
                    update(AiModel)
                    .where(AiModel.id == loaded.row_id)
                    .values(last_prediction=report.as_of)
                )
