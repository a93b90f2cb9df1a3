"""Layer 4's table: the trading signals worth entering at the hour, and their notifications."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select

from db.schema import TradingSignal
from models.families import TableOutput
from serving.batch.writers.base import Hour, crypto_ids
from serving.inference.prediction_rows import to_decimal
from serving.inference.predictor import Served
from serving.services.signal_alerts import notify_watchers

PRICES = ("entry_price", "target_price", "stop_loss")
PROBABILITIES = ("p_long", "p_short")


def write_signals(hour: Hour, served: Served, output: TableOutput) -> None:
    """Reads `signal_type`, the prices, `confidence`, `risk_level`, `risk_reward_ratio`,
    `expected_r` and the probabilities of both sides; the signal lasts the family's horizon."""
    moment = hour.as_of
    if hour.session.scalar(select(TradingSignal.id).where(TradingSignal.generated_at == moment)):
        hour.report.skipped.append(f"{output.table}: this hour is already analysed")
        return
    model, column = served.model, output.column
    horizon = model.family.horizon
    signals = served.frame
    ids = crypto_ids(hour.session, list(signals.index))
    context = {
        **hour.view.context(model.family.upstream),
        "model_versions": hour.view.versions,
    }
    rows = [
        {
            "crypto_id": ids[str(symbol)],
            "signal_type": row[column("signal_type")],
            **{price: to_decimal(row[column(price)], 8) for price in PRICES},
            "confidence_score": to_decimal(row[column("confidence")], 4),
            "risk_level": row[column("risk_level")],
            "risk_reward_ratio": to_decimal(row[column("risk_reward_ratio")], 2),
            "time_horizon_hours": horizon,
            "ai_analysis": {
                **{side: float(row[column(side)]) for side in PROBABILITIES},
                "expected_r_multiple": float(row[column("expected_r")]),
                "model": model.name,
                "model_version": model.version,
            },
            "market_context": context,
            "generated_at": moment,
            "expires_at": moment + timedelta(hours=horizon),
        }
        for symbol, row in signals.iterrows()
        # At 8 decimals a tiny ATR can round a barrier onto the entry, which the table's
        # price-order CHECK refuses: such a signal carries no usable target or stop.
        if len({to_decimal(row[column(price)], 8) for price in PRICES}) == 3
    ]
    if rows:
        ids_written = hour.session.scalars(
            insert(TradingSignal).returning(TradingSignal.id), rows
        ).all()
        hour.report.written["notifications"] += notify_watchers(hour.session, ids_written)
    hour.report.written[output.table] += len(rows)
