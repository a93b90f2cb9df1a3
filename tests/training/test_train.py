"""Training end to end on a small synthetic market: MLflow runs, versions, ai_models rows.

One market is trained once per module (all four families, about half a minute); the tests
then look at what it left in the database and in the MLflow store. The runs are real: a
SQLite database migrated by our migrations, a real MLflow tracking store in a temp folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import mlflow
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.panel import MarketPanel
from small_training import LAYERS, SETTINGS, LocalStores
from store.datasets import load_panel
from store.tracking import configure_tracking
from training.ingest import write_candles
from training.synthetic import generate_market
from training.train import TrainOutcome, TrainSettings, train_layers


class Store(LocalStores):
    """The database and MLflow store one module's training wrote into."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.client = configure_tracking(self.tracking_uri, self.artifacts)

    def train(self, layers: list[str], settings: TrainSettings = SETTINGS) -> list[TrainOutcome]:
        stores = self.stores()
        self.client = stores.client
        return train_layers(stores, load_panel(self.engine), layers, settings)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("training"))
    market = generate_market(6, 100, seed=11)
    frames = {
        symbol: frame.drop(columns="symbol").reset_index(drop=True)
        for symbol, frame in market.candles.groupby("symbol")
    }
    write_candles(store.engine, frames, market.coins)
    store.train(LAYERS)
    return store


def test_training_registers_one_active_version_per_family(store: Store) -> None:
    rows = store.rows()
    assert {(row.name, row.version, row.status) for row in rows} == {
        ("macro_regime", "1", "active"),
        ("sector_rotation", "1", "active"),
        ("asset_price", "1", "active"),
        ("trade_timing", "1", "active"),
    }
    for row in rows:
        metrics = row.performance_metrics
        primary = metrics["primary_metric"]
        assert primary in metrics["validation"] and primary in metrics["baseline"]
        assert isinstance(metrics["beats_baseline"], bool)
        assert metrics["validation_start"] < metrics["validation_end"]
        config = row.configuration
        assert config["model_uri"] == f"models:/{row.name}/1"
        assert config["walk_forward"]["purge_hours"] == config["horizon_hours"]
        assert config["features"] and config["mlflow_run_id"]
        assert row.last_trained is not None


def test_mlflow_runs_hold_metrics_beside_baselines_and_plots(store: Store) -> None:
    for row in store.rows():
        run = store.client.get_run(row.configuration["mlflow_run_id"])
        primary = row.performance_metrics["primary_metric"]
        assert f"val_{primary}" in run.data.metrics
        assert f"baseline_{primary}" in run.data.metrics
        artifacts = {item.path for item in store.client.list_artifacts(run.info.run_id)}
        assert {"walk_forward.json", "calibration.json", "walk_forward.png"} <= artifacts
        versions = store.client.search_model_versions(f"name='{row.name}'")
        assert [str(version.version) for version in versions] == ["1"]


def test_calibration_is_reported_on_a_held_out_fold(store: Store) -> None:
    by_name = {row.name: row.performance_metrics["calibration"] for row in store.rows()}
    asset = by_name["asset_price"]
    assert 0.0 <= asset["brier"] <= 1.0 and 0.0 <= asset["ece"] <= 1.0
    assert {"brier", "ece", "reference_rate", "brier_of_reference"} <= set(by_name["macro_regime"])
    assert {"long", "short"} <= set(by_name["trade_timing"])


def test_registered_version_loads_with_plain_mlflow_in_a_fresh_python(store: Store) -> None:
    panel = load_panel(store.engine)
    from models.families import AssetPriceFamily

    features = AssetPriceFamily(horizon=24).features(panel)
    features = features.dropna(subset=["realized_vol_168h"]).tail(5)
    features_path = store.root / "features.parquet"
    features.reset_index(drop=True).to_parquet(features_path)
    script = (
        "import mlflow, pandas as pd, sys\n"
        f"mlflow.set_tracking_uri({store.tracking_uri!r})\n"
        "model = mlflow.pyfunc.load_model('models:/asset_price/1')\n"
        f"out = model.predict(pd.read_parquet({str(features_path)!r}))\n"
        "print(out.to_json(orient='records'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(rows) == 5
    assert all(0.0 <= row["confidence"] <= 1.0 for row in rows)
    assert all(abs(row["predicted_return"]) < 1.0 for row in rows)


def test_a_version_that_does_not_beat_the_active_one_stays_inactive(store: Store) -> None:
    # The same data and seed give the same model: it cannot beat itself.
    [outcome] = store.train(["macro"])
    assert outcome.status == "inactive"
    assert "does not beat" in outcome.reason
    statuses = {row.version: row.status for row in store.rows() if row.name == "macro_regime"}
    assert statuses == {"1": "active", "2": "inactive"}


def test_force_activates_and_rollback_restores(store: Store) -> None:
    [outcome] = store.train(["sector"], replace(SETTINGS, force=True))
    assert (outcome.version, outcome.status) == ("2", "active")
    from store import registry

    with Session(store.engine) as session, session.begin():
        assert registry.rollback(session, "sector_rotation").version == "1"


def test_a_failing_run_is_marked_error_and_the_active_version_keeps_serving(
    store: Store,
) -> None:
    broken = replace(SETTINGS, params={**SETTINGS.params, "asset": {"max_depth": -3}})
    with pytest.raises(Exception, match="max_depth"):
        store.train(["asset"], broken)
    rows = [row for row in store.rows() if row.name == "asset_price"]
    assert [row.status for row in rows] == ["active", "error"]
    assert rows[1].version.startswith("pending-")
    assert "max_depth" in rows[1].health_status["error"]


def test_panel_round_trip_matches_the_market(store: Store) -> None:
    panel = load_panel(store.engine)
    assert isinstance(panel, MarketPanel)
    assert panel.close.shape == (100 * 24, 6)
    assert mlflow.get_tracking_uri() == store.tracking_uri


def test_analyze_writes_every_layer_table_with_valid_rows(store: Store) -> None:
    from sqlalchemy import func

    from db.schema import (
        AiSuggestion,
        DominanceData,
        MacroIndicator,
        MarketRegimeAnalysis,
        MarketSentimentData,
        Prediction,
        SectorPerformance,
        SectorRotationAnalysis,
        TradingSignal,
    )
    from serving.batch.analyze import analyze
    from serving.inference.models_cache import ActiveModels
    from serving.inference.predictor import Predictor

    panel = load_panel(store.engine)
    report = analyze(store.engine, Predictor(ActiveModels(store.engine)), panel)
    again = analyze(store.engine, Predictor(ActiveModels(store.engine)), panel)

    tables = [
        MarketRegimeAnalysis,
        MarketSentimentData,
        DominanceData,
        MacroIndicator,
        SectorPerformance,
        SectorRotationAnalysis,
        Prediction,
        TradingSignal,
    ]
    with Session(store.engine) as session:
        counts = {
            t.__tablename__: session.scalar(select(func.count()).select_from(t)) for t in tables
        }
        predictions = session.scalars(select(Prediction)).all()
        signals = session.scalars(select(TradingSignal)).all()
        suggestions = session.scalars(select(AiSuggestion)).all()
    empty = [name for name, count in counts.items() if count == 0]
    # No trade is a legitimate answer for layer 4, but then the report must say why.
    assert empty in ([], ["trading_signals"])
    if empty:
        assert any("positive expected return" in note for note in report.skipped)
    assert counts["predictions"] == 6  # one per coin, not doubled by the second run
    assert sum(again.written.values()) == 0
    assert report.as_of == panel.hours[-1].to_pydatetime()
    for prediction in predictions:
        assert prediction.model_name == "asset_price" and prediction.layer_source == 3
        assert 0 <= prediction.confidence_score <= 1
        assert prediction.target_datetime == report.as_of + timedelta(hours=24)
        assert prediction.input_features and prediction.context_data["regime"]["regime"]
        assert prediction.debug_info["top_contributions"]
    for signal in signals:
        long = signal.signal_type == "long"
        assert (signal.stop_loss < signal.entry_price < signal.target_price) == long
        assert signal.expires_at > signal.generated_at
    for suggestion in suggestions:
        assert suggestion.reasoning["summary"] and suggestion.expires_at is not None


def test_serving_reads_as_far_back_as_the_active_lines_features(store: Store) -> None:
    from models.features import MARKET_FEATURE_HOURS
    from serving.inference.models_cache import ActiveModels
    from serving.inference.predictor import Predictor

    predictor = Predictor(ActiveModels(store.engine))
    needs = {layer: predictor.require(layer).family.history_hours for layer in LAYERS}
    assert predictor.history_hours() == max(MARKET_FEATURE_HOURS, *needs.values())
    # A forecast serves the asset lines with the context of the layers above them.
    above = max(needs["macro"], needs["sector"], needs["asset"])
    assert needs["macro"] > MARKET_FEATURE_HOURS
    assert predictor.history_hours(["asset"]) == above


def test_without_sectors_the_sector_family_is_skipped_and_the_others_train(
    tmp_path: Path,
) -> None:
    # Exchange candles and no coins file: no coin has a sector.
    store = Store(tmp_path)
    market = generate_market(6, 100, seed=12)
    frames = {
        symbol: frame.drop(columns="symbol").assign(market_cap=float("nan")).reset_index(drop=True)
        for symbol, frame in market.candles.groupby("symbol")
    }
    write_candles(store.engine, frames, None)

    outcomes = {outcome.layer: outcome for outcome in store.train(LAYERS)}

    assert outcomes["sector"].status == "skipped"
    assert "no rows with both features and a known label" in outcomes["sector"].reason
    assert {outcomes[layer].status for layer in ("macro", "asset", "timing")} == {"active"}
    assert {row.name for row in store.rows()} == {"macro_regime", "asset_price", "trade_timing"}
    from db.schema import Prediction
    from serving.batch.analyze import analyze
    from serving.inference.models_cache import ActiveModels
    from serving.inference.predictor import Predictor

    analyze(store.engine, Predictor(ActiveModels(store.engine)), load_panel(store.engine))
    with Session(store.engine) as session:
        forecast = set(session.scalars(select(Prediction.crypto_id)))
    assert len(forecast) == 6  # every coin, none of which has a sector


def test_each_forecast_horizon_is_its_own_line_and_analyze_writes_each(store: Store) -> None:
    """Runs last in this module: it adds a 6-hour asset line to the shared store."""
    from db.schema import Prediction
    from serving.batch.analyze import analyze
    from serving.inference.models_cache import ActiveModels
    from serving.inference.predictor import Predictor

    [outcome] = store.train(["asset"], replace(SETTINGS, forecast_horizons=(6,)))

    assert (outcome.name, outcome.version, outcome.status) == ("asset_price_6h", "1", "active")
    line = next(row for row in store.rows() if row.name == "asset_price_6h")
    assert line.configuration["horizon_hours"] == 6
    validation = line.performance_metrics["validation"]
    assert validation["interval_level"] == 0.8 and 0 < validation["interval_coverage"] < 1
    assert line.performance_metrics["baseline"]["interval_width_pct"] > 0
    panel = load_panel(store.engine)
    report = analyze(store.engine, Predictor(ActiveModels(store.engine)), panel)

    assert report.written["predictions"] == 6  # the 24-hour ones were made by an earlier test
    with Session(store.engine) as session:
        rows = session.scalars(
            select(Prediction).where(Prediction.model_name == "asset_price_6h")
        ).all()
    assert len(rows) == 6
    for row in rows:
        assert row.prediction_horizon == 6
        assert row.target_datetime == report.as_of + timedelta(hours=6)
        value = row.predicted_value or {}
        assert value["lower"] <= float(row.predicted_price) <= value["upper"]
        assert value["level"] == 0.8
