"""A fifth family is one module plus its registration: defined here and nowhere else, it
trains (walk-forward validation, MLflow, `ai_models`), `analyze` writes its rows through the
existing `predictions` writer, and the predictor serves it, with no other module edited.

The database's CHECKs allow `ai_models.model_type` and `predictions.layer_source` of the four
spec layers only, so the family registers as an asset-type model on layer 3: a price
forecast, which is what `predictions` (and the nightly evaluation of it) holds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import migrate
from db.engine import make_engine
from db.schema import AiModel, Prediction
from models.families import FAMILIES, ModelFamily, TableOutput, register, unregister
from models.families.served import rows_at, rows_from
from models.features import log_returns, stack_wide
from models.labels import asset_labels
from models.panel import MarketPanel
from serving.batch.analyze import analyze
from serving.inference.models_cache import ActiveModels
from serving.inference.predictor import Predictor
from small_training import SETTINGS
from store.datasets import load_panel
from store.tracking import configure_tracking
from training.ingest import write_candles
from training.synthetic import generate_market
from training.train import TrainingStores, train_layers

STATE_FILE = "drift.json"


class PriceDriftFamily(ModelFamily):
    """Each coin's price `horizon` hours ahead from its last day's return: one least-squares
    slope, served in full (no calibration), beside persistence as its baseline."""

    name: ClassVar[str] = "price_drift"
    model_type: ClassVar[str] = "asset"  # ai_models' CHECK allows the four spec layers' types
    layer: ClassVar[int] = 3  # predictions.layer_source: its CHECK allows 1 to 4
    primary_metric: ClassVar[str] = "mae"
    layer_name: ClassVar[str] = "drift"
    default_horizon: ClassVar[int] = 6
    upstream: ClassVar[tuple[str, ...]] = ("macro",)
    outputs: ClassVar[tuple[TableOutput, ...]] = (
        TableOutput(
            "predictions",
            columns={
                "input_price": "close",
                "confidence_score": "confidence",
                "input_features": "features",
            },
        ),
    )

    @property
    def history_hours(self) -> int:
        return 24

    def features(self, panel: MarketPanel, since: pd.Timestamp | None = None) -> pd.DataFrame:
        return rows_from(stack_wide({"log_return_24h": log_returns(panel, 24)}, "symbol"), since)

    def labels(self, panel: MarketPanel) -> pd.DataFrame:
        return asset_labels(panel, self.horizon).to_frame("forward_return")

    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> Self:
        x, target = X["log_return_24h"].fillna(0.0), y["forward_return"]
        self.slope_ = float((x * target).sum() / max(float((x * x).sum()), 1e-12))
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        drift = self.slope_ * X["log_return_24h"].fillna(0.0)
        return pd.DataFrame({"predicted_return": drift}, index=X.index)

    def baseline(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"predicted_return": np.zeros(len(X))}, index=X.index)

    def score(self, y: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, Any]:
        return {"mae": float(self.losses(y, predictions).mean())}

    def losses(self, y: pd.DataFrame, predictions: pd.DataFrame) -> np.ndarray:
        errors = predictions["predicted_return"] - y["forward_return"]
        return np.abs(errors.to_numpy(dtype=float))

    def calibrate(self, X: pd.DataFrame, raw: pd.DataFrame, y: pd.DataFrame) -> Self:
        self.shrink_weight_ = 1.0
        return self

    def serve(self, X: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
        return raw * self.shrink_weight

    def serve_at(self, panel: MarketPanel, as_of: pd.Timestamp) -> pd.DataFrame:
        started = time.perf_counter()
        X = rows_at(self.features(panel, as_of), as_of).reset_index(level="timestamp", drop=True)
        close = panel.close.loc[as_of].reindex(X.index).dropna()
        X = X.loc[close.index]
        drift = self.predict_calibrated(X)["predicted_return"]
        frame = pd.DataFrame(
            {
                "close": close,
                "predicted_price": close * np.exp(drift),
                "confidence": 0.5,
                "volatility_level": "medium",
                "prediction_seconds": (time.perf_counter() - started) / max(len(X), 1),
            },
            index=X.index,
        )
        frame["features"] = [{"log_return_24h": float(v)} for v in X["log_return_24h"]]
        frame["explanation"] = [{} for _ in range(len(X))]
        return frame

    def _save_state(self, directory: Path) -> None:
        state = {"slope": self.slope_, "shrink_weight": self.shrink_weight}
        (directory / STATE_FILE).write_text(json.dumps(state))

    def _load_state(self, directory: Path) -> None:
        state = json.loads((directory / STATE_FILE).read_text())
        self.slope_, self.shrink_weight_ = state["slope"], state["shrink_weight"]


@pytest.fixture
def drift_layer() -> Iterator[str]:
    """The fifth family, registered for one test only."""
    register(PriceDriftFamily)
    try:
        yield PriceDriftFamily.layer_name
    finally:
        unregister(PriceDriftFamily.layer_name)


def test_a_fifth_family_trains_analyses_and_serves_from_its_own_module(
    drift_layer: str, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'cryptopredict.db'}"
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    market = generate_market(6, 100, seed=13)
    frames = {
        symbol: frame.drop(columns="symbol").reset_index(drop=True)
        for symbol, frame in market.candles.groupby("symbol")
    }
    write_candles(engine, frames, market.coins)
    client = configure_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlartifacts")
    panel = load_panel(engine)

    assert list(FAMILIES)[-1] == drift_layer
    outcomes = train_layers(
        TrainingStores(engine, client, tmp_path / "mlartifacts"),
        panel,
        [drift_layer, "macro"],
        SETTINGS,
    )

    assert [(o.layer, o.name, o.status) for o in outcomes] == [
        ("macro", "macro_regime", "active"),
        ("drift", "price_drift", "active"),
    ]
    with Session(engine) as session:
        row = session.scalars(select(AiModel).where(AiModel.name == "price_drift")).one()
        assert (row.version, row.model_type) == ("1", "asset")
        assert row.configuration is not None and row.performance_metrics is not None
        assert row.configuration["horizon_hours"] == 6
        assert row.configuration["walk_forward"]["purge_hours"] == 6
        assert set(row.performance_metrics["validation"]) == {"mae"}
        run = client.get_run(row.configuration["mlflow_run_id"])
    assert {"val_mae", "baseline_mae"} <= set(run.data.metrics)
    versions = client.search_model_versions("name='price_drift'")
    assert [str(version.version) for version in versions] == ["1"]

    predictor = Predictor(ActiveModels(engine))
    report = analyze(engine, predictor, panel)

    assert report.written["predictions"] == 6
    assert report.written["market_regime_analysis"] == 1
    assert "predictions and ai_suggestions: no active asset model" in report.skipped
    with Session(engine) as session:
        rows = session.scalars(select(Prediction)).all()
    assert {row.model_name for row in rows} == {"price_drift"}
    for prediction in rows:
        assert (prediction.layer_source, prediction.prediction_horizon) == (3, 6)
        assert prediction.input_features and "log_return_24h" in prediction.input_features
        assert prediction.context_data and prediction.context_data["regime"]["regime"]
        assert set(prediction.context_data) == {"as_of", "regime", "model_versions"}
        assert prediction.market_conditions == prediction.context_data["regime"]["regime"]

    view = predictor.market_view(panel)
    served = predictor.serve(panel, view, drift_layer)
    assert served.model.name == "price_drift" and len(served.frame) == 6
    assert (served.frame["predicted_price"] > 0).all()
