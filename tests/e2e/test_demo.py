"""The README's first command end to end, on the embedded SQLite default and a small market.

`cryptopredict demo` runs in a subprocess exactly as a newcomer would start it, with its API;
the test logs in over HTTP, asks for a real prediction, stops the server, lets the market
move on a day (ingesting the next candles) and checks that the nightly evaluation scores it.
Run again after losing its last hours, the demo catches them up as the same market. (The
live hour itself, under a clock the test sets, is in test_live_demo.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import Connection, create_engine, delete, func, select, text

from db.schema import PriceData

DEMO = ["demo", "--coins", "4", "--days", "90", "--backfill-days", "2", "--step-hours", "12"]
STARTUP_SECONDS = 600


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cryptopredict(workdir: Path, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    # What earlier tests in this process pointed MLflow at (its set_*_uri export them) is not
    # the demo's: a newcomer's shell has none of it.
    unset = {"DATABASE_URL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["DATA_DIR"] = str(workdir / "var")
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", "cryptopredict", *args],
        cwd=workdir,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kwargs,
    )


def _run(workdir: Path, *args: str) -> str:
    process = _cryptopredict(workdir, *args)
    output, _ = process.communicate(timeout=STARTUP_SECONDS)
    assert process.returncode == 0, output
    return output


@pytest.fixture(scope="module")
def demo_run() -> Iterator[tuple[Path, str, str]]:
    """The demo set up and serving: (workdir, base URL, everything it printed until then).

    The working directory is a short one in the system's temporary directory, not under
    pytest's base directory (longer under xdist, `.../popen-gw0/...`): the demo prints its
    commands on a 120-column console, which would break a long data path's line in two.
    """
    workdir = Path(tempfile.mkdtemp(prefix="demo-"))
    port = _free_port()
    process = _cryptopredict(workdir, *DEMO, "--port", str(port))
    base_url = f"http://127.0.0.1:{port}"
    printed: list[str] = []
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        assert process.stdout is not None
        for line in process.stdout:
            printed.append(line)
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
            assert time.monotonic() < deadline, "".join(printed)
        assert process.poll() is None, "".join(printed)
        yield workdir, base_url, "".join(printed)
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


def test_demo_prints_what_a_newcomer_needs(demo_run: tuple[Path, str, str]) -> None:
    _, base_url, printed = demo_run
    assert "training macro, sector, asset, timing" in printed
    assert f"{base_url}/docs" in printed
    assert "mlflow ui --backend-store-uri sqlite:///" in printed
    assert "curl -s -X POST" in printed and "/api/v1/predictions" in printed
    for family in ("macro_regime", "sector_rotation", "asset_price", "trade_timing"):
        assert family in printed
    # The history was analysed out of sample and its accuracy columns backfilled.
    evaluated = int(printed.split("predictions: ")[1].split(" of ")[0])
    assert evaluated > 0
    assert "while the API serves, each new hour is appended, analysed and evaluated" in printed


def test_running_it_again_reuses_everything_and_catches_up_missed_hours(
    demo_run: tuple[Path, str, str],
) -> None:
    # Runs before the next test moves the market on. The market loses its last two hours,
    # as if the demo had stopped then; started again, it appends, analyses and evaluates them.
    # (Rewound behind the hour it was made, it analyses one more hour of history too: a real
    # stop finds its history analysed, see test_live_demo.py.)
    workdir, _, _ = demo_run
    database = create_engine(f"sqlite:///{workdir / 'var' / 'cryptopredict.db'}")
    with database.begin() as connection:
        last = connection.execute(select(func.max(PriceData.timestamp))).scalar_one()
        stopped = last - timedelta(hours=2)
        lost = _candles_after(connection, stopped)
        connection.execute(delete(PriceData).where(PriceData.timestamp > stopped))

    again = _run(workdir, *DEMO, "--no-serve")

    assert "reusing the candles" in again
    assert "every layer has an active version; reusing them" in again
    assert "live: catching up" in again
    for hour in (last - timedelta(hours=1), last):
        # 4 candles appended, unless the server's own loop was first (the clock turned).
        assert f"live {hour:%Y-%m-%d %H:%M} UTC: " in again
    # The same market continued: the lost candles came back as they were.
    with database.connect() as connection:
        restored = _candles_after(connection, stopped)
    database.dispose()
    assert len(lost) == 2 * 4
    assert restored[: len(lost)] == lost


def _candles_after(connection: Connection, moment: datetime) -> list[tuple[object, ...]]:
    columns = (PriceData.timestamp, PriceData.crypto_id, PriceData.open_price)
    query = select(*columns, PriceData.close_price).where(PriceData.timestamp > moment)
    return [tuple(row) for row in connection.execute(query.order_by(*columns[:2]))]


def test_a_prediction_over_http_is_evaluated_once_its_candle_arrives(
    demo_run: tuple[Path, str, str],
) -> None:
    workdir, base_url, _ = demo_run
    account = json.loads((workdir / "var" / "demo-account.json").read_text())
    with httpx.Client(base_url=base_url, timeout=60) as client:
        assert client.get("/docs").status_code == 200
        login = client.post("/api/v1/auth/login", json=account)
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        made = client.post("/api/v1/predictions", headers=headers, json={"crypto": "BTC"})
        assert made.status_code == 201, made.text
    prediction = made.json()
    target = datetime.fromisoformat(prediction["target_datetime"])

    # A day passes: the next 24 BTC candles arrive, flat at the target price.
    last = target - timedelta(hours=prediction["prediction_horizon"])
    close = 101.5
    hours = pd.date_range(last + timedelta(hours=1), target, freq="1h")
    candles = pd.DataFrame(
        {"timestamp": hours, "open": close, "high": close, "low": close, "close": close}
    ).assign(volume=1.0)
    candles.to_csv(workdir / "BTC-USD_1h.csv", index=False)
    _run(workdir, "ingest", str(workdir / "BTC-USD_1h.csv"))
    evaluated = _run(workdir, "evaluate", "--as-of", target.isoformat())
    assert "evaluated" in evaluated

    database = create_engine(f"sqlite:///{workdir / 'var' / 'cryptopredict.db'}")
    with database.connect() as connection:
        row = connection.execute(
            text(
                "SELECT is_realized, actual_price, absolute_error FROM predictions WHERE id = :id"
            ),
            {"id": prediction["id"]},
        ).one()
    database.dispose()
    assert row.is_realized
    assert float(row.actual_price) == pytest.approx(close)
    assert float(row.absolute_error) == pytest.approx(abs(prediction["predicted_price"] - close))
