"""Our `POST /api/v1/predictions` beside `mlflow models serve` of the same asset version.

    .venv/bin/python benchmarks/serve.py                     # make bench-serve
    .venv/bin/python benchmarks/serve.py --coins 12 --seconds 5 --workers 2

Set-up (not timed, see `served_app.py`): a throwaway PostgreSQL database with a synthetic
market of ``--coins`` coins ending at the current hour, the four families trained small,
`cryptopredict serve` in a subprocess, a public user logged in; then `mlflow models serve` of
the registered asset version that our server has active (`models:/asset_price/N`, local
environment), on the same MLflow store. ``--workers`` sets both servers' uvicorn workers.

The same closed-loop client drives both: ``--clients`` threads (1, then 8), each on its own
keep-alive connection, back to back for ``--seconds``, after ``--warmup`` seconds that are not
counted. Ours is authenticated, computes the features from the candles and writes a committed
`predictions` row (and an activity row) per request; MLflow's `/invocations` gets the feature
row our server stored for the same coin and returns the model's outputs, nothing else. The
two sides alternate, ``--rounds`` times. Then `POST /predictions/batch` with every coin (100 by
default, the batch limit) and `GET /predictions` (a page of 50), one client each.

Reported: req/s, p50 and p99 per run, and ours / MLflow throughput per round. The created ids
of every 201 are compared with the stored rows at the end: exit status 0 only if every 201
is a committed row and no request failed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from ingest import Progress
from served_app import Market, free_port, public_user, served, trained_market
from sqlalchemy import text

from db.engine import make_engine

REQUEST_TIMEOUT_S = 60.0
MLFLOW_STARTUP_S = 180
ASSET_MODEL = "asset_price"
PAGE = 50

# One request on a client: returns (status, id of the created row or None).
Call = Callable[[httpx.Client, int], tuple[int, list[int]]]


@dataclass
class Run:
    side: str
    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    created: list[int] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    def line(self) -> str:
        errors = f", errors {self.errors}" if self.errors else ""
        return (
            f"| {self.side} | {self.clients} | {len(self.latencies)} | {self.throughput:.1f} | "
            f"{self.percentile(0.5):.1f} | {self.percentile(0.99):.1f} |{errors}"
        )


def closed_loop(
    side: str,
    base: str,
    headers: dict[str, str],
    call: Call,
    clients: int,
    args: argparse.Namespace,
) -> Run:
    """`clients` threads calling back to back; the first `args.warmup` seconds not counted."""
    run = Run(side, clients)
    lock = threading.Lock()
    start_line = threading.Barrier(clients + 1)
    measuring = threading.Event()
    done = threading.Event()

    def loop(client_index: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
            turn = client_index
            warm_until = time.monotonic() + args.warmup
            while time.monotonic() < warm_until:
                call(client, turn)
                turn += 1
            start_line.wait()
            while not done.is_set():
                started = time.perf_counter()
                try:
                    status, created = call(client, turn)
                except httpx.TransportError as error:
                    status, created = -1, []
                    kind = type(error).__name__
                else:
                    kind = str(status)
                turn += 1
                elapsed = time.perf_counter() - started
                with lock:
                    if not measuring.is_set():
                        continue
                    if status in (200, 201):
                        run.latencies.append(elapsed)
                        run.created.extend(created)
                    else:
                        run.errors[kind] = run.errors.get(kind, 0) + 1

    threads = [threading.Thread(target=loop, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    start_line.wait()
    measuring.set()
    began = time.monotonic()
    time.sleep(args.seconds)
    with lock:
        measuring.clear()
        run.seconds = time.monotonic() - began
    done.set()
    for thread in threads:
        thread.join()
    return run


def ours(symbols: list[str]) -> Call:
    def call(client: httpx.Client, turn: int) -> tuple[int, list[int]]:
        response = client.post("/predictions", json={"crypto": symbols[turn % len(symbols)]})
        return response.status_code, [int(response.json()["id"])] if response.is_success else []

    return call


def ours_batch(symbols: list[str]) -> Call:
    def call(client: httpx.Client, _turn: int) -> tuple[int, list[int]]:
        response = client.post("/predictions/batch", json={"cryptos": symbols})
        if not response.is_success:
            return response.status_code, []
        return response.status_code, [int(row["id"]) for row in response.json()]

    return call


def ours_page(client: httpx.Client, _turn: int) -> tuple[int, list[int]]:
    response = client.get("/predictions", params={"limit": PAGE, "mine": "true"})
    if response.is_success and len(response.json()["items"]) != PAGE:
        return 0, []  # a short page is counted as an error
    return response.status_code, []


def mlflow_call(records: list[dict[str, float | None]]) -> Call:
    def call(client: httpx.Client, turn: int) -> tuple[int, list[int]]:
        payload = {"dataframe_records": [records[turn % len(records)]]}
        return client.post("/invocations", json=payload).status_code, []

    return call


@contextmanager
def mlflow_served(market: Market, version: str, workers: int, progress: Progress) -> Iterator[str]:
    """`mlflow models serve` of models:/asset_price/VERSION on a free loopback port, with as
    many workers as ours."""
    port = free_port()
    scripts = Path(sys.executable).parent  # mlflow runs `uvicorn` from PATH
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": market.tracking_uri,
        "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [str(scripts / "mlflow"), "models", "serve"]
    command += ["-m", f"models:/{ASSET_MODEL}/{version}", "--env-manager", "local"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    log_path = market.data_dir / f"mlflow-serve-{port}.log"
    progress(f"starting `mlflow models serve` of {ASSET_MODEL} version {version} on {port}")
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + MLFLOW_STARTUP_S
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow models serve did not start:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{base}/ping", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        yield base
    finally:
        # Its own process group: the server and the workers it started.
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def feature_records(base: str, headers: dict[str, str], symbols: list[str]) -> tuple[str, list]:
    """The active asset version and the stored feature row of each coin, from our server."""
    records = []
    version = ""
    with httpx.Client(base_url=base, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
        for symbol in symbols[:8]:
            body = client.post("/predictions", json={"crypto": symbol}).raise_for_status().json()
            version = str(body["model_version"])
            records.append(body["input_features"])
    return version, records


def stored_ids(market: Market, user_id: int) -> set[int]:
    engine = make_engine(market.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id FROM predictions WHERE user_id = :user"), {"user": user_id}
            )
            return {int(row[0]) for row in rows}
    finally:
        engine.dispose()


def market_and_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The market's size and each closed-loop run's length (shared with `serve_floor.py`)."""
    parser.add_argument("--coins", type=int, default=100, help="coins in the market (100)")
    parser.add_argument("--days", type=int, default=80, help="days of candles (80)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each run (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted, per run (2)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    market_and_run_arguments(parser)
    parser.add_argument("--rounds", type=int, default=2, help="ours/MLflow alternations (2)")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn workers, ours and MLflow's (1)"
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--no-mlflow", action="store_true", help="only our server")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress()
    runs: list[Run] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench_serve_") as scratch,
        trained_market(
            Path(scratch), progress, coins=args.coins, days=args.days, prefix="bench_serve"
        ) as market,
        served(market, args.workers, progress) as base,
    ):
        user_id, token = public_user(base)
        headers = {"Authorization": f"Bearer {token}"}
        version, records = feature_records(base, headers, market.symbols)
        loads = [os.getloadavg()[0]]
        with (
            mlflow_served(market, version, args.workers, progress)
            if not args.no_mlflow
            else _nothing()
        ) as mlflow_base:
            for round_number in range(1, args.rounds + 1):
                for clients in args.clients:
                    progress(f"round {round_number}: {clients} client(s)")
                    runs.append(
                        closed_loop("ours", base, headers, ours(market.symbols), clients, args)
                    )
                    if mlflow_base is not None:
                        call = mlflow_call(records)
                        runs.append(closed_loop("mlflow", mlflow_base, {}, call, clients, args))
        progress(f"batch of {len(market.symbols)} coins; GET /predictions, a page of {PAGE}")
        batch = closed_loop("ours batch", base, headers, ours_batch(market.symbols), 1, args)
        page = closed_loop("ours GET page", base, headers, ours_page, 1, args)
        loads.append(os.getloadavg()[0])
        created = {row for run in [*runs, batch] for row in run.created}
        stored = stored_ids(market, user_id)
    print(report(runs, batch, page, args, loads, created, stored))
    failed = any(run.errors for run in [*runs, batch, page])
    return 0 if created <= stored and not failed else 1


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def report(
    runs: list[Run],
    batch: Run,
    page: Run,
    args: argparse.Namespace,
    loads: list[float],
    created: set[int],
    stored: set[int],
) -> str:
    lines = [
        f"{args.coins} coins x {args.days} days, {args.workers} worker(s), {args.seconds:.0f} s "
        f"per run after {args.warmup:.0f} s warm-up; load average {loads[0]:.1f} at the start, "
        f"{loads[-1]:.1f} at the end",
        "",
        "| side | clients | requests | req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
        *(run.line() for run in [*runs, batch, page]),
        "",
    ]
    for clients in args.clients:
        ours_runs = [run for run in runs if run.side == "ours" and run.clients == clients]
        theirs = [run for run in runs if run.side == "mlflow" and run.clients == clients]
        ratios = [
            f"{mine.throughput / other.throughput:.2f}x"
            for mine, other in zip(ours_runs, theirs, strict=False)
            if other.throughput
        ]
        if ratios:
            lines.append(f"ours / MLflow at {clients} client(s), per round: {', '.join(ratios)}")
    missing = created - stored
    lines.append(
        f"201 rows: {len(created)} created, {len(missing)} of them not stored"
        + (" (FAIL)" if missing else "")
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
