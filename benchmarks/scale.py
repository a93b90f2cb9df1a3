"""Scale benchmark: training in-process beside training on a LocalCluster, as markets grow.

For each size, a synthetic market (``training.synthetic.generate_market(coins, days)``) is
written to a SQLite database in a temporary folder; then the same training runs twice, each
in a fresh process so that its peak memory is its own:

* ``in-process``: ``load_panel`` and ``train_layers`` on the panel, as ``cryptopredict train``;
* ``cluster``: ``train_layers`` on a ``cluster.source.ClusterSource`` over a LocalCluster of
  ``--workers`` workers (one thread each, ``--worker-memory`` each), as
  ``cryptopredict train --cluster local:N``.

Both train the families of ``--layers`` with ``training.presets.QUICK`` at one forecast
horizon (24 h), the same seed, into a throwaway MLflow store. Reported per run: wall seconds,
peak resident memory of the training process and of each worker process (psutil, sampled
every 0.2 s over the process and its descendants: the cluster's nannies and workers are
children of the training process), and each family's validation metric.

``--memory-cap GiB`` stops a run whose processes together hold more than that (the run is
reported as stopped, with the memory and time it had reached): how a size that needs more
than the machine has is shown without the kernel's out-of-memory killer choosing what dies.

    .venv/bin/python benchmarks/scale.py [--coins 30 100] [--days 365] [--workers 2]
        [--worker-memory 3GiB] [--block-hours 2184] [--local-fit-rows 250000]
        [--layers macro sector asset timing] [--modes in-process cluster] [--memory-cap 20]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

from cluster.blocks import DEFAULT_BLOCK_HOURS
from cluster.rows import LOCAL_FIT_ROWS

GIB = 1024**3
MODES = ["in-process", "cluster"]
SAMPLE_SECONDS = 0.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, nargs="+", default=[30, 100])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="3GiB")
    parser.add_argument("--layers", nargs="+", default=["macro", "sector", "asset", "timing"])
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument("--block-hours", type=int, default=DEFAULT_BLOCK_HOURS)
    parser.add_argument("--local-fit-rows", type=int, default=LOCAL_FIT_ROWS)
    parser.add_argument("--memory-cap", type=float, help="GiB a run may hold in all")
    parser.add_argument("--run", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(train_once(args)))
        return
    results = []
    for coins in args.coins:
        with tempfile.TemporaryDirectory() as folder:
            market = write_market(Path(folder), coins, args.days, args.seed)
            for mode in args.modes:
                progress(f"{coins} coins x {args.days} days: training {mode}")
                # Each run registers into an empty ai_models, as into its empty MLflow store.
                database = shutil.copyfile(market, Path(folder) / f"{mode}.db")
                outcome = child(args, mode, f"sqlite:///{database}")
                results.append({"coins": coins, "days": args.days, **outcome})
    print(report(results, args))
    print(json.dumps(results, indent=1))


def write_market(folder: Path, coins: int, days: int, seed: int) -> Path:
    from db import migrate
    from db.engine import make_engine
    from training.ingest import write_market as write
    from training.synthetic import generate_market

    path = folder / "market.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    started = time.perf_counter()
    market = generate_market(coins, days, seed=seed)
    engine = make_engine(url)
    write(engine, market.candles, market.coins)
    engine.dispose()
    progress(
        f"{coins} coins x {days} days: {len(market.candles):,} candles written in "
        f"{time.perf_counter() - started:.0f} s"
    )
    return path


def child(args: argparse.Namespace, mode: str, database: str) -> dict[str, Any]:
    """One run in a fresh interpreter; its JSON line back."""
    command = [
        sys.executable,
        __file__,
        "--run",
        mode,
        "--database",
        database,
        "--workers",
        str(args.workers),
        "--worker-memory",
        args.worker_memory,
        "--seed",
        str(args.seed),
        "--block-hours",
        str(args.block_hours),
        "--local-fit-rows",
        str(args.local_fit_rows),
        "--layers",
        *args.layers,
    ]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        run = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        held = watch(run, args.memory_cap)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if held is not None:
        return {
            "mode": mode,
            "error": f"stopped at the memory cap: {held / GIB:.1f} GiB held after "
            f"{time.perf_counter() - started:.0f} s",
        }
    if run.returncode != 0:
        return {"mode": mode, "error": stderr.strip().splitlines()[-1]}
    return dict(json.loads(stdout.strip().splitlines()[-1]))


def watch(run: subprocess.Popen[str], cap_gib: float | None) -> int | None:
    """Wait for `run`; stop it and its descendants if together they hold more than
    `cap_gib`. The bytes they held when stopped, or None if it ended by itself."""
    root = psutil.Process(run.pid)
    while run.poll() is None:
        if cap_gib is not None:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:  # it ended since `poll`
                continue
            held = sum(_resident(process) for process in tree)
            if held > cap_gib * GIB:
                for process in reversed(tree):
                    with suppress(psutil.Error):
                        process.kill()
                run.wait()
                return held
        time.sleep(SAMPLE_SECONDS)
    return None


def _resident(process: psutil.Process) -> int:
    try:
        return int(process.memory_info().rss)
    except psutil.Error:  # ended between listing and reading
        return 0


def train_once(args: argparse.Namespace) -> dict[str, Any]:
    """Train `args.layers` in-process or on a local cluster; wall time, memory, metrics."""
    import logging

    from cluster.connect import connect
    from cluster.source import ClusterSource
    from db.engine import make_engine
    from models.families import FAMILIES
    from store.datasets import load_panel
    from store.tracking import configure_tracking
    from training.presets import QUICK
    from training.train import TrainingStores, train_layers

    logging.disable(logging.WARNING)
    settings = replace(QUICK, forecast_horizons=(24,), random_state=args.seed)
    engine = make_engine(args.database)
    with tempfile.TemporaryDirectory() as folder, peak_memory() as peaks:
        artifacts = Path(folder) / "mlartifacts"
        stores = TrainingStores(
            engine, configure_tracking(f"sqlite:///{folder}/mlflow.db", artifacts), artifacts
        )
        started = time.perf_counter()
        if args.run == "cluster":
            with connect(f"local:{args.workers}", args.worker_memory) as client:
                source = ClusterSource.open(client, args.database, block_hours=args.block_hours)
                source.local_fit_rows = args.local_fit_rows
                outcomes = train_layers(stores, source, args.layers, settings)
        else:
            outcomes = train_layers(stores, load_panel(engine), args.layers, settings)
        seconds = time.perf_counter() - started
    me = psutil.Process().pid
    return {
        "mode": args.run,
        "seconds": round(seconds, 1),
        "trainer_gib": round(peaks.pop(me, 0) / GIB, 2),
        "worker_gib": sorted((round(peak / GIB, 2) for peak in peaks.values()), reverse=True),
        "metrics": {
            outcome.name: outcome.model_metrics.get(FAMILIES[outcome.layer].primary_metric)
            for outcome in outcomes
        },
    }


@contextmanager
def peak_memory() -> Iterator[dict[int, int]]:
    """Peak RSS per process (this one and its descendants), sampled while the block runs."""
    peaks: dict[int, int] = {}
    done = threading.Event()
    me = psutil.Process()

    def sample() -> None:
        while not done.is_set():
            for process in [me, *me.children(recursive=True)]:
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                peaks[process.pid] = max(peaks.get(process.pid, 0), rss)
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peaks
    finally:
        done.set()
        sampler.join()


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"workers: {args.workers} x 1 thread, {args.worker_memory} each, blocks of "
        f"{args.block_hours} h, local fits on at most {args.local_fit_rows:,} rows; QUICK "
        "settings, 24 h",
        "| coins | days | mode | wall s | trainer peak GiB | worker peaks GiB | metrics |",
        "|---:|---:|---|---:|---:|---|---|",
    ]
    for row in results:
        if "error" in row:
            lines.append(
                f"| {row['coins']} | {row['days']} | {row['mode']} | error: {row['error']} | | | |"
            )
            continue
        metrics = ", ".join(f"{name} {value:.5g}" for name, value in row["metrics"].items())
        workers = ", ".join(f"{value:.2f}" for value in row["worker_gib"]) or "-"
        lines.append(
            f"| {row['coins']} | {row['days']} | {row['mode']} | {row['seconds']:.0f} | "
            f"{row['trainer_gib']:.2f} | {workers} | {metrics} |"
        )
    return "\n".join(lines)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
