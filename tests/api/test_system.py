"""System endpoints: health checks, model versions, retraining in the background, activities."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import builders
from accounts import Account
from config.settings import Settings
from db.schema import AiModel, SystemHealth, UserActivity
from models.families import FAMILIES
from models.skill import NO_EDGE
from serving.api.deps import get_health_monitor, get_retrainer
from serving.services.health import HealthMonitor
from serving.services.retraining import Retrainer, process_alive

HEALTH = "/api/v1/system/health"
MODELS = "/api/v1/system/models"
ACTIVITIES = "/api/v1/system/activities"

# Stands in for `python -m cryptopredict`: records how it was run, then sleeps a while.
FAKE_TRAINER = """
import json, os, sys, time
with open(os.environ["FAKE_TRAINER_OUT"], "w") as out:
    json.dump({"argv": sys.argv[1:], "database_url": os.environ["DATABASE_URL"],
               "data_dir": os.environ["DATA_DIR"],
               "tracking": os.environ["MLFLOW_TRACKING_URI"]}, out)
print("fake training of", sys.argv[-1], flush=True)
time.sleep(float(os.environ["FAKE_TRAINER_SECONDS"]))
sys.exit(int(os.environ["FAKE_TRAINER_EXIT"]))
"""


def model_row(engine: Engine, layer: str, status: str, **values: Any) -> int:
    with Session(engine) as session:
        row = AiModel(
            name=FAMILIES[layer].name,
            version=values.pop("version", f"{status}-1"),
            model_type=layer,
            status=status,
            **values,
        )
        session.add(row)
        session.commit()
        return row.id


class FakeTrainers:
    """Retrainers whose `program` is the fake trainer; kills what it started at the end."""

    def __init__(self, app: FastAPI, tmp_path: Path) -> None:
        self.app = app
        self.out = tmp_path / "fake-trainer.json"
        self.retrainer: Retrainer | None = None

    def use(self, seconds: float = 0.0, exit_code: int = 0) -> Retrainer:
        settings: Settings = self.app.state.settings
        retrainer = Retrainer.from_settings(settings)
        retrainer.program = [sys.executable, "-c", FAKE_TRAINER]
        retrainer.environment.update(
            FAKE_TRAINER_OUT=str(self.out),
            FAKE_TRAINER_SECONDS=str(seconds),
            FAKE_TRAINER_EXIT=str(exit_code),
        )
        self.app.dependency_overrides[get_retrainer] = lambda: retrainer
        self.retrainer = retrainer
        return retrainer

    def recorded(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.out.read_text())
        return result

    def stop_all(self) -> None:
        if self.retrainer is None or not self.retrainer.directory.is_dir():
            return
        for path in self.retrainer.directory.glob("*.json"):
            if ".status" in path.name:
                continue
            pid = json.loads(path.read_text())["supervisor_pid"]
            if process_alive(pid):
                os.killpg(pid, signal.SIGTERM)


@pytest.fixture
def trainers(app: FastAPI, tmp_path: Path) -> Iterator[FakeTrainers]:
    fakes = FakeTrainers(app, tmp_path)
    yield fakes
    fakes.stop_all()


def wait_for_end(client: TestClient, url: str, admin: Account) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(url, headers=admin.headers).json()
        if body["state"] != "running":
            return body
        time.sleep(0.2)
    raise AssertionError(f"job still running: {body}")


# --------------------------------------------------------------------------- health


def fresh_checks(app: FastAPI) -> None:
    app.dependency_overrides[get_health_monitor] = lambda: HealthMonitor(timedelta(0))


class LoadsEverything:
    """A model loader for which every active version loads (the real one needs MLflow)."""

    def get(self, layer: str) -> object:
        return object()


def test_health_is_open_but_says_only_up_without_an_admin_token(
    client: TestClient, alice: Account
) -> None:
    for headers in ({}, alice.headers):
        answer = client.get(HEALTH, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": "up"}
    assert client.get(HEALTH, headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_health_checks_everything_and_records_a_row(
    client: TestClient, app: FastAPI, api_engine: Engine, admin: Account
) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with api_engine.begin() as connection:
        fresh = builders.coin(connection, "FRESH")
        stale = builders.coin(connection, "STALE")
        builders.coin(connection, "EMPTY")
        for crypto_id, moment in ((fresh, now), (stale, now - timedelta(hours=10))):
            builders.insert(
                connection,
                "price_data",
                crypto_id=crypto_id,
                timestamp=moment,
                open_price=1,
                high_price=1,
                low_price=1,
                close_price=1,
            )
    model_row(api_engine, "macro", "active", configuration={})
    model_row(api_engine, "asset", "training")

    response = client.get(HEALTH, headers=admin.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    with Session(api_engine) as session:
        stored = session.get(SystemHealth, body["id"])
    assert stored is not None
    assert body["database_status"]["status"] == "up"
    assert body["database_status"]["dialect"] == "postgresql"
    assert body["database_status"]["latency_ms"] >= 0
    layers = body["ml_models_status"]["layers"]
    # The macro row records no MLflow run: the real loader cannot load it.
    assert layers["macro"]["status"] == "error"
    assert "MLflow run" in layers["macro"]["error"]
    assert layers["sector"]["status"] == "missing"
    assert layers["asset"] == {"status": "missing", "training": True}
    data = body["data_pipeline_status"]
    assert (data["coins"], data["fresh"], data["without_candles"]) == (3, 1, ["EMPTY"])
    assert data["stale_hours"]["STALE"] >= 10
    assert "STALE: newest candle is" in " ".join(body["error_logs"])
    # api 10 + database 30 + no model loads + one coin of three fresh (10).
    assert body["overall_health_score"] == pytest.approx(50.0)
    assert body["status"] == "degraded"
    assert float(stored.overall_health_score or 0) == pytest.approx(50.0)
    assert stored.error_logs == body["error_logs"]


def test_health_is_healthy_when_models_load_and_data_is_fresh(
    client: TestClient, app: FastAPI, api_engine: Engine, admin: Account
) -> None:
    app.state.models = LoadsEverything()
    with api_engine.begin() as connection:
        crypto_id = builders.coin(connection, "BTC")
        builders.insert(
            connection,
            "price_data",
            crypto_id=crypto_id,
            timestamp=datetime.now(UTC) - timedelta(minutes=70),
            open_price=1,
            high_price=1,
            low_price=1,
            close_price=1,
        )
    for layer in ("macro", "sector", "asset", "timing"):
        model_row(api_engine, layer, "active")

    body = client.get(HEALTH, headers=admin.headers).json()

    assert body["overall_health_score"] == 100
    assert body["status"] == "healthy"
    assert body["error_logs"] == []
    assert body["ml_models_status"]["status"] == "ok"
    assert body["data_pipeline_status"]["status"] == "ok"


def test_health_checks_at_most_once_per_interval(
    client: TestClient, app: FastAPI, api_engine: Engine, admin: Account
) -> None:
    first = client.get(HEALTH, headers=admin.headers).json()
    second = client.get(HEALTH).json()
    fresh_checks(app)
    third = client.get(HEALTH, headers=admin.headers).json()

    assert second == {"status": "up"}
    assert third["id"] != first["id"]
    with Session(api_engine) as session:
        assert session.scalar(select(func.count()).select_from(SystemHealth)) == 2
    assert first["data_pipeline_status"]["status"] == "no_data"
    assert first["status"] == "unhealthy"


# --------------------------------------------------------------------------- models


def test_models_list_filters_newest_first(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    old = model_row(api_engine, "asset", "inactive", version="1")
    new = model_row(api_engine, "asset", "active", version="2")
    macro = model_row(api_engine, "macro", "error", version="1")

    everything = client.get(MODELS, headers=alice.headers).json()
    assets = client.get(MODELS, params={"model_type": "asset"}, headers=alice.headers).json()
    broken = client.get(MODELS, params={"status": "error"}, headers=alice.headers).json()

    assert [item["id"] for item in everything["items"]] == [macro, new, old]
    assert [item["id"] for item in assets["items"]] == [new, old]
    assert assets["total"] == 2
    assert [item["id"] for item in broken["items"]] == [macro]
    detail = client.get(f"{MODELS}/{new}", headers=alice.headers)
    assert detail.status_code == 200
    assert detail.json()["version"] == "2"
    assert detail.json()["status"] == "active"


def test_models_say_whether_their_edge_is_demonstrated(
    client: TestClient, api_engine: Engine, alice: Account
) -> None:
    skill = {"metric": "mae", "estimate": 0.01, "low": -0.002, "high": 0.02, "n_blocks": 40}
    unproven = model_row(
        api_engine, "asset", "active", performance_metrics={"skill": skill, "edge": NO_EDGE}
    )
    unfinished = model_row(api_engine, "macro", "training")

    items = {item["id"]: item for item in client.get(MODELS, headers=alice.headers).json()["items"]}

    assert items[unproven]["edge"] == NO_EDGE
    assert items[unfinished]["edge"] is None


def test_models_need_a_token_valid_filters_and_an_existing_id(
    client: TestClient, alice: Account
) -> None:
    assert client.get(MODELS).status_code == 401
    assert client.get(f"{MODELS}/1").status_code == 401
    bad = client.get(MODELS, params={"status": "sleeping"}, headers=alice.headers)
    assert bad.status_code == 422
    assert client.get(f"{MODELS}/abc", headers=alice.headers).status_code == 422
    missing = client.get(f"{MODELS}/999999", headers=alice.headers)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "model 999999 not found"


# --------------------------------------------------------------------------- retraining


def test_retrain_starts_the_trainer_in_the_background_and_can_be_followed(
    client: TestClient,
    app: FastAPI,
    api_engine: Engine,
    admin: Account,
    trainers: FakeTrainers,
) -> None:
    model_id = model_row(api_engine, "asset", "active")
    trainers.use(seconds=0.5)

    started = time.monotonic()
    response = client.post(f"{MODELS}/{model_id}/retrain", headers=admin.headers)

    assert response.status_code == 202, response.text
    assert time.monotonic() - started < 5  # it did not wait for the training
    body = response.json()
    assert response.headers["location"] == f"/api/v1/system/retrains/{body['id']}"
    assert body["follow"] == response.headers["location"]
    assert body["state"] == "running"
    assert body["layer"] == "asset"
    assert body["command"][-3:] == ["train", "--layer", "asset"]
    ended = wait_for_end(client, body["follow"], admin)
    assert ended["state"] == "succeeded"
    assert ended["exit_code"] == 0
    assert "fake training of asset" in ended["log_tail"]
    settings: Settings = app.state.settings
    ran = trainers.recorded()
    assert ran["argv"] == ["train", "--layer", "asset"]
    assert ran["database_url"] == settings.resolved_database_url
    assert ran["data_dir"] == str(settings.data_dir.resolve())
    assert ran["tracking"] == settings.resolved_mlflow_tracking_uri
    with Session(api_engine) as session:
        recorded = session.scalars(
            select(UserActivity).where(UserActivity.activity_type == "model_retrain")
        ).one()
    assert (recorded.user_id, recorded.entity_id) == (admin.id, model_id)
    assert recorded.details is not None and recorded.details["job_id"] == body["id"]


def test_retrain_reports_a_failed_run(
    client: TestClient, api_engine: Engine, admin: Account, trainers: FakeTrainers
) -> None:
    model_id = model_row(api_engine, "timing", "inactive")
    trainers.use(exit_code=3)

    body = client.post(f"{MODELS}/{model_id}/retrain", headers=admin.headers).json()
    ended = wait_for_end(client, body["follow"], admin)

    assert ended["state"] == "failed"
    assert ended["exit_code"] == 3


def test_retrain_refuses_while_the_family_trains(
    client: TestClient, api_engine: Engine, admin: Account, trainers: FakeTrainers
) -> None:
    model_id = model_row(api_engine, "sector", "active")
    other_layer = model_row(api_engine, "macro", "active")
    trainers.use(seconds=60)

    first = client.post(f"{MODELS}/{model_id}/retrain", headers=admin.headers)
    again = client.post(f"{MODELS}/{model_id}/retrain", headers=admin.headers)
    elsewhere = client.post(f"{MODELS}/{other_layer}/retrain", headers=admin.headers)

    assert first.status_code == 202
    assert again.status_code == 409
    assert again.json()["job_id"] == first.json()["id"]
    assert "already running" in again.json()["detail"]
    assert elsewhere.status_code == 202


def test_retrain_refuses_when_a_training_row_exists_and_clears_an_abandoned_one(
    client: TestClient, api_engine: Engine, admin: Account, trainers: FakeTrainers
) -> None:
    trainers.use()
    # A `training` row from a run started elsewhere (e.g. the command line).
    model_id = model_row(api_engine, "asset", "active")
    busy = model_row(api_engine, "asset", "training", configuration={"host": "elsewhere"})
    refused = client.post(f"{MODELS}/{model_id}/retrain", headers=admin.headers)
    assert refused.status_code == 409
    assert refused.json()["model_id"] == busy

    # A `training` row whose trainer on this host is gone does not block for ever.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    macro = model_row(api_engine, "macro", "active")
    abandoned = model_row(
        api_engine,
        "macro",
        "training",
        configuration={"host": platform.node(), "pid": gone.pid},
    )
    accepted = client.post(f"{MODELS}/{macro}/retrain", headers=admin.headers)
    assert accepted.status_code == 202
    with Session(api_engine) as session:
        row = session.get(AiModel, abandoned)
        assert row is not None
        assert row.status == "error"


def test_retrain_is_for_admins_of_existing_models(
    client: TestClient, api_engine: Engine, admin: Account, alice: Account, trainers: FakeTrainers
) -> None:
    trainers.use()
    model_id = model_row(api_engine, "asset", "active")
    url = f"{MODELS}/{model_id}/retrain"

    assert client.post(url).status_code == 401
    assert client.post(url, headers=alice.headers).status_code == 403
    assert client.post(f"{MODELS}/999999/retrain", headers=admin.headers).status_code == 404
    assert client.post(f"{MODELS}/x/retrain", headers=admin.headers).status_code == 422
    assert not trainers.out.exists()  # nothing was started
    job = "/api/v1/system/retrains/" + "0" * 32
    assert client.get(job).status_code == 401
    assert client.get(job, headers=alice.headers).status_code == 403
    assert client.get(job, headers=admin.headers).status_code == 404
    bad = client.get("/api/v1/system/retrains/..%2Fsecrets", headers=admin.headers)
    assert bad.status_code in (404, 422)


def test_retrain_runs_the_real_train_command_against_the_apps_database(
    client: TestClient, app: FastAPI, api_engine: Engine, admin: Account
) -> None:
    """The real `cryptopredict train`, which fails fast here: the database has no candles."""
    model_id = model_row(api_engine, "macro", "active")
    retrainer = Retrainer.from_settings(app.state.settings)
    assert retrainer.command_for("macro") == [
        sys.executable,
        "-m",
        "cryptopredict",
        "train",
        "--layer",
        "macro",
    ]

    body = client.post(f"{MODELS}/{model_id}/retrain", headers=admin.headers).json()
    ended = wait_for_end(client, body["follow"], admin)

    assert body["command"] == retrainer.command_for("macro")
    assert ended["state"] == "failed"
    assert ended["exit_code"] == 1
    # It reached the app's (migrated, empty) database, not a default one.
    assert "price_data holds no candles" in ended["log_tail"]


# --------------------------------------------------------------------------- activities


def test_activities_filter_newest_first_for_admins(
    client: TestClient, api_engine: Engine, admin: Account, alice: Account
) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    with Session(api_engine) as session:
        session.add_all(
            [
                UserActivity(
                    user_id=alice.id,
                    activity_type="watchlist",
                    action="create",
                    entity_type="watchlist",
                    entity_id=7,
                    ip_address="10.0.0.1",
                    created_at=moment + timedelta(hours=hour),
                )
                for hour in range(3)
            ]
        )
        session.commit()

    mine = client.get(
        ACTIVITIES,
        params={"user_id": alice.id, "activity_type": "watchlist"},
        headers=admin.headers,
    ).json()
    window = client.get(
        ACTIVITIES,
        params={
            "entity_type": "watchlist",
            "since": (moment + timedelta(hours=1)).isoformat(),
            "until": (moment + timedelta(hours=2)).isoformat(),
        },
        headers=admin.headers,
    ).json()
    logins = client.get(ACTIVITIES, params={"activity_type": "login"}, headers=admin.headers)

    assert mine["total"] == 3
    times = [item["created_at"] for item in mine["items"]]
    assert times == sorted(times, reverse=True)
    assert [item["created_at"] for item in window["items"]] == ["2026-01-01T01:00:00Z"]
    assert mine["items"][0]["ip_address"] == "10.0.0.1"
    # The logins of the fixtures.
    assert {item["user_id"] for item in logins.json()["items"]} == {admin.id, alice.id}


def test_activities_are_for_admins_with_valid_filters(
    client: TestClient, admin: Account, alice: Account
) -> None:
    assert client.get(ACTIVITIES).status_code == 401
    assert client.get(ACTIVITIES, headers=alice.headers).status_code == 403
    assert client.get(ACTIVITIES, params={"user_id": 0}, headers=admin.headers).status_code == 422
    reversed_window = {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    assert client.get(ACTIVITIES, params=reversed_window, headers=admin.headers).status_code == 422
