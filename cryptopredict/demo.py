"""The main job end to end on one database: market, models, backfilled history, an account.

Each step first looks at what exists and reuses it, so running the demo twice does not fail
or duplicate anything. The models are trained on candles up to `backfill_days` before the
last candle and then analyse that window hour by hour, so the history the evaluation
backfills is out of sample: no analysed hour was seen in training.

A synthetic market keeps its recipe (coins, seed, first hour) in a file beside the database,
so that `append_candles` can continue it to any later hour: the generator gives the same
candles for the hours already stored, and new ones after them (see `cryptopredict.live`).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlflow.tracking import MlflowClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from cryptopredict.clock import current_hour, floor_hour
from db.schema import AiModel, Cryptocurrency, Prediction, PriceData, User
from models.layers import LAYERS
from serving.batch.backfill import analysed_hours
from serving.inference.models_cache import ActiveModels
from serving.inference.predictor import Predictor
from serving.services import auth
from store.datasets import load_panel
from training.ingest import ingest, write_market
from training.synthetic import SyntheticMarket, generate_until, start_for
from training.train import TrainingStores, TrainOutcome, TrainSettings, train_layers

DEMO_EMAIL = "demo@example.com"
MARKET_FILE = "demo-market.json"
Report = Callable[[str], None]


@dataclass(frozen=True)
class MarketPlan:
    """Where the candles come from when the database has none."""

    data_dir: Path | None
    coins_file: Path | None
    coins: int
    days: int
    seed: int
    # Where a generated market's recipe is kept, so that the demo can continue it.
    recipe_file: Path | None = None


@dataclass(frozen=True)
class MarketRecipe:
    """What regenerates the demo's synthetic market through any later hour."""

    coins: int
    seed: int
    start: datetime  # the first hour

    def generate(self, until: datetime) -> SyntheticMarket:
        return generate_until(self.coins, self.seed, self.start, until)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fields = {"coins": self.coins, "seed": self.seed, "start": self.start.isoformat()}
        path.write_text(json.dumps(fields))

    @classmethod
    def load(cls, path: Path) -> MarketRecipe | None:
        if not path.exists():
            return None
        fields = json.loads(path.read_text())
        start = floor_hour(datetime.fromisoformat(fields["start"]))
        return cls(int(fields["coins"]), int(fields["seed"]), start)


def last_candle(engine: Engine) -> datetime | None:
    with Session(engine) as session:
        return session.scalar(select(func.max(PriceData.timestamp)))


def first_candle(engine: Engine) -> datetime | None:
    with Session(engine) as session:
        return session.scalar(select(func.min(PriceData.timestamp)))


def ensure_market(
    engine: Engine, plan: MarketPlan, report: Report, now: datetime | None = None
) -> datetime:
    """Candles in `price_data`: the ones already there, ingested CSVs, or a synthetic market.

    A synthetic market ends at the current hour (of `now`), so the API can forecast from it
    at once; its recipe goes to `plan.recipe_file`, first, so that it always describes the
    stored market. Ingested candles remove a recipe left there.
    """
    existing = last_candle(engine)
    if existing is not None:
        report(f"market: reusing the candles in the database (last {existing:%Y-%m-%d %H:%M})")
        return existing
    if plan.data_dir is not None:
        if plan.recipe_file is not None:
            plan.recipe_file.unlink(missing_ok=True)
        report(f"market: ingesting {plan.data_dir}")
        ingest(engine, plan.data_dir, coins_file=plan.coins_file)
    else:
        end = current_hour() if now is None else floor_hour(now)
        start = start_for(end, plan.days).to_pydatetime()
        recipe = MarketRecipe(plan.coins, plan.seed, start)
        if plan.recipe_file is not None:
            recipe.save(plan.recipe_file)
        report(f"market: generating {plan.coins} coins x {plan.days} days ending {end:%H:%M}")
        market = recipe.generate(end)
        write_market(engine, market.candles, market.coins)
    latest = last_candle(engine)
    if latest is None:
        raise ValueError("no candles were loaded")
    return latest


def stored_recipe(engine: Engine, path: Path) -> MarketRecipe | None:
    """The recipe of the market in the database, if it was generated here; None otherwise
    (candles ingested, or a recipe that does not start where the stored candles do)."""
    recipe = MarketRecipe.load(path)
    if recipe is None or first_candle(engine) != recipe.start:
        return None
    return recipe


def append_candles(engine: Engine, recipe: MarketRecipe, until: datetime) -> dict[datetime, int]:
    """Continue the synthetic market through `until`, the way `ingest` writes candles: each
    coin's candles after its last stored one, never one that is there already. Returns the
    number of candles written per hour."""
    market = recipe.generate(until)
    candles = market.candles
    newest = candles["symbol"].map(last_candles(engine))
    fresh = candles[newest.isna() | (candles["timestamp"] > newest)]
    if fresh.empty:
        return {}
    write_market(engine, fresh, market.coins)
    return {
        hour.to_pydatetime(): int(count)
        for hour, count in fresh["timestamp"].value_counts().sort_index().items()
    }


def last_candles(engine: Engine) -> dict[str, datetime]:
    """Each coin's newest stored candle."""
    query = (
        select(Cryptocurrency.symbol, func.max(PriceData.timestamp))
        .join(PriceData, PriceData.crypto_id == Cryptocurrency.id)
        .group_by(Cryptocurrency.symbol)
    )
    with Session(engine) as session:
        return {symbol: newest for symbol, newest in session.execute(query).all()}


def active_names(engine: Engine) -> set[str]:
    """The names of the version lines that have an active version."""
    with Session(engine) as session:
        return set(session.scalars(select(AiModel.name).where(AiModel.status == "active")))


def ensure_models(
    engine: Engine,
    client: MlflowClient,
    artifact_root: Path,
    train_until: datetime,
    report: Report,
    settings: TrainSettings | None = None,
) -> list[TrainOutcome]:
    """Train the version lines (a layer, or the asset layer at a horizon) that have no active
    version, on candles up to `train_until`."""
    settings = settings or TrainSettings()
    active = active_names(engine)
    horizons = tuple(
        horizon
        for horizon in settings.forecast_horizons
        if settings.family("asset", horizon).registered_name not in active
    )
    missing = [
        layer
        for layer in LAYERS
        if (horizons if layer == "asset" else settings.family(layer).registered_name not in active)
    ]
    if not missing:
        report("models: every layer has an active version; reusing them")
        return []
    report(f"models: training {', '.join(missing)} on candles up to {train_until:%Y-%m-%d %H:%M}")
    panel = load_panel(engine, until=train_until)
    return train_layers(
        TrainingStores(engine, client, artifact_root),
        panel,
        missing,
        replace(settings, forecast_horizons=horizons),
        progress=lambda message: report(f"  {message}"),
    )


def backfill_analyses(
    engine: Engine,
    hours: list[datetime],
    on_hour: Callable[[datetime], None],
) -> int:
    """Analyse each hour as it stood then; hours already analysed are skipped by `analyze`."""
    written = 0
    for hour, tables in analysed_hours(engine, Predictor(ActiveModels(engine)), hours):
        written += tables["predictions"]
        on_hour(hour)
    return written


def analysis_hours(first: datetime, last: datetime, step_hours: int) -> list[datetime]:
    """The hours from `first` to `last` on a grid of every `step_hours` and `last` itself.

    The grid is counted from the Unix epoch, not from `last`, so it stays where it was as
    the market moves on: a rerun whose last candle is later finds its history analysed.
    """
    step = timedelta(hours=step_hours)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    moment = epoch - ((epoch - first) // step) * step  # the first grid hour at or after it
    hours = []
    while moment < last:
        hours.append(moment)
        moment += step
    return [*hours, last] if last >= first else []


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
