"""The real app over HTTP (TestClient drives it through httpx) on a throwaway PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from accounts import PASSWORD, Account
from cryptopredict.settings import Settings
from serving import auth
from serving.app import create_app


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
