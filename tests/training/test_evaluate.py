"""The evaluation job: exact numbers, boundaries, missing and late candles, idempotence,
as-of backfills and two runs at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from builders import coin
from db.engine import make_engine
from db.schema import Prediction, PriceData, SystemHealth
from training.evaluate import evaluate
from training.live_metrics import LIVE_SUMS_KEY

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def candle(session: Session, crypto_id: int, hour: datetime, close: str) -> None:
    price = Decimal(close)
    session.add(
        PriceData(
            crypto_id=crypto_id,
            timestamp=hour,
            open_price=price,
            high_price=price,
            low_price=price,
            close_price=price,
        )
    )


def prediction(
    session: Session,
    crypto_id: int,
    predicted: str,
    target: datetime,
    threshold: str = "5.0",
    interval: tuple[float, float] | None = None,
) -> Prediction:
    """A due asset forecast; with `interval`, the (lower, upper) prices of an 80 % one."""
    value = None if interval is None else {"lower": interval[0], "upper": interval[1], "level": 0.8}
    row = Prediction(
        predicted_value=value,
        crypto_id=crypto_id,
        model_name="asset_price",
        model_version="1",
        predicted_price=Decimal(predicted),
        confidence_score=Decimal("0.5"),
        prediction_horizon=24,
        target_datetime=target,
        input_price=Decimal("100"),
        accuracy_threshold=Decimal(threshold),
    )
    session.add(row)
    return row


@pytest.fixture
def btc(engine: Engine) -> int:
    with engine.begin() as connection:
        return coin(connection, "BTC")


def results(engine: Engine) -> dict[str, tuple]:
    with Session(engine) as session:
        rows = session.scalars(select(Prediction).order_by(Prediction.id)).all()
        return {
            f"{float(row.predicted_price):g}": (
                row.is_realized,
                None if row.actual_price is None else float(row.actual_price),
                None if row.absolute_error is None else float(row.absolute_error),
                None if row.squared_error is None else float(row.squared_error),
                None if row.accuracy_percentage is None else float(row.accuracy_percentage),
                row.is_accurate,
            )
            for row in rows
        }


def test_exact_numbers_and_boundaries(engine: Engine, btc: int) -> None:
    with Session(engine) as session, session.begin():
        candle(session, btc, T0, "100")
        prediction(session, btc, "104", T0)  # 4 % off: accurate
        prediction(session, btc, "105", T0)  # exactly at the 5 % threshold: accurate
        prediction(session, btc, "105.01", T0)  # just past it
        prediction(session, btc, "350", T0)  # 250 % off: accuracy -150
        prediction(session, btc, "5000", T0)  # 4900 % off: accuracy floored at -999.99

    summary = evaluate(engine, as_of=T0 + timedelta(hours=1))

    assert summary.evaluated == 5
    got = results(engine)
    assert got["104"] == (True, 100.0, 4.0, 16.0, 96.0, True)
    assert got["105"] == (True, 100.0, 5.0, 25.0, 95.0, True)
    assert got["105.01"][5] is False
    assert got["105.01"][4] == pytest.approx(94.99)
    assert got["350"] == (True, 100.0, 250.0, 62500.0, -150.0, False)
    assert got["5000"][4] == -999.99


def test_missing_candles_wait_and_late_candles_are_evaluated_later(
    engine: Engine, btc: int
) -> None:
    later = T0 + timedelta(hours=5)
    with Session(engine) as session, session.begin():
        candle(session, btc, T0, "100")
        prediction(session, btc, "101", T0)
        prediction(session, btc, "102", later)  # its candle is not stored yet
        prediction(session, btc, "103", T0 + timedelta(days=30))  # not due

    first = evaluate(engine, as_of=later)
    with Session(engine) as session, session.begin():
        candle(session, btc, later, "110")  # the late candle arrives
    second = evaluate(engine, as_of=later)

    assert (first.evaluated, first.waiting_for_candle, first.not_yet_due) == (1, 1, 1)
    assert (second.evaluated, second.waiting_for_candle, second.not_yet_due) == (1, 0, 1)
    assert results(engine)["102"][1] == 110.0


def test_a_second_run_changes_nothing(engine: Engine, btc: int) -> None:
    with Session(engine) as session, session.begin():
        candle(session, btc, T0, "100")
        prediction(session, btc, "99", T0)
    evaluate(engine, as_of=T0)
    before = results(engine)

    again = evaluate(engine, as_of=T0)

    assert again.evaluated == 0
    assert results(engine) == before
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(SystemHealth)) == 2


def test_as_of_backfills_only_what_was_due_then(engine: Engine, btc: int) -> None:
    with Session(engine) as session, session.begin():
        for day in range(3):
            candle(session, btc, T0 + timedelta(days=day), "100")
            prediction(session, btc, f"10{day}", T0 + timedelta(days=day))

    summary = evaluate(engine, as_of=T0 + timedelta(days=1))

    assert summary.evaluated == 2
    assert [value[0] for value in results(engine).values()] == [True, True, False]


def test_dry_run_reports_and_writes_nothing(engine: Engine, btc: int) -> None:
    with Session(engine) as session, session.begin():
        candle(session, btc, T0, "100")
        prediction(session, btc, "101", T0)

    summary = evaluate(engine, as_of=T0, dry_run=True)

    assert summary.evaluated == 1
    assert results(engine)["101"][0] is False
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(SystemHealth)) == 0


def _evaluate_in_process(url: str, start: multiprocessing.synchronize.Barrier) -> int:
    engine = make_engine(url)
    start.wait()
    count = evaluate(engine, as_of=T0 + timedelta(days=400)).evaluated
    engine.dispose()
    return count


def _two_thousand_due(engine: Engine, registered: bool = False) -> None:
    """2,000 hourly candles of a new coin and a due prediction at each (its version in
    ai_models if `registered`)."""
    with engine.begin() as connection:
        btc = coin(connection, "BTC")
    with Session(engine) as session, session.begin():
        if registered:
            _register(session, "1")
        for hour in range(2000):
            moment = T0 + timedelta(hours=hour)
            candle(session, btc, moment, "100")
            predicted = 100 + hour % 7
            # Inside for 3 of every 7 rows; one in three rows has no interval.
            interval = None if hour % 3 == 0 else (predicted - 2.0, predicted + 2.5)
            prediction(session, btc, str(predicted), moment, interval=interval)


def _evaluate_twice_at_once(url: str) -> list[int]:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(2)
        with context.Pool(2) as pool:
            return pool.starmap(_evaluate_in_process, [(url, start)] * 2)


@pytest.mark.postgres
def test_two_runs_at_once_evaluate_each_row_exactly_once(
    pg_engine: Engine, postgres_url: str
) -> None:
    _two_thousand_due(pg_engine)

    counts = _evaluate_twice_at_once(postgres_url)

    assert sum(counts) == 2000
    with Session(pg_engine) as session:
        realized = session.scalar(
            select(func.count()).select_from(Prediction).where(Prediction.is_realized.is_(True))
        )
    assert realized == 2000


def test_live_metrics_and_drift_alarm_on_a_constructed_set(engine: Engine, btc: int) -> None:
    from builders import user
    from db.schema import AiModel, Notification

    with engine.begin() as connection:
        admin = user(connection, "admin@example.com", role="admin")
    with Session(engine) as session, session.begin():
        session.add(
            AiModel(
                name="asset_price",
                version="1",
                model_type="asset",
                status="active",
                performance_metrics={"validation": {"accuracy_rate": 0.9}},
            )
        )
        for hour in range(100):
            moment = T0 + timedelta(hours=hour)
            # Half the candles land within 5 % of the 102 predicted, half 7.3 % away.
            candle(session, btc, moment, "101" if hour % 2 == 0 else "110")
            row = prediction(session, btc, "102", moment)
            row.confidence_score = Decimal("0.85")

    summary = evaluate(engine, as_of=T0 + timedelta(days=10))

    with Session(engine) as session:
        live = session.scalars(select(AiModel)).one().performance_metrics["live"]
        alerts = session.scalars(select(Notification)).all()
    assert live["n_evaluated"] == 100
    assert live["accuracy_rate"] == pytest.approx(0.5)
    assert live["directional_accuracy"] == pytest.approx(1.0)
    assert live["mean_absolute_percentage_error"] == pytest.approx((100 / 101 + 800 / 110) / 2)
    assert live["brier"] == pytest.approx(0.5 * 0.15**2 + 0.5 * 0.85**2)
    assert live["ece"] == pytest.approx(0.35)
    assert [(b["bin"], b["count"]) for b in live["reliability"]] == [(8, 100)]
    assert len(summary.drift_alarms) == 1
    assert [(a.user_id, a.notification_type, a.priority) for a in alerts] == [
        (admin, "alert", "high")
    ]
    assert "accuracy rate 0.500" in alerts[0].message
    assert "(ECE) 0.350" in alerts[0].message


def _ohlc(
    session: Session, crypto_id: int, hour: datetime, high: str, low: str, close: str
) -> None:
    session.add(
        PriceData(
            crypto_id=crypto_id,
            timestamp=hour,
            open_price=Decimal(close),
            high_price=Decimal(high),
            low_price=Decimal(low),
            close_price=Decimal(close),
        )
    )


def test_suggestions_get_the_return_of_their_action_and_stale_ones_expire(
    engine: Engine, btc: int
) -> None:
    from builders import default_watchlist_id
    from db.schema import AiSuggestion

    end = T0 + timedelta(hours=24)
    with engine.begin() as connection:
        default = default_watchlist_id(connection)
    with Session(engine) as session, session.begin():
        candle(session, btc, T0, "100")
        candle(session, btc, end, "110")  # the coin rose 10 %
        for kind, status in (("add", "pending"), ("remove", "approved")):
            session.add(
                AiSuggestion(
                    watchlist_id=default,
                    crypto_id=btc,
                    suggestion_type=kind,
                    ai_layer=3,
                    confidence_score=Decimal("0.6"),
                    reasoning={},
                    expected_return=Decimal("2"),
                    status=status,
                    created_at=T0,
                    expires_at=end,
                )
            )

    summary = evaluate(engine, as_of=end)

    with Session(engine) as session:
        rows = {s.suggestion_type: s for s in session.scalars(select(AiSuggestion))}
    assert (summary.suggestions_priced, summary.suggestions_expired) == (2, 1)
    assert float(rows["add"].actual_return) == pytest.approx(10.0)
    assert float(rows["remove"].actual_return) == pytest.approx(-10.0)
    assert float(rows["add"].success_score) == pytest.approx(0.5 + 0.5 * math.tanh(5), abs=1e-4)
    assert float(rows["remove"].success_score) < 0.01
    assert (rows["add"].status, rows["remove"].status) == ("expired", "approved")


def test_v_ai_performance_agrees_with_the_evaluated_suggestions(engine: Engine, btc: int) -> None:
    """The view's 30-day figures per layer are the means of what the evaluation wrote."""
    from builders import default_watchlist_id
    from db.schema import AiSuggestion

    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    end = start + timedelta(hours=24)
    with engine.begin() as connection:
        default = default_watchlist_id(connection)
    with Session(engine) as session, session.begin():
        candle(session, btc, start, "100")
        candle(session, btc, end, "104")
        for kind, layer, expected in (("add", 3, "2"), ("remove", 3, "-1"), ("add", 2, "8")):
            session.add(
                AiSuggestion(
                    watchlist_id=default,
                    crypto_id=btc,
                    suggestion_type=kind,
                    ai_layer=layer,
                    confidence_score=Decimal("0.7"),
                    reasoning={},
                    expected_return=Decimal(expected),
                    created_at=start,
                    expires_at=end,
                )
            )
    evaluate(engine, as_of=end)

    with Session(engine) as session:
        written = session.execute(
            select(AiSuggestion.ai_layer, AiSuggestion.actual_return, AiSuggestion.success_score)
        ).all()
    with engine.connect() as connection:
        view = {
            row.ai_layer: row
            for row in connection.execute(text("SELECT * FROM v_ai_performance")).all()
        }
    assert set(view) == {2, 3}
    for layer, row in view.items():
        returns = [float(r.actual_return) for r in written if r.ai_layer == layer]
        scores = [float(r.success_score) for r in written if r.ai_layer == layer]
        assert row.total_suggestions == len(returns)
        assert float(row.avg_actual_return) == pytest.approx(sum(returns) / len(returns))
        assert float(row.avg_success_score) == pytest.approx(sum(scores) / len(scores))
        assert row.high_success_count == sum(score > 0.7 for score in scores)
    # The add of layer 3 earned +4 % against an expected +2 %: a clear success.
    assert float(view[3].avg_actual_return) == pytest.approx((4.0 - 4.0) / 2)
    assert view[3].high_success_count == 1


@pytest.mark.parametrize(
    ("bars", "result", "status"),
    [
        ([("101", "99", "100"), ("111", "100", "110")], "target", "executed"),
        ([("101", "94", "95"), ("111", "100", "110")], "stop", "executed"),
        ([("111", "94", "100")], "stop", "executed"),  # both in one candle: the stop
        ([("101", "99", "100"), ("102", "98", "101")], "timeout", "expired"),
    ],
)
def test_signals_are_resolved_by_the_first_barrier_touched(
    engine: Engine, btc: int, bars: list[tuple[str, str, str]], result: str, status: str
) -> None:
    from builders import user
    from db.schema import SignalExecution, TradingSignal

    with engine.begin() as connection:
        trader = user(connection, "trader@example.com")
    with Session(engine) as session, session.begin():
        signal = TradingSignal(
            crypto_id=btc,
            signal_type="long",
            entry_price=Decimal("100"),
            target_price=Decimal("110"),
            stop_loss=Decimal("95"),
            confidence_score=Decimal("0.5"),
            risk_level="low",
            generated_at=T0,
            expires_at=T0 + timedelta(hours=len(bars)),
        )
        session.add(signal)
        session.flush()
        session.add(
            SignalExecution(
                signal_id=signal.id,
                user_id=trader,
                execution_price=Decimal("100"),
                position_size=Decimal("1000"),
            )
        )
        for i, (high, low, close) in enumerate(bars, start=1):
            _ohlc(session, btc, T0 + timedelta(hours=i), high, low, close)

    evaluate(engine, as_of=T0 + timedelta(days=1))

    with Session(engine) as session:
        resolved = session.scalars(select(TradingSignal)).one()
        execution = session.scalars(select(SignalExecution)).one()
    assert resolved.status == status
    assert resolved.ai_analysis["outcome"]["result"] == result
    exit_price = {"target": 110.0, "stop": 95.0, "timeout": 101.0}[result]
    assert execution.execution_details["realized_pnl"] == pytest.approx(
        1000 * (exit_price / 100 - 1)
    )


def test_a_signal_still_running_stays_active(engine: Engine, btc: int) -> None:
    from db.schema import TradingSignal

    with Session(engine) as session, session.begin():
        session.add(
            TradingSignal(
                crypto_id=btc,
                signal_type="short",
                entry_price=Decimal("100"),
                target_price=Decimal("90"),
                stop_loss=Decimal("105"),
                confidence_score=Decimal("0.5"),
                risk_level="low",
                generated_at=T0,
                expires_at=T0 + timedelta(hours=48),
            )
        )
        _ohlc(session, btc, T0 + timedelta(hours=1), "104", "95", "98")

    summary = evaluate(engine, as_of=T0 + timedelta(hours=2))

    assert (summary.signals_executed, summary.signals_expired) == (0, 0)
    with Session(engine) as session:
        assert session.scalars(select(TradingSignal)).one().status == "active"


def _register(session: Session, version: str, fresh: bool = False) -> None:
    """A version row; `fresh` as the registry leaves a new version (empty live sums),
    otherwise as an older release or a hand-made row (none)."""
    from db.schema import AiModel

    metrics = {LIVE_SUMS_KEY: {}} if fresh else {}
    session.add(
        AiModel(
            name="asset_price", version=version, model_type="asset", performance_metrics=metrics
        )
    )


def _live(engine: Engine, version: str = "1") -> dict:
    from db.schema import AiModel

    with Session(engine) as session:
        row = session.scalars(select(AiModel).where(AiModel.version == version)).one()
        return dict(row.performance_metrics["live"])


def _history(engine: Engine, version: str = "1") -> dict:
    from training.live_metrics import live_metrics

    with Session(engine) as session:
        figures = live_metrics(session, "asset_price", version)
    assert figures is not None
    return figures


def _same_figures(live: dict, history: dict) -> None:
    assert live["n_evaluated"] == history["n_evaluated"]
    assert live.get("n_interval") == history.get("n_interval")
    for key in ("interval_coverage", "interval_width_pct", "interval_level"):
        if key in history:
            assert live[key] == pytest.approx(history[key], rel=1e-12), key
    assert [(b["bin"], b["count"]) for b in live["reliability"]] == [
        (b["bin"], b["count"]) for b in history["reliability"]
    ]
    for key in (
        "accuracy_rate",
        "mean_absolute_percentage_error",
        "directional_accuracy",
        "brier",
        "mean_confidence",
        "ece",
    ):
        if history[key] is None:  # no predicted move: no direction to be right about
            assert live[key] is None, key
        else:
            assert live[key] == pytest.approx(history[key], rel=1e-12), key


def test_live_metrics_fold_each_run_into_the_stored_sums(engine: Engine, btc: int) -> None:
    """Three runs (one waits for a late candle) give the figures of one pass over all rows."""
    with Session(engine) as session, session.begin():
        _register(session, "1", fresh=True)
        for hour in range(30):
            moment = T0 + timedelta(hours=hour)
            if hour != 5:
                candle(session, btc, moment, str(100 + hour % 4))
            predicted = 99 + hour % 5
            interval = (predicted - 1.5 - hour % 3, predicted + 1.0 + hour % 2)
            row = prediction(session, btc, str(predicted), moment, interval=interval)
            row.confidence_score = Decimal(hour % 11) / 10

    evaluate(engine, as_of=T0 + timedelta(hours=9))
    first = _live(engine)
    evaluate(engine, as_of=T0 + timedelta(hours=29))
    with Session(engine) as session, session.begin():
        candle(session, btc, T0 + timedelta(hours=5), "120")  # late candle
    evaluate(engine, as_of=T0 + timedelta(hours=29))

    live = _live(engine)
    assert first["n_evaluated"] == 9
    assert live["n_evaluated"] == 30
    _same_figures(live, _history(engine))
    inside, widths = _interval_recomputed(engine)
    assert live["n_interval"] == len(inside) == 30
    assert live["interval_coverage"] == pytest.approx(sum(inside) / 30, rel=1e-12)
    assert live["interval_width_pct"] == pytest.approx(sum(widths) / 30, rel=1e-12)
    assert live["interval_level"] == pytest.approx(0.8)


def _interval_recomputed(engine: Engine) -> tuple[list[bool], list[float]]:
    """Per realised row with an interval, in Python: whether the actual price lay inside it,
    and its width in percent of the input price."""
    with Session(engine) as session:
        rows = session.scalars(select(Prediction).where(Prediction.is_realized.is_(True))).all()
    inside, widths = [], []
    for row in rows:
        if not row.predicted_value:
            continue
        assert row.actual_price is not None
        lower, upper = row.predicted_value["lower"], row.predicted_value["upper"]
        inside.append(lower <= float(row.actual_price) <= upper)
        widths.append((upper - lower) * 100 / float(row.input_price))
    return inside, widths


def test_evaluation_of_intervals_is_idempotent(engine: Engine, btc: int) -> None:
    with Session(engine) as session, session.begin():
        _register(session, "1", fresh=True)
        for hour in range(10):
            candle(session, btc, T0 + timedelta(hours=hour), "100")
            prediction(session, btc, "101", T0 + timedelta(hours=hour), interval=(99.5, 100.5))
    evaluate(engine, as_of=T0 + timedelta(hours=9))
    once = _live(engine)

    evaluate(engine, as_of=T0 + timedelta(hours=9))

    again = _live(engine)
    assert (again["n_interval"], again["interval_coverage"]) == (10, 1.0)
    assert {k: v for k, v in again.items() if k != "updated_at"} == {
        k: v for k, v in once.items() if k != "updated_at"
    }


def test_interval_coverage_alarm_on_a_constructed_set(engine: Engine, btc: int) -> None:
    """80 % intervals that hold the price 6 times in 10 over 50 predictions raise the alarm;
    7 in 10, or 6 in 10 over fewer than 50, do not."""
    from builders import user
    from db.schema import AiModel, Notification

    with engine.begin() as connection:
        user(connection, "admin@example.com", role="admin")
    counts = {"1": (50, 6), "2": (50, 7), "3": (40, 6)}  # version: (rows, inside per 10)
    with Session(engine) as session, session.begin():
        for version in counts:
            session.add(AiModel(name="asset_price", version=version, model_type="asset"))
        for hour in range(50):
            candle(session, btc, T0 + timedelta(hours=hour), "100")
        for version, (rows, inside) in counts.items():
            for hour in range(rows):
                held = hour % 10 < inside
                interval = (99.0, 101.0) if held else (101.0, 103.0)
                # Accurate and confident at 0.95, so only the interval can raise an alarm.
                row = prediction(session, btc, "100", T0 + timedelta(hours=hour), interval=interval)
                row.model_version, row.confidence_score = version, Decimal("0.95")

    summary = evaluate(engine, as_of=T0 + timedelta(days=10))

    assert [alarm.split(":")[0] for alarm in summary.drift_alarms] == ["asset_price v1"]
    assert "live interval coverage 0.600 is below its level 0.80" in summary.drift_alarms[0]
    with Session(engine) as session:
        [alert] = session.scalars(select(Notification)).all()
    assert "over 50 predictions" in alert.message


def test_live_metrics_add_only_the_rows_a_run_evaluated(engine: Engine, btc: int) -> None:
    """The second run reads the stored sums, not the history: altering the stored count
    shows in the result."""
    with Session(engine) as session, session.begin():
        _register(session, "1")
        for hour in range(4):
            candle(session, btc, T0 + timedelta(hours=hour), "100")
            prediction(session, btc, "101", T0 + timedelta(hours=hour))
    evaluate(engine, as_of=T0 + timedelta(hours=1))

    from db.schema import AiModel

    with Session(engine) as session, session.begin():
        row = session.scalars(select(AiModel)).one()
        metrics = dict(row.performance_metrics)
        sums = {index: dict(parts) for index, parts in metrics[LIVE_SUMS_KEY].items()}
        (only_bin,) = sums.values()
        only_bin["n"] += 1000
        metrics[LIVE_SUMS_KEY] = sums
        row.performance_metrics = metrics
    evaluate(engine, as_of=T0 + timedelta(hours=3))

    assert _live(engine)["n_evaluated"] == 1004


def test_live_metrics_of_a_version_registered_late_cover_its_history(
    engine: Engine, btc: int
) -> None:
    """Rows evaluated before the version was in ai_models count once it is, and a version
    this run did not touch keeps its figures."""
    with Session(engine) as session, session.begin():
        for hour in range(6):
            candle(session, btc, T0 + timedelta(hours=hour), "100")
            first = prediction(session, btc, str(95 + hour), T0 + timedelta(hours=hour))
            first.model_version = "2" if hour < 3 else "1"
    with Session(engine) as session, session.begin():
        _register(session, "1")
    evaluate(engine, as_of=T0 + timedelta(hours=3))  # v2's three rows: no ai_models row yet
    untouched = _live(engine, "1")
    assert untouched["n_evaluated"] == 1
    with Session(engine) as session, session.begin():
        _register(session, "2")
    evaluate(engine, as_of=T0 + timedelta(hours=5))  # two more v1 rows, none of v2

    assert _live(engine, "1")["n_evaluated"] == 3
    _same_figures(_live(engine, "1"), _history(engine, "1"))
    from db.schema import AiModel

    with Session(engine) as session:
        v2 = session.scalars(select(AiModel).where(AiModel.version == "2")).one()
        assert "live" not in (v2.performance_metrics or {})

    with Session(engine) as session, session.begin():
        candle(session, btc, T0 + timedelta(hours=6), "100")
        late = prediction(session, btc, "100", T0 + timedelta(hours=6))
        late.model_version = "2"
    evaluate(engine, as_of=T0 + timedelta(hours=6))

    assert _live(engine, "2")["n_evaluated"] == 4
    _same_figures(_live(engine, "2"), _history(engine, "2"))


@pytest.mark.postgres
def test_two_runs_at_once_fold_their_rows_into_the_live_metrics_once(
    pg_engine: Engine, postgres_url: str
) -> None:
    _two_thousand_due(pg_engine, registered=True)
    # Give the version stored sums first, so both runs take the incremental path.
    evaluate(pg_engine, as_of=T0)

    counts = _evaluate_twice_at_once(postgres_url)

    assert sum(counts) == 1999
    live = _live(pg_engine)
    assert live["n_evaluated"] == 2000
    _same_figures(live, _history(pg_engine))
    inside, _ = _interval_recomputed(pg_engine)
    assert live["n_interval"] == len(inside) == 1333
    assert live["interval_coverage"] == pytest.approx(sum(inside) / len(inside), rel=1e-12)


@pytest.mark.postgres
def test_evaluation_updates_are_heap_only(pg_engine: Engine) -> None:
    """No index names a column the job sets, and pages keep room: every update is HOT."""
    with pg_engine.begin() as connection:
        btc = coin(connection, "BTC")
    with Session(pg_engine) as session, session.begin():
        for hour in range(500):
            moment = T0 + timedelta(hours=hour)
            candle(session, btc, moment, "100")
            predicted = 100 + hour % 7
            # Inside for 3 of every 7 rows; one in three rows has no interval.
            interval = None if hour % 3 == 0 else (predicted - 2.0, predicted + 2.5)
            prediction(session, btc, str(predicted), moment, interval=interval)
    assert evaluate(pg_engine, as_of=T0 + timedelta(days=30)).evaluated == 500
    pg_engine.dispose()  # the backend exits and flushes its statistics

    updates = (0, 0)
    for _ in range(50):
        with pg_engine.connect() as connection:
            updates = connection.execute(
                text(
                    "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
                    " WHERE relname = 'predictions'"
                )
            ).one()
        if updates[0] >= 500:
            break
        time.sleep(0.1)
    assert tuple(updates) == (500, 500)


def test_live_rank_ic_of_the_served_ranking_beside_the_factor(engine: Engine) -> None:
    """Two analysed hours of six coins: the served ranking is right in the first and reversed
    in the second; the factor is right in both."""
    from builders import coin
    from db.schema import AiModel

    with engine.begin() as connection:
        ids = [coin(connection, f"C{i}") for i in range(6)]
    with Session(engine) as session, session.begin():
        _register(session, "1", fresh=True)
        for hour, sign in ((0, 1), (1, -1)):
            target = T0 + timedelta(hours=hour)
            for rank, crypto_id in enumerate(ids):
                candle(session, crypto_id, target, str(100 + rank))  # the coins rise in order
                row = prediction(session, crypto_id, "100", target)
                row.predicted_value = {
                    "predicted_log_return": 0.0,  # shrunk to persistence: no ranking of its own
                    "rank_score": sign * rank,
                    "factor_score": rank,
                }

    evaluate(engine, as_of=T0 + timedelta(hours=1))

    live = _live(engine)
    assert live["rank_ic_hours"] == 2
    assert live["rank_ic"] == pytest.approx(0.0)  # +1 and -1
    assert live["factor_rank_ic"] == pytest.approx(1.0)
    assert live["rank_ic_minus_factor"] == pytest.approx(-1.0)
    assert live["directional_accuracy"] is None  # persistence predicts no move to be right about
    with Session(engine) as session:
        sums = session.scalars(select(AiModel)).one().performance_metrics["live_rank_sums"]
    assert sums["hours"] == 2 and sums["ic_squared"] == pytest.approx(2.0)
