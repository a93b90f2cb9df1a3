"""Faults the test suite cannot stage safely, as scripts that print what they saw.

    .venv/bin/python benchmarks/faults.py postgres-restart

``postgres-restart``: the real app (see `served_app.py`: a throwaway database, a market
ending now, four families trained small, `cryptopredict serve`) answers `POST /predictions`
from one client polling every ``--interval`` seconds; after ``--before`` seconds the local
PostgreSQL server is restarted with `pg_ctlcluster --skip-systemctl-redirect VERSION main
restart` (root only), and the polling goes on for ``--after`` seconds. The app is not
restarted. Printed: the statuses seen before, during and after the restart, and how long
after the server was back the first request succeeded. It passes when every status is 201
or 503 (never 500 or a dropped connection), at least one 503 or none needed, and every
request from ``--recover`` seconds after the restart on is a 201.

The restart drops every connection to the server, other programs' included: the script waits
(up to ``--quiet-wait`` seconds) until no other database has a client, and refuses otherwise.
The other fault checks (a killed trainer, ingest and evaluation) are tests in
`tests/test_faults.py`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from ingest import Progress
from served_app import public_user, served, trained_market
from sqlalchemy import text
from sqlalchemy.engine import make_url

from db.engine import make_engine


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("fault", choices=["postgres-restart"])
    parser.add_argument("--before", type=float, default=5.0, help="seconds polled before (5)")
    parser.add_argument("--after", type=float, default=15.0, help="seconds polled after (15)")
    parser.add_argument("--recover", type=float, default=5.0, help="all 201 from then on (5)")
    parser.add_argument("--interval", type=float, default=0.1, help="between requests (0.1)")
    parser.add_argument("--quiet-wait", type=float, default=300.0, help="for other clients")
    return parser.parse_args(argv)


def cluster_version() -> str:
    versions = sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")])
    return versions[-1]


def other_clients(database_url: str) -> int:
    """Clients of the server connected to databases other than ours (and `postgres`)."""
    ours = make_url(database_url).database
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                        "'client backend' AND datname NOT IN (:ours, 'postgres') "
                        "AND pid <> pg_backend_pid()"
                    ),
                    {"ours": ours},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def wait_for_quiet(database_url: str, seconds: float, progress: Progress) -> None:
    deadline = time.monotonic() + seconds
    while (busy := other_clients(database_url)) and time.monotonic() < deadline:
        progress(f"  {busy} clients of other databases are connected; waiting")
        time.sleep(5)
    if busy:
        raise SystemExit("refusing to restart a server other programs are using")


def poll(
    base: str, token: str, symbol: str, stop: threading.Event, interval: float
) -> list[tuple[float, str]]:
    seen: list[tuple[float, str]] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        while not stop.is_set():
            try:
                status = str(client.post("/predictions", json={"crypto": symbol}).status_code)
            except httpx.TransportError as error:
                status = type(error).__name__
            seen.append((time.monotonic(), status))
            time.sleep(interval)
    return seen


def postgres_restart(args: argparse.Namespace) -> int:
    progress = Progress()
    with (
        tempfile.TemporaryDirectory(prefix="bench_faults_") as scratch,
        trained_market(Path(scratch), progress, prefix="bench_faults") as market,
        served(market, 1, progress) as base,
    ):
        _, token = public_user(base, "faults@example.com")
        wait_for_quiet(market.database_url, args.quiet_wait, progress)
        stop = threading.Event()
        result: list[tuple[float, str]] = []
        poller = threading.Thread(
            target=lambda: result.extend(poll(base, token, market.symbols[0], stop, args.interval))
        )
        poller.start()
        time.sleep(args.before)
        version = cluster_version()
        progress(f"restarting PostgreSQL {version}/main")
        restart_start = time.monotonic()
        restart = subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            capture_output=True,
            text=True,
        )
        restart_end = time.monotonic()
        progress(f"restart returned {restart.returncode} after {restart_end - restart_start:.1f} s")
        time.sleep(args.after)
        stop.set()
        poller.join()
        return report(result, restart, restart_start, restart_end, args)


def report(
    result: list[tuple[float, str]],
    restart: subprocess.CompletedProcess[str],
    restart_start: float,
    restart_end: float,
    args: argparse.Namespace,
) -> int:
    """Print the statuses by phase; 0 if the app came through as it should."""
    phases = {
        "before the restart": [s for t, s in result if t < restart_start],
        "during the restart": [s for t, s in result if restart_start <= t < restart_end],
        "after, first seconds": [
            s for t, s in result if restart_end <= t < restart_end + args.recover
        ],
        "after, the rest": [s for t, s in result if t >= restart_end + args.recover],
    }
    first_ok = next((t for t, s in result if t >= restart_end and s == "201"), None)
    for phase, statuses in phases.items():
        counts = ", ".join(f"{s}: {n}" for s, n in sorted(Counter(statuses).items()))
        print(f"{phase:<22} {len(statuses):>4} requests  {counts or '-'}")
    print(
        f"restart took {restart_end - restart_start:.1f} s "
        f"(pg_ctlcluster exit {restart.returncode})"
    )
    if first_ok is not None:
        print(f"first 201 after the restart: {first_ok - restart_end:.2f} s after it returned")
    allowed = {"201", "503"}
    passed = (
        restart.returncode == 0
        and all(s in allowed for s in phases["during the restart"] + phases["after, first seconds"])
        and phases["before the restart"]
        and set(phases["before the restart"]) == {"201"}
        and phases["after, the rest"]
        and set(phases["after, the rest"]) == {"201"}
    )
    print("PASS" if passed else "FAIL", flush=True)
    return 0 if passed else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.fault == "postgres-restart":
        return postgres_restart(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
