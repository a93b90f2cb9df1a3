"""Schemathesis fuzzes every operation of the app's own OpenAPI schema, as a public user and
as an administrator, on a throwaway PostgreSQL: no 5xx, and every answer is documented.

The schema is loaded from the running app (`/openapi.json`) inside the test, and each
operation's cases are drawn with hypothesis and sent through schemathesis' ASGI transport;
schemathesis' pytest plugin is not used because its lazy (fixture-built) schema does not run
under pytest 9. One database serves the whole module: state accumulates as it would in
production (registrations, watchlists, logouts), and both roles fuzz the same data.

`tests/api/test_live_fuzz.py` runs the same fuzz the way an outside tester would: every phase
and check against `cryptopredict serve` over real HTTP, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import builders
from accounts import PASSWORD
from cryptopredict.settings import Settings
from db.schema import UserSession
from pg_databases import throwaway_database
from serving import auth
from serving.app import create_app
from serving.retraining import Retrainer
from serving.routers.system import get_retrainer
from serving.security import token_digest

# Examples per operation: schema-valid cases, then schema-violating ones; derandomized, so
# that CI sends the same requests every run.
POSITIVE_EXAMPLES = 15
NEGATIVE_EXAMPLES = 6
MODES = {
    schemathesis.GenerationMode.POSITIVE: POSITIVE_EXAMPLES,
    schemathesis.GenerationMode.NEGATIVE: NEGATIVE_EXAMPLES,
}
# Unknown query parameters are ignored (as FastAPI and most HTTP APIs do), not rejected, so
# schemathesis is not asked to count them as schema violations.
CONFIG = schemathesis.Config.from_dict({"generation": {"allow-extra-parameters": False}})
# Business rules refuse some schema-valid input with 422 by design (the password policy, a
# `since` after `until`, an unknown time zone, a horizon the active model does not forecast),
# so "schema-valid data is accepted" does not hold for this API; every other check runs.
EXCLUDED = [positive_data_acceptance]
# With no trained model, forecasts answer 503 (documented): the one 5xx allowed, only there.
NEEDS_A_MODEL = {"POST /api/v1/predictions", "POST /api/v1/predictions/batch"}


def _fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture(scope="module")
def fuzzed_app(
    postgres_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    """The app on its own database, with retraining replaced by a trainer that exits at once."""
    root = tmp_path_factory.mktemp("fuzz")
    with throwaway_database("cryptopredict_fuzz", postgres_template) as url:
        app = create_app(Settings(database_url=url, data_dir=root))
        retrainer = Retrainer.from_settings(app.state.settings)
        retrainer.program = [sys.executable, "-c", "pass"]
        app.dependency_overrides[get_retrainer] = lambda: retrainer
        _seed(app.state.engine)
        yield app
        app.state.engine.dispose()


def _seed(engine: Engine) -> None:
    """A little of everything, at small ids, so that fuzzed ids find rows."""
    with engine.begin() as connection:
        for symbol in ("BTC", "ETH", "SOL"):
            builders.coin(connection, symbol)
        builders.insert(
            connection,
            "ai_models",
            name="macro-regime",
            version="1",
            model_type="macro",
            status="active",
        )


@dataclass
class Caller:
    """A logged-in user whose token is renewed when a fuzzed request revoked it (logout,
    password change), so that every later operation is still fuzzed past authentication."""

    client: TestClient
    engine: Engine
    email: str
    token: str = ""
    logins: int = 0

    def live_token(self) -> str:
        with self.engine.connect() as connection:
            live = connection.scalar(
                select(UserSession.is_active).where(
                    UserSession.session_token == token_digest(self.token)
                )
            )
        if not live:
            answer = self.client.post(
                "/api/v1/auth/login", json={"email": self.email, "password": PASSWORD}
            )
            assert answer.status_code == 200, answer.text
            self.token = answer.json()["access_token"]
            self.logins += 1
        return self.token


@dataclass
class Tally:
    examples: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)


def _fuzz(
    operation: schemathesis.APIOperation,
    mode: schemathesis.GenerationMode,
    examples: int,
    tally: Tally,
) -> None:
    """Send `examples` cases of `operation` and run every check on each answer."""
    needs_a_model = operation.label in NEEDS_A_MODEL
    excluded = [*EXCLUDED, not_a_server_error] if needs_a_model else EXCLUDED

    @given(case=operation.as_strategy(generation_mode=mode))
    @_fuzz_settings(examples)
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call()
        tally.examples += 1
        tally.statuses[response.status_code] += 1
        case.validate_response(response, excluded_checks=excluded)
        if needs_a_model and response.status_code >= 500:
            assert response.status_code == 503, response.text
            assert "model" in response.json()["detail"], response.text

    fuzz()


@pytest.mark.parametrize("role", ["public", "admin"])
def test_every_operation_answers_as_its_schema_says(fuzzed_app: FastAPI, role: str) -> None:
    engine: Engine = fuzzed_app.state.engine
    email = f"fuzz-{role}@example.com"
    with Session(engine) as session:
        auth.create_user(session, email, PASSWORD, role=role)
        session.commit()
    caller = Caller(TestClient(fuzzed_app), engine, email)
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app, config=CONFIG)

    # Applied by schemathesis to every case, except those that drop the token on purpose.
    @schema.auth(refresh_interval=None)
    class Bearer:
        def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
            return caller.live_token()

        def set(
            self, case: schemathesis.Case, token: str, context: schemathesis.AuthContext
        ) -> None:
            case.headers["Authorization"] = f"Bearer {token}"

    tally = Tally()
    started = time.perf_counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode, examples in MODES.items():
            try:
                _fuzz(operation, mode, examples, tally)
            except Unsatisfiable:
                assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as error:  # one failure hides no other
                tally.failures[f"{operation.label} ({mode.value})"] = str(error)[:3000]
    elapsed = time.perf_counter() - started
    print(
        f"\n{role}: {len(operations)} operations, {tally.examples} requests in {elapsed:.1f} s, "
        f"statuses {dict(sorted(tally.statuses.items()))}, re-logins {caller.logins}"
    )
    assert not tally.failures, "\n\n".join(f"{k}:\n{v}" for k, v in tally.failures.items())
    assert len(operations) >= 50
    assert tally.statuses[200] > 0 and tally.statuses[422] > 0
