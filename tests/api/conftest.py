"""The real app over HTTP (TestClient drives it through httpx) on a throwaway PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from accounts import PASSWORD, Account
from config.settings import Settings
from db.engine import make_engine
from pg_databases import throwaway_database
from serving.api.app import create_app
from serving.services import auth
from small_training import LAYERS, TrainedStore
from small_training import SETTINGS as SMALL
from store.datasets import load_panel
from store.tracking import configure_tracking
from training.ingest import write_candles
from training.synthetic import generate_market
from training.train import TrainingStores, train_layers


@pytest.fixture
def app(postgres_url: str, tmp_path: Path) -> Iterator[FastAPI]:
    application = create_app(Settings(database_url=postgres_url, data_dir=tmp_path / "var"))
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def api_engine(app: FastAPI) -> Engine:
    """The app's own engine, for arranging rows and checking what requests wrote."""
    engine: Engine = app.state.engine
    return engine


AccountFactory = Callable[..., Account]


@pytest.fixture
def account(client: TestClient, api_engine: Engine) -> AccountFactory:
    """Create a user with the given role and log it in over HTTP."""
    counter = iter(range(1, 1000))

    def make(role: str = "public", email: str | None = None) -> Account:
        email = email or f"{role}{next(counter)}@example.com"
        with Session(api_engine) as session:
            user = auth.create_user(session, email, PASSWORD, role=role)
            session.commit()
            user_id = user.id
        response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        body = response.json()
        return Account(user_id, email, body["access_token"], body["refresh_token"])

    return make


@pytest.fixture
def admin(account: AccountFactory) -> Account:
    return account("admin")


@pytest.fixture
def alice(account: AccountFactory) -> Account:
    return account("public", "alice@example.com")


@pytest.fixture
def bob(account: AccountFactory) -> Account:
    return account("public", "bob@example.com")


@pytest.fixture(scope="session")
def trained_store(
    postgres_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrainedStore]:
    """Trained once per session (tens of seconds); tests get clones of the database.

    The market ends at the current hour, so the API's candle-freshness check passes.
    """
    root = tmp_path_factory.mktemp("trained")
    last_candle = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    days = 100
    start = last_candle - timedelta(hours=24 * days - 1)
    with throwaway_database("cryptopredict_trained", postgres_template) as url:
        engine = make_engine(url)
        market = generate_market(6, days, seed=5, start=start)
        frames = {
            symbol: frame.drop(columns="symbol").reset_index(drop=True)
            for symbol, frame in market.candles.groupby("symbol")
        }
        write_candles(engine, frames, market.coins)
        tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
        client = configure_tracking(tracking_uri, root / "mlartifacts")
        # Two asset lines, so that the API serves several horizons.
        settings = replace(SMALL, forecast_horizons=(6, 24))
        train_layers(
            TrainingStores(engine, client, root / "mlartifacts"),
            load_panel(engine),
            LAYERS,
            settings,
        )
        engine.dispose()
        name = make_url(url).database
        assert name is not None
        yield TrainedStore(name, tracking_uri, root, last_candle)


@pytest.fixture
def trained_app(trained_store: TrainedStore, tmp_path: Path) -> Iterator[FastAPI]:
    """The app on a clone of the trained database."""
    with throwaway_database("cryptopredict_test", trained_store.template) as url:
        settings = Settings(
            database_url=url,
            data_dir=trained_store.data_dir,
            mlflow_tracking_uri=trained_store.tracking_uri,
        )
        application = create_app(settings)
        yield application
        application.state.engine.dispose()
