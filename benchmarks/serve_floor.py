"""Where the floor of `POST /api/v1/predictions` lies: the request beside its parts alone.

    .venv/bin/python benchmarks/serve_floor.py               # make bench-serve-floor
    .venv/bin/python benchmarks/serve_floor.py --coins 12 --seconds 5

Set-up as in `serve.py` (a throwaway PostgreSQL database, a synthetic market, the four
families trained small, `cryptopredict serve`). Then, one client, back to back, alternated
``--rounds`` times:

- ``ours``: the whole request over HTTP, as `serve.py` measures it;
- ``statements``: the SQL that one such request sends, captured from the app on its own
  engine (authentication, the data version, the INSERTs, the COMMIT) and replayed over one
  psycopg connection with nothing around it: the database's share, with no Python of ours;
- ``empty route``: a FastAPI app with one synchronous POST route that validates a small
  JSON body and returns it, with one synchronous dependency, under the same uvicorn, driven
  by the same client: the framework's and the client's share, with no work at all.

What ours costs beyond the sum of the two is our Python (features are cached per hour, so
that is building the row, the ORM, serialising the answer).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from fastapi.testclient import TestClient
from ingest import Progress
from serve import Run, closed_loop, market_and_run_arguments, ours
from served_app import Market, free_port, public_user, served, trained_market
from sqlalchemy import event
from sqlalchemy.engine import make_url

from config.settings import Settings
from serving.api.app import create_app

# One statement of a request: SQL text in psycopg's paramstyle, and its parameters.
Statement = tuple[str, Any]

EMPTY_APP = textwrap.dedent(
    """
    from typing import Annotated

    from fastapi import Depends, FastAPI, Request
    from pydantic import BaseModel

    app = FastAPI()


    class Body(BaseModel):
        crypto: str
        horizon_hours: int | None = None


    def caller(request: Request) -> str:
        return request.headers.get("authorization", "")


    @app.post("/api/v1/predictions", status_code=201)
    def create(body: Body, who: Annotated[str, Depends(caller)]) -> Body:
        return body
    """
)


def captured_request(market: Market) -> list[Statement]:
    """The statements of one `POST /predictions` (after a first one warmed the caches)."""
    settings = Settings(
        database_url=market.database_url,
        data_dir=market.data_dir,
        mlflow_tracking_uri=market.tracking_uri,
    )
    app = create_app(settings)
    statements: list[Statement] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    try:
        with TestClient(app) as client:
            email = "floor@example.com"
            password = {"email": email, "password": "correct-horse-42"}
            client.post("/api/v1/auth/register", json=password).raise_for_status()
            token = client.post("/api/v1/auth/login", json=password).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            body = {"crypto": market.symbols[0]}
            client.post("/api/v1/predictions", json=body, headers=headers).raise_for_status()
            event.listen(app.state.engine, "before_cursor_execute", record)
            event.listen(app.state.engine, "commit", lambda _conn: statements.append(("", None)))
            client.post("/api/v1/predictions", json=body, headers=headers).raise_for_status()
    finally:
        app.state.engine.dispose()
        app.state.lookups.dispose()
    return statements


def replay(market: Market, statements: list[Statement], args: argparse.Namespace) -> Run:
    """The captured statements back to back over one connection: ``''`` marks the COMMIT."""
    url = make_url(market.database_url).set(drivername="postgresql")
    run = Run("statements", 1)
    with psycopg.connect(url.render_as_string(hide_password=False)) as connection:
        deadline = time.monotonic() + args.warmup + args.seconds
        measured_from = time.monotonic() + args.warmup
        while (started := time.monotonic()) < deadline:
            for statement, parameters in statements:
                if statement:
                    connection.execute(statement, parameters).fetchall()
                else:
                    connection.commit()
            if started >= measured_from:
                run.latencies.append(time.monotonic() - started)
        run.seconds = sum(run.latencies)
    return run


@contextmanager
def empty_app(scratch: Path, progress: Progress) -> Iterator[str]:
    """The empty route under `uvicorn` on a free loopback port; its base URL."""
    (scratch / "empty_app.py").write_text(EMPTY_APP)
    port = free_port()
    progress(f"starting the empty route on port {port}")
    log_path = scratch / "empty_app.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "empty_app:app", "--port", str(port)],
            cwd=scratch,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_until_answering(base, server, log_path)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_until_answering(base: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    """The empty app has no health route: any answer to a POST means it is up."""
    for _ in range(240):
        if server.poll() is not None:
            raise RuntimeError(f"the empty app exited:\n{log_path.read_text()}")
        try:
            httpx.post(f"{base}/predictions", json={"crypto": "BTC"}, timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.25)
    raise RuntimeError("the empty app did not start")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    market_and_run_arguments(parser)
    parser.add_argument("--rounds", type=int, default=2, help="alternations (2)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress()
    runs: list[Run] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench_floor_") as scratch,
        trained_market(
            Path(scratch), progress, coins=args.coins, days=args.days, prefix="bench_floor"
        ) as market,
    ):
        progress("capturing the statements of one request")
        statements = captured_request(market)
        with served(market, 1, progress) as base, empty_app(Path(scratch), progress) as empty:
            _, token = public_user(base)
            headers = {"Authorization": f"Bearer {token}"}
            loads = [os.getloadavg()[0]]
            for round_number in range(1, args.rounds + 1):
                progress(f"round {round_number}")
                runs.append(closed_loop("ours", base, headers, ours(market.symbols), 1, args))
                runs.append(replay(market, statements, args))
                empty_run = closed_loop("empty route", empty, headers, _empty_call, 1, args)
                runs.append(empty_run)
            loads.append(os.getloadavg()[0])
    print(report(runs, statements, loads))
    return 0 if not any(run.errors for run in runs) else 1


def _empty_call(client: httpx.Client, turn: int) -> tuple[int, list[int]]:
    return client.post("/predictions", json={"crypto": f"C{turn % 100}"}).status_code, []


def report(runs: list[Run], statements: list[Statement], loads: list[float]) -> str:
    shown = [
        "COMMIT" if not statement else " ".join(statement.split())[:70]
        for statement, _ in statements
    ]
    lines = [
        f"load average {loads[0]:.1f} at the start, {loads[-1]:.1f} at the end",
        f"one request's statements ({len(statements)}): " + "; ".join(shown),
        "",
        "| part | clients | requests | req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
        *(run.line() for run in runs),
        "",
    ]
    p50 = {
        side: statistics.median(run.percentile(0.5) for run in runs if run.side == side)
        for side in ("ours", "statements", "empty route")
    }
    floor = p50["statements"] + p50["empty route"]
    lines.append(
        f"p50, median of rounds: ours {p50['ours']:.2f} ms; statements {p50['statements']:.2f} "
        f"+ empty route {p50['empty route']:.2f} = {floor:.2f} ms; "
        f"the rest (our Python) {p50['ours'] - floor:.2f} ms"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
