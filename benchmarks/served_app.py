"""The real app served by uvicorn on loopback, over a throwaway PostgreSQL with trained models.

Shared by `load.py` and `faults.py`: a migrated database on the server at
``BENCH_POSTGRES_URL`` (dropped afterwards), a synthetic market ending at the current hour
(so the API's candle-freshness check passes), the four families trained with the small
settings the API tests use (MLflow store in a temporary directory), then
`python -m cryptopredict serve` in a subprocess with DATABASE_URL, DATA_DIR and
MLFLOW_TRACKING_URI in its environment, and a public user registered and logged in over HTTP.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from ingest import Progress, throwaway_database

from db.engine import make_engine
from db.migrate import upgrade
from store.datasets import load_panel
from store.tracking import configure_tracking
from training.ingest import write_candles
from training.synthetic import generate_market
from training.train import TrainingStores, train_layers

REPOSITORY = Path(__file__).resolve().parents[1]
# The API tests' small training settings: four families in tens of seconds on two cores.
sys.path.insert(0, str(REPOSITORY / "tests"))
from small_training import LAYERS, SETTINGS  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
API = "/api/v1"
PASSWORD = "correct-horse-42"
STARTUP_SECONDS = 120
LOG_TAIL_LINES = 60


@dataclass(frozen=True)
class Market:
    """A migrated database with candles up to ``last_candle`` and four active families."""

    database_url: str
    data_dir: Path
    tracking_uri: str
    symbols: list[str]
    last_candle: datetime


@contextmanager
def trained_market(
    scratch: Path, progress: Progress, coins: int = 6, days: int = 100, prefix: str = "bench"
) -> Iterator[Market]:
    """A throwaway database holding a fresh market and four trained families."""
    admin_url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_URL)
    last_candle = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = last_candle - timedelta(hours=24 * days - 1)
    with throwaway_database(admin_url, prefix) as url:
        progress(f"migrating a throwaway database; {coins} coins x {days} days of candles")
        upgrade(url)
        engine = make_engine(url)
        try:
            market = generate_market(coins, days, seed=5, start=start)
            frames = {
                symbol: frame.drop(columns="symbol").reset_index(drop=True)
                for symbol, frame in market.candles.groupby("symbol")
            }
            write_candles(engine, frames, market.coins)
            progress("training the four families (small settings)")
            tracking_uri = f"sqlite:///{scratch / 'mlflow.db'}"
            client = configure_tracking(tracking_uri, scratch / "mlartifacts")
            train_layers(
                TrainingStores(engine, client, scratch / "mlartifacts"),
                load_panel(engine),
                LAYERS,
                SETTINGS,
            )
        finally:
            engine.dispose()
        yield Market(url, scratch, tracking_uri, sorted(frames), last_candle)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(
    market: Market, workers: int, progress: Progress, log_level: str = "WARNING"
) -> Iterator[str]:
    """`cryptopredict serve` on a free loopback port; its base URL (…/api/v1)."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": market.database_url,
        "DATA_DIR": str(market.data_dir),
        "MLFLOW_TRACKING_URI": market.tracking_uri,
        "LOG_LEVEL": log_level,
    }
    command = [sys.executable, "-m", "cryptopredict", "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    log_path = market.data_dir / f"serve-{port}.log"
    progress(f"starting `cryptopredict serve --workers {workers}` on port {port}")
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=REPOSITORY, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}{API}"
    try:
        wait_until_up(base, server, log_path)
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        logged = log_path.read_text(errors="replace").splitlines()
        if logged:
            progress(f"server log ({len(logged)} lines), the last {LOG_TAIL_LINES}:")
            print("\n".join(logged[-LOG_TAIL_LINES:]), file=sys.stderr)


def wait_until_up(base: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited ({server.returncode}):\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base}/system/health", timeout=5).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server did not answer within {STARTUP_SECONDS} s")


def public_user(base: str, email: str = "load@example.com") -> tuple[int, str]:
    """Register a public account over HTTP and log it in; its id and bearer token."""
    registered = httpx.post(
        f"{base}/auth/register", json={"email": email, "password": PASSWORD}, timeout=30
    )
    registered.raise_for_status()
    login = httpx.post(
        f"{base}/auth/login", json={"email": email, "password": PASSWORD}, timeout=30
    )
    login.raise_for_status()
    return int(registered.json()["id"]), str(login.json()["access_token"])
