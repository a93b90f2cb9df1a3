"""Train families from price_data: validate walk-forward, track in MLflow, register, promote.

One function per stage, so a notebook can call any of them: `validate_family`,
`log_and_register` (MLflow run and model version) and `train_family` (all of it, with the
`ai_models` row kept honest: `training` while it runs, `error` if it fails, and the active
version replaced only by one whose served output beats it on the same validation window).
A family whose data cannot support training (no sectors, too short a history) is skipped
with its reason, and the others train.
"""

from __future__ import annotations

import logging
import os
import platform
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from models.families import FAMILIES, InsufficientData, ModelFamily, TrainingData, ordered
from models.panel import MarketPanel
from models.skill import NO_EDGE
from models.splits import WalkForwardSplit
from models.validation import (
    FamilyRows,
    ValidationResult,
    as_rows,
    better,
    fit_final,
    served_on,
    walk_forward,
)
from store import registry
from store.pyfunc import FAMILY_ARTIFACT, FamilyModel, load_registered, save_bundle
from store.tracking import experiment_for
from training.live_metrics import LIVE_SUMS_KEY, LiveSums
from training.plots import feature_importance_figure, reliability_figure, walk_forward_figure
from training.verdicts import edge_text, factor_text, interval_text, skill_text

log = logging.getLogger(__name__)
SIGNATURE_ROWS = 50


def _default_horizons() -> dict[str, int]:
    return {layer: family.default_horizon for layer, family in FAMILIES.items()}


def _default_forecast_horizons() -> tuple[int, ...]:
    lines = {family.default_horizon for family in FAMILIES.values() if family.horizon_lines}
    return tuple(sorted(lines))


@dataclass(frozen=True)
class TrainSettings:
    """Everything a training run depends on besides the data; logged with the run.

    A family that forecasts at several horizons (`ModelFamily.horizon_lines`: the asset
    family) is trained once per horizon of `forecast_horizons`, each its own version line;
    the others at their layer's horizon. A layer missing from `horizons` or `params` gets
    its family's default.
    """

    horizons: dict[str, int] = field(default_factory=_default_horizons)
    forecast_horizons: tuple[int, ...] = field(default_factory=_default_forecast_horizons)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_folds: int = 4
    test_fraction: float = 0.4
    min_train_hours: int = 24 * 14
    random_state: int = 0
    force: bool = False

    def horizon(self, layer: str) -> int:
        return self.horizons.get(layer, FAMILIES[layer].default_horizon)

    def line_horizons(self, layer: str) -> tuple[int, ...]:
        """The horizons `layer` is trained for: one version line each."""
        if FAMILIES[layer].horizon_lines:
            return self.forecast_horizons
        return (self.horizon(layer),)

    def family(self, layer: str, horizon: int | None = None) -> ModelFamily:
        """An unfitted family of `layer` at `horizon` (by default the layer's)."""
        return FAMILIES[layer](
            horizon=horizon or self.horizon(layer),
            params=self.params.get(layer, {}),
            random_state=self.random_state,
        )

    def splitter(self, horizon: int) -> WalkForwardSplit:
        # The purge covers the label horizon, so no training label overlaps a test block.
        return WalkForwardSplit(
            n_folds=self.n_folds,
            test_fraction=self.test_fraction,
            purge=horizon,
            min_train_hours=self.min_train_hours,
        )


@dataclass(frozen=True)
class TrainingStores:
    """Where a training run writes: `ai_models` (engine), MLflow (client, artifact root)."""

    engine: Engine
    client: MlflowClient
    artifact_root: Path


@dataclass
class TrainOutcome:
    layer: str
    name: str
    version: str
    status: str
    promoted: bool
    reason: str
    model_metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    beats_baseline: bool
    edge: str  # EDGE or NO_EDGE: does the skill interval lie above 0?
    skill: dict[str, Any]
    calibration: dict[str, Any]
    run_id: str
    seconds: float


Progress = Callable[[str], None]


class TrainingSource(Protocol):
    """Where a run's rows come from (the hours and coins it covers, a family's rows) and
    where its estimators fit.

    `PanelSource` does both here from one panel; `cluster.source.ClusterSource` computes the
    rows on the workers of a Dask cluster, block by block, and leaves their features there
    (`models.validation.Rows`). Validation and registration do not change.
    """

    @property
    def first_hour(self) -> datetime: ...

    @property
    def last_hour(self) -> datetime: ...

    @property
    def symbols(self) -> list[str]: ...

    def rows(self, family: ModelFamily) -> FamilyRows: ...

    def fitting(self, family: ModelFamily) -> ModelFamily:
        """`family` (unfitted) set to fit where this source fits."""
        ...


@dataclass(frozen=True)
class PanelSource:
    """The families' rows computed in this process from a panel held in memory."""

    panel: MarketPanel

    @property
    def first_hour(self) -> datetime:
        return self.panel.hours[0].to_pydatetime()

    @property
    def last_hour(self) -> datetime:
        return self.panel.hours[-1].to_pydatetime()

    @property
    def symbols(self) -> list[str]:
        return self.panel.symbols

    def rows(self, family: ModelFamily) -> TrainingData:
        return family.training_data(self.panel)

    def fitting(self, family: ModelFamily) -> ModelFamily:
        return family


# What training reads: a panel in memory, or a source whose rows are computed elsewhere.
Market = MarketPanel | TrainingSource


def as_source(market: Market) -> TrainingSource:
    """A panel is the in-process source of its own rows."""
    return PanelSource(market) if isinstance(market, MarketPanel) else market


def validate_family(
    layer: str, panel: Market, settings: TrainSettings, horizon: int | None = None
) -> tuple[FamilyRows, ValidationResult]:
    family = settings.family(layer, horizon)
    data = training_data(family, panel, settings)
    fitting = as_source(panel).fitting(family)
    result = walk_forward(fitting.fresh, data, settings.splitter(family.horizon))
    return data, result


def training_data(family: ModelFamily, panel: Market, settings: TrainSettings) -> FamilyRows:
    """The family's labelled rows; InsufficientData if they cannot fill the walk-forward."""
    data = as_source(panel).rows(family)
    settings.splitter(family.horizon).split(data.timestamps)
    return data


def train_layers(
    stores: TrainingStores,
    panel: Market,
    layers: Sequence[str],
    settings: TrainSettings,
    progress: Progress | None = None,
) -> list[TrainOutcome]:
    """Train the given layers top-down; a layer with several horizons once per horizon.

    `panel` is the market in memory, or a `TrainingSource` that computes the rows elsewhere.
    """
    jobs = [
        (layer, settings.family(layer, horizon))
        for layer in ordered(layers)
        for horizon in settings.line_horizons(layer)
    ]
    reap_abandoned_runs(stores.engine)
    outcomes = []
    for layer, family in jobs:
        name = family.registered_name
        if progress:
            progress(
                f"{name} ({family.horizon} h): walk-forward validation, final fit, MLflow, registry"
            )
        try:
            outcome, _ = train_family(stores, layer, family, panel, settings)
        except InsufficientData as reason:
            outcome = skipped(layer, family, str(reason))
            log.warning("%s: skipped, %s", outcome.name, reason)
            if progress:
                progress(f"{name}: skipped: {reason}")
        outcomes.append(outcome)
    return outcomes


def skipped(layer: str, family: ModelFamily, reason: str) -> TrainOutcome:
    """The outcome of a family that could not train for want of data; nothing registered."""
    return TrainOutcome(
        layer=layer,
        name=family.registered_name,
        version="",
        status="skipped",
        promoted=False,
        reason=reason,
        model_metrics={},
        baseline_metrics={},
        beats_baseline=False,
        edge=NO_EDGE,
        skill={},
        calibration={},
        run_id="",
        seconds=0.0,
    )


def reap_abandoned_runs(engine: Engine) -> list[str]:
    """Mark `error` the `training` rows of trainers on this host that died without a word."""
    with Session(engine) as session, session.begin():
        reaped = [f"{row.name} (row {row.id})" for row in registry.reap_abandoned(session)]
    for name in reaped:
        log.warning("training run of %s was abandoned (its process is gone): marked error", name)
    return reaped


def train_family(
    stores: TrainingStores,
    layer: str,
    family: ModelFamily,
    panel: Market,
    settings: TrainSettings,
) -> tuple[TrainOutcome, ValidationResult]:
    """One family (at one horizon; `family` is unfitted, and stays so) end to end; its
    `ai_models` row never stays `training` after this returns.

    InsufficientData is raised before any row is written: nothing was tried, nothing failed.
    """
    started = time.monotonic()
    engine = stores.engine
    name = family.registered_name
    source = as_source(panel)
    configuration = family_configuration(family, source, settings)
    data = training_data(family, source, settings)
    fitting = source.fitting(family)
    with Session(engine) as session, session.begin():
        row = registry.begin_training(session, name, family.model_type, configuration)
        row_id = row.id
    try:
        result = walk_forward(fitting.fresh, data, settings.splitter(family.horizon))
        final = fit_final(fitting.fresh, data, result)
        run_id, version = log_and_register(
            stores.client, stores.artifact_root, layer, final, data, result, configuration
        )
    except Exception as error:
        with Session(engine) as session, session.begin():
            failed = session.get(registry.AiModel, row_id)
            assert failed is not None
            registry.mark_failed(session, failed, f"{type(error).__name__}: {error}")
        log.error("training %s failed:\n%s", name, traceback.format_exc())
        raise
    beats_baseline = result.beats_baseline(family.primary_metric, family.lower_is_better)
    metrics = {
        "validation": result.model_metrics,
        "raw": result.raw_metrics,
        "baseline": result.baseline_metrics,
        "beats_baseline": beats_baseline,
        "skill": result.skill,
        "edge": result.skill["edge"],
        "shrink_weight": final.shrink_weight,
        "primary_metric": family.primary_metric,
        "calibration": result.calibration,
        "folds": result.fold_metrics,
        **result.window,
    }
    configuration.update(
        mlflow_run_id=run_id,
        model_uri=f"models:/{name}/{version}",
        features=as_rows(data).columns,
        training_rows=len(as_rows(data).y),
        # Validation, the final fit and registration: what `model_training_time` reports.
        training_seconds=round(time.monotonic() - started, 2),
        **result.window,
    )
    with Session(engine) as session, session.begin():
        trained = session.get(registry.AiModel, row_id)
        assert trained is not None
        # No prediction names this version yet: its live figures start from empty sums.
        metrics = {**metrics, LIVE_SUMS_KEY: LiveSums().to_json()}
        registry.finish_training(session, trained, version, configuration, metrics)
        promoted, reason = _decide_promotion(session, family, data, result, settings.force)
        if promoted:
            registry.promote(session, name, version)
        status = "active" if promoted else "inactive"
    outcome = TrainOutcome(
        layer=layer,
        name=name,
        version=version,
        status=status,
        promoted=promoted,
        reason=reason,
        model_metrics=result.model_metrics,
        baseline_metrics=result.baseline_metrics,
        beats_baseline=beats_baseline,
        edge=result.skill["edge"],
        skill=result.skill,
        calibration=result.calibration,
        run_id=run_id,
        seconds=time.monotonic() - started,
    )
    return outcome, result


def run_configuration(
    layer: str, panel: Market, settings: TrainSettings, horizon: int | None = None
) -> dict[str, Any]:
    """What `ai_models.configuration` and the MLflow parameters record about a run."""
    return family_configuration(settings.family(layer, horizon), panel, settings)


def family_configuration(
    family: ModelFamily, panel: Market, settings: TrainSettings
) -> dict[str, Any]:
    """`run_configuration` of an unfitted family."""
    source = as_source(panel)
    return {
        "layer": family.layer,
        "horizon_hours": family.horizon,
        "hyperparameters": dict(family.params),
        "random_state": settings.random_state,
        "walk_forward": {
            "n_folds": settings.n_folds,
            "test_fraction": settings.test_fraction,
            "purge_hours": family.horizon,
            "min_train_hours": settings.min_train_hours,
        },
        "training_start": pd.Timestamp(source.first_hour).isoformat(),
        "training_end": pd.Timestamp(source.last_hour).isoformat(),
        "symbols": source.symbols,
        "started_at": datetime.now(UTC).isoformat(),
        "host": platform.node(),
        "pid": os.getpid(),
    }


def _decide_promotion(
    session: Session,
    family: ModelFamily,
    data: FamilyRows,
    result: ValidationResult,
    force: bool,
) -> tuple[bool, str]:
    """Promote only a version whose served output beats the active one's on this run's window.

    The active version serves (calibrated, shrunk) exactly the scored out-of-fold rows the
    candidate's served output was scored on. If it was trained on some of them, that favours
    it, so the comparison errs towards keeping what serves.
    """
    metric = family.primary_metric
    candidate = result.model_metrics[metric]
    if force:
        return True, "forced"
    active = registry.active_version(session, family.registered_name)
    if active is None:
        return True, "no active version"
    try:
        incumbent_family = load_registered(active.configuration or {})
        served = served_on(incumbent_family, data, result.positions[result.scored])
        y = result.oof.y.loc[result.scored]
        incumbent = incumbent_family.score(y, served)[metric]
    except Exception as error:  # an unreadable incumbent must not block a good candidate
        log.warning("could not re-score active %s: %s", family.registered_name, error)
        return True, f"active version {active.version} could not be re-scored: {error}"
    beats = better(candidate, incumbent, family.lower_is_better)
    verdict = "beats" if beats else "does not beat"
    return beats, (
        f"{metric} {candidate:.6g} {verdict} active version {active.version} ({incumbent:.6g})"
    )


def log_and_register(
    client: MlflowClient,
    artifact_root: Path,
    layer: str,
    family: ModelFamily,
    data: FamilyRows,
    result: ValidationResult,
    configuration: dict[str, Any],
) -> tuple[str, str]:
    """One MLflow run: parameters, metrics beside baselines, plots, the model; a new version."""
    experiment_id = experiment_for(client, family.registered_name, artifact_root)
    with mlflow.start_run(experiment_id=experiment_id) as run, tempfile.TemporaryDirectory() as d:
        mlflow.log_params(_flat_params(configuration))
        mlflow.log_metrics(
            {
                **numeric_metrics("val", result.model_metrics),
                **numeric_metrics("raw", result.raw_metrics),
                **numeric_metrics("baseline", result.baseline_metrics),
                **numeric_metrics("skill", result.skill),
                "shrink_weight": family.shrink_weight,
            }
        )
        mlflow.set_tags(
            {
                "layer": layer,
                "beats_baseline": str(
                    result.beats_baseline(family.primary_metric, family.lower_is_better)
                ),
                "edge": result.skill["edge"],
            }
        )
        mlflow.log_dict({"folds": result.fold_metrics}, "walk_forward.json")
        mlflow.log_dict(result.calibration, "calibration.json")
        _log_figures(family, result)
        bundle = save_bundle(family, Path(d) / FAMILY_ARTIFACT)
        sample = as_rows(data).tail(SIGNATURE_ROWS)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=FamilyModel(),
            artifacts={FAMILY_ARTIFACT: str(bundle)},
            signature=infer_signature(sample, family.predict_calibrated(sample)),
            registered_model_name=family.registered_name,
            # Stated, not inferred: inference re-imports the model in a subprocess per run.
            pip_requirements=_requirements(),
        )
        version = str(info.registered_model_version)
        return run.info.run_id, version


def numeric_metrics(prefix: str, metrics: dict[str, Any]) -> dict[str, float]:
    """MLflow metrics from a nested report: numbers (and flags as 0/1) under joined keys."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}_{key}"
        if isinstance(value, dict):
            flat.update(numeric_metrics(name, value))
        elif isinstance(value, bool | int | float):
            flat[name] = float(value)
    return flat


def _requirements() -> list[str]:
    """The runtime packages a loaded family needs, at the versions installed here."""
    packages = ("mlflow", "pandas", "numpy", "scikit-learn", "xgboost", "torch", "cryptopredict")
    return [f"{package}=={metadata.version(package)}" for package in packages]


def _flat_params(configuration: dict[str, Any]) -> dict[str, str]:
    keep = ("layer", "horizon_hours", "random_state", "training_start", "training_end")
    params = {key: str(configuration[key]) for key in keep}
    params.update({f"wf_{k}": str(v) for k, v in configuration["walk_forward"].items()})
    params.update({f"hp_{k}": str(v)[:250] for k, v in configuration["hyperparameters"].items()})
    params["n_symbols"] = str(len(configuration["symbols"]))
    return params


def _log_figures(family: ModelFamily, result: ValidationResult) -> None:
    figures = {
        "walk_forward.png": walk_forward_figure(
            result.fold_metrics,
            family.primary_metric,
            f"{family.registered_name}: walk-forward",
        )
    }
    importance = family.feature_importance()
    if not importance.empty:
        figures["feature_importance.png"] = feature_importance_figure(
            importance, f"{family.registered_name}: feature importance"
        )
    curves = reliability_curves(result.calibration)
    if curves:
        figures["calibration.png"] = reliability_figure(
            curves, f"{family.registered_name}: calibration"
        )
    for name, figure in figures.items():
        mlflow.log_figure(figure, name)
        plt.close(figure)


def reliability_curves(calibration: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Find every {'bins': [...]} in a calibration report, labelled by its path."""
    curves: dict[str, list[dict[str, Any]]] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "bins" in node:
                curves[path or "confidence"] = node["bins"]
            for key, value in node.items():
                walk(value, f"{path} {key}".strip())

    walk(calibration, "")
    return curves


def outcome_table(outcomes: Sequence[TrainOutcome]) -> pd.DataFrame:
    """One row per family: served metric beside its baseline, its skill, and what happened."""
    rows = []
    for outcome in outcomes:
        family = FAMILIES[outcome.layer]
        metric = family.primary_metric
        rows.append(
            {
                "family": outcome.name,
                "version": outcome.version,
                "metric": metric,
                "lower_is_better": family.lower_is_better,
                "model": outcome.model_metrics.get(metric),
                "baseline": outcome.baseline_metrics.get(metric),
                "beats_baseline": outcome.beats_baseline,
                "skill": skill_text(outcome.skill),
                "edge": edge_text({"skill": outcome.skill}),
                "factor": factor_text(outcome.model_metrics),
                "interval": interval_text(
                    {"validation": outcome.model_metrics, "baseline": outcome.baseline_metrics}
                ),
                "status": outcome.status,
                "why": outcome.reason,
                "seconds": round(outcome.seconds, 1),
            }
        )
    return pd.DataFrame(rows)
