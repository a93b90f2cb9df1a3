"""The main job end to end on one database: market, models, backfilled history, an account.

Each step first looks at what exists and reuses it, so running the demo twice does not fail
or duplicate anything. The models are trained on candles up to `backfill_days` before the
last candle and then analyse that window hour by hour, so the history the evaluation
backfills is out of sample: no analysed hour was seen in training.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from db.schema import AiModel, Prediction, PriceData, User
from models.families import FAMILIES
from models.layers import LAYERS
from serving import auth
from serving.analysis import analyze
from serving.models_cache import ActiveModels
from serving.predictor import Predictor
from training.datasets import load_panel
from training.ingest import ingest, write_candles
from training.synthetic import generate_market
from training.train import TrainOutcome, TrainSettings, train_layers

DEMO_EMAIL = "demo@example.com"
Report = Callable[[str], None]


@dataclass(frozen=True)
class MarketPlan:
    """Where the candles come from when the database has none."""

    data_dir: Path | None
    coins_file: Path | None
    coins: int
    days: int
    seed: int


def last_candle(engine: Engine) -> datetime | None:
    with Session(engine) as session:
        return session.scalar(select(func.max(PriceData.timestamp)))


def ensure_market(engine: Engine, plan: MarketPlan, report: Report) -> datetime:
    """Candles in `price_data`: the ones already there, ingested CSVs, or a synthetic market.

    A synthetic market ends at the current hour, so the API can forecast from it at once.
    """
    existing = last_candle(engine)
    if existing is not None:
        report(f"market: reusing the candles in the database (last {existing:%Y-%m-%d %H:%M})")
        return existing
    if plan.data_dir is not None:
        report(f"market: ingesting {plan.data_dir}")
        ingest(engine, plan.data_dir, coins_file=plan.coins_file)
    else:
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(hours=24 * plan.days - 1)
        report(f"market: generating {plan.coins} coins x {plan.days} days ending {end:%H:%M}")
        market = generate_market(plan.coins, plan.days, plan.seed, start=start)
        frames = {
            symbol: frame.drop(columns="symbol").reset_index(drop=True)
            for symbol, frame in market.candles.groupby("symbol", sort=False)
        }
        write_candles(engine, frames, market.coins)
    latest = last_candle(engine)
    if latest is None:
        raise ValueError("no candles were loaded")
    return latest


def active_layers(engine: Engine) -> set[str]:
    with Session(engine) as session:
        names = set(session.scalars(select(AiModel.name).where(AiModel.status == "active")))
    return {layer for layer in LAYERS if FAMILIES[layer].name in names}


def ensure_models(
    engine: Engine,
    client: MlflowClient,
    artifact_root: Path,
    train_until: datetime,
    report: Report,
    settings: TrainSettings | None = None,
) -> list[TrainOutcome]:
    """Train the layers that have no active version, on candles up to `train_until`."""
    missing = [layer for layer in LAYERS if layer not in active_layers(engine)]
    if not missing:
        report("models: every layer has an active version; reusing them")
        return []
    report(f"models: training {', '.join(missing)} on candles up to {train_until:%Y-%m-%d %H:%M}")
    panel = load_panel(engine, until=train_until)
    return train_layers(
        engine,
        client,
        artifact_root,
        panel,
        missing,
        settings or TrainSettings(),
        progress=lambda message: report(f"  {message}"),
    )


def backfill_analyses(
    engine: Engine,
    hours: list[datetime],
    on_hour: Callable[[datetime], None],
) -> int:
    """Analyse each hour as it stood then; hours already analysed are skipped by `analyze`."""
    if not hours:
        return 0
    panel = load_panel(engine, until=hours[-1])
    predictor = Predictor(ActiveModels(engine))
    written = 0
    for hour in hours:
        result = analyze(engine, predictor, panel.between(None, pd.Timestamp(hour)))
        written += result.written["predictions"]
        on_hour(hour)
    return written


def analysis_hours(first: datetime, last: datetime, step_hours: int) -> list[datetime]:
    """Every `step_hours` from `first` to `last`, ending exactly on `last`."""
    hours = []
    moment = last
    while moment >= first:
        hours.append(moment)
        moment -= timedelta(hours=step_hours)
    return hours[::-1]


def realized_count(engine: Engine) -> tuple[int, int]:
    """(realized, all) predictions."""
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Prediction)) or 0
        realized = (
            session.scalar(
                select(func.count()).select_from(Prediction).where(Prediction.is_realized)
            )
            or 0
        )
    return int(realized), int(total)


def demo_account(engine: Engine, data_dir: Path) -> tuple[str, str]:
    """The demo user's email and password, created once and kept in `data_dir` (mode 600).

    The database keeps only the argon2 hash, so the password lives in that file for the
    README's curl; a real deployment creates its accounts with `cryptopredict users`.
    """
    path = data_dir / "demo-account.json"
    with Session(engine) as session:
        exists = session.scalar(select(User.id).where(User.email == DEMO_EMAIL)) is not None
        if exists and path.exists():
            stored = json.loads(path.read_text())
            return stored["email"], stored["password"]
        password = f"{secrets.token_urlsafe(12)}7"
        if exists:
            user = session.scalars(select(User).where(User.email == DEMO_EMAIL)).one()
            user.password_hash = auth.hash_password(password)
        else:
            auth.create_user(session, DEMO_EMAIL, password, first_name="Demo")
        session.commit()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"email": DEMO_EMAIL, "password": password}))
    os.chmod(path, 0o600)
    return DEMO_EMAIL, password


def curl_commands(base_url: str, email: str, password: str) -> str:
    """A login and a POST /predictions, ready to paste into a shell."""
    credentials = json.dumps({"email": email, "password": password})
    return (
        f"TOKEN=$(curl -s -X POST {base_url}/api/v1/auth/login "
        f"-H 'Content-Type: application/json' -d '{credentials}' "
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')\n"
        f'curl -s -X POST {base_url}/api/v1/predictions -H "Authorization: Bearer $TOKEN" '
        "-H 'Content-Type: application/json' -d '{\"crypto\": \"BTC\"}'"
    )
