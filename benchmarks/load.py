"""Load without loss: concurrent `POST /api/v1/predictions` against the real app on loopback.

    .venv/bin/python benchmarks/load.py                          # 16 clients, 60 s, 1 worker
    .venv/bin/python benchmarks/load.py --workers 2 --seconds 20

Set-up (not timed, see `served_app.py`): a throwaway PostgreSQL database with a synthetic
market ending at the current hour and the four families trained small, then
`cryptopredict serve` in a subprocess and a public user registered and logged in over HTTP.

Then ``--clients`` threads, each with its own HTTP connection, post `{"crypto": SYMBOL}`
(the coins in turn) back to back for ``--seconds``; a request still in flight at the end is
waited for and counted. Reported: requests, 201s, errors by status (``timeout`` and
``connection`` for requests with no answer), throughput, latency p50/p95/p99/max; then the
`predictions` rows of the user are counted and their ids compared with those the 201s
returned. The goal: zero errors, and exactly one stored row per 201 (no loss, no extra).
Exit status 0 only if the goal is met.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from ingest import Progress, cpu_model
from report import table
from served_app import Market, public_user, served, trained_market
from sqlalchemy import text

from db.engine import make_engine

REQUEST_TIMEOUT_S = 60.0


@dataclass
class Tally:
    """What one client saw: per request its latency and status, and the ids of the 201s."""

    latencies: list[float] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    created: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Figures:
    requests: int
    created: int
    errors: dict[str, int]
    seconds: float
    latencies: np.ndarray
    stored: int
    missing: int
    unexpected: int
    duplicates: int

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    @property
    def lossless(self) -> bool:
        return (
            not self.errors
            and self.stored == self.created
            and self.missing == self.unexpected == self.duplicates == 0
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to drive (60)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (1)")
    parser.add_argument("--coins", type=int, default=6, help="coins in the market (6)")
    return parser.parse_args(argv)


def client_loop(base: str, token: str, symbols: list[str], deadline: float, tally: Tally) -> None:
    """Post back to back until the deadline; every request is answered or recorded as failed."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
        turn = 0
        while time.monotonic() < deadline:
            symbol = symbols[turn % len(symbols)]
            turn += 1
            start = time.perf_counter()
            try:
                response = client.post("/predictions", json={"crypto": symbol})
            except httpx.TimeoutException:
                status = "timeout"
            except httpx.TransportError:
                status = "connection"
            else:
                status = str(response.status_code)
                if response.status_code == 201:
                    tally.created.append(int(response.json()["id"]))
            tally.latencies.append(time.perf_counter() - start)
            tally.statuses.append(status)


def drive(
    base: str, token: str, symbols: list[str], clients: int, seconds: float
) -> tuple[list[Tally], float]:
    tallies = [Tally() for _ in range(clients)]
    started = time.monotonic()
    deadline = started + seconds
    threads = [
        threading.Thread(target=client_loop, args=(base, token, symbols, deadline, tally))
        for tally in tallies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tallies, time.monotonic() - started


def stored_ids(market: Market, user_id: int) -> list[int]:
    engine = make_engine(market.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id FROM predictions WHERE user_id = :user"), {"user": user_id}
            )
            return [int(row[0]) for row in rows]
    finally:
        engine.dispose()


def summarise(tallies: list[Tally], seconds: float, stored: list[int]) -> Figures:
    statuses = Counter(status for tally in tallies for status in tally.statuses)
    created = [identifier for tally in tallies for identifier in tally.created]
    latencies = np.array([latency for tally in tallies for latency in tally.latencies])
    return Figures(
        requests=sum(statuses.values()),
        created=statuses.get("201", 0),
        errors={status: n for status, n in sorted(statuses.items()) if status != "201"},
        seconds=seconds,
        latencies=latencies,
        stored=len(stored),
        missing=len(set(created) - set(stored)),
        unexpected=len(set(stored) - set(created)),
        duplicates=len(created) - len(set(created)),
    )


def report(figures: Figures, args: argparse.Namespace, load: tuple[float, float]) -> str:
    ms = np.percentile(figures.latencies, [50, 95, 99]) * 1000 if figures.requests else [0] * 3
    worst = figures.latencies.max() * 1000 if figures.requests else 0.0
    errors = ", ".join(f"{status}: {n}" for status, n in figures.errors.items()) or "none"
    rows = [
        ["requests", f"{figures.requests:,}"],
        ["201 Created", f"{figures.created:,}"],
        ["errors by status", errors],
        ["throughput (req/s)", f"{figures.throughput:.1f}"],
        ["latency p50 (ms)", f"{ms[0]:.0f}"],
        ["latency p95 (ms)", f"{ms[1]:.0f}"],
        ["latency p99 (ms)", f"{ms[2]:.0f}"],
        ["latency max (ms)", f"{worst:.0f}"],
        ["predictions rows stored", f"{figures.stored:,}"],
        ["201s without a stored row", f"{figures.missing:,}"],
        ["stored rows no 201 returned", f"{figures.unexpected:,}"],
    ]
    verdict = "PASS: zero errors, one stored row per 201" if figures.lossless else "FAIL"
    return "\n".join(
        [
            f"Load benchmark, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC",
            f"machine   {os.cpu_count()} CPUs ({cpu_model()}); load average "
            f"{load[0]:.1f} at the start, {load[1]:.1f} at the end",
            f"run       {args.clients} clients x {figures.seconds:.1f} s, POST /predictions, "
            f"uvicorn workers {args.workers}, {args.coins} coins",
            "",
            table(["measure", "value"], rows),
            "",
            verdict,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress()
    with (
        tempfile.TemporaryDirectory(prefix="bench_load_") as scratch,
        trained_market(Path(scratch), progress, coins=args.coins, prefix="bench_load") as market,
        served(market, args.workers, progress) as base,
    ):
        user_id, token = public_user(base)
        progress(f"{args.clients} clients for {args.seconds:.0f} s")
        load_start = os.getloadavg()[0]
        tallies, seconds = drive(base, token, market.symbols, args.clients, args.seconds)
        load_end = os.getloadavg()[0]
        progress("counting the stored predictions")
        figures = summarise(tallies, seconds, stored_ids(market, user_id))
    print(report(figures, args, (load_start, load_end)))
    return 0 if figures.lossless else 1


if __name__ == "__main__":
    sys.exit(main())
