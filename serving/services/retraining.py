"""Retraining a model family in the background, as processes the API can follow.

`POST /system/models/{id}/retrain` starts `cryptopredict train --layer <layer>` under a small
supervisor process (`python -m serving.services.retraining`), detached from the API. Each job is two
JSON files under `<data_dir>/retrains/`, each with a single writer: `<id>.json` (what was
asked, written once by the API) and `<id>.status.json` (the trainer's pid, exit code and finish
time, written by the supervisor); the trainer's output goes to `<id>.log`. They survive an API
restart and are shared by every worker. The trainer itself writes the `ai_models` rows
(`training`, then `inactive`/`active`/`error`).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import Settings
from db.schema import AiModel
from serving.errors import Conflict
from store import registry
from store.processes import parse_time, process_alive

JobState = Literal["running", "succeeded", "failed", "lost"]
LOG_TAIL_CHARS = 4000


@dataclass(frozen=True)
class Job:
    """A retraining run as the API asked for it, with what its supervisor reported."""

    id: str
    layer: str
    command: list[str]
    requested_by: int
    requested_at: datetime
    supervisor_pid: int
    trainer_pid: int | None = None
    exit_code: int | None = None
    finished_at: datetime | None = None
    # Seen alive before its status file was read: a supervisor that ends in between has
    # written its exit code first, so a finished run never reads as lost.
    supervisor_alive: bool = True

    @property
    def state(self) -> JobState:
        if self.exit_code is not None:
            return "succeeded" if self.exit_code == 0 else "failed"
        return "running" if self.supervisor_alive else "lost"


@dataclass
class Retrainer:
    """Starts and finds retraining jobs; `program` is what runs `train` (injectable in tests)."""

    directory: Path
    environment: dict[str, str]
    program: list[str] = field(default_factory=lambda: [sys.executable, "-m", "cryptopredict"])

    @classmethod
    def from_settings(cls, settings: Settings) -> Retrainer:
        """The trainer gets the app's database, data directory and tracking store."""
        environment = {
            "DATABASE_URL": settings.resolved_database_url,
            "DATA_DIR": str(settings.data_dir.resolve()),
            "MLFLOW_TRACKING_URI": settings.resolved_mlflow_tracking_uri,
        }
        return cls(settings.data_dir.resolve() / "retrains", environment)

    def command_for(self, layer: str) -> list[str]:
        return [*self.program, "train", "--layer", layer]

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Serialise check-then-start across threads and worker processes."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def start(self, layer: str, requested_by: int) -> Job:
        """Launch the supervisor (and through it the trainer), detached from this process."""
        job_id = uuid.uuid4().hex
        command = self.command_for(layer)
        paths = self._paths(job_id)
        supervise = [
            sys.executable,
            "-m",
            "serving.services.retraining",
            str(paths.status),
            str(paths.log),
        ]
        supervisor = subprocess.Popen(
            [*supervise, "--", *command],
            env={**os.environ, **self.environment},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        # Reap the supervisor when it ends, so it leaves no zombie behind.
        threading.Thread(target=supervisor.wait, daemon=True).start()
        job = Job(job_id, layer, command, requested_by, _now(), supervisor.pid)
        _write_json(paths.job, _request_part(job))
        return job

    def find(self, job_id: str) -> Job | None:
        paths = self._paths(job_id)
        if not paths.job.is_file():
            return None
        stored = json.loads(paths.job.read_text())
        alive = process_alive(stored["supervisor_pid"])
        status = json.loads(paths.status.read_text()) if paths.status.is_file() else {}
        return Job(
            id=stored["id"],
            layer=stored["layer"],
            command=stored["command"],
            requested_by=stored["requested_by"],
            requested_at=datetime.fromisoformat(stored["requested_at"]),
            supervisor_pid=stored["supervisor_pid"],
            trainer_pid=status.get("pid"),
            exit_code=status.get("exit_code"),
            finished_at=parse_time(status.get("finished_at")),
            supervisor_alive=alive,
        )

    def running(self, layer: str) -> list[Job]:
        """Jobs of `layer` whose supervisor is still at work."""
        jobs = (self.find(path.name.removesuffix(".json")) for path in self._job_files())
        return [job for job in jobs if job and job.layer == layer and job.state == "running"]

    def log_tail(self, job_id: str) -> str:
        path = self._paths(job_id).log
        if not path.is_file():
            return ""
        with path.open("rb") as log:
            log.seek(max(0, path.stat().st_size - LOG_TAIL_CHARS))
            return log.read().decode("utf-8", errors="replace")

    def _job_files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return [path for path in self.directory.glob("*.json") if ".status" not in path.name]

    def _paths(self, job_id: str) -> _JobPaths:
        return _JobPaths(
            self.directory / f"{job_id}.json",
            self.directory / f"{job_id}.status.json",
            self.directory / f"{job_id}.log",
        )


@dataclass(frozen=True)
class _JobPaths:
    job: Path
    status: Path
    log: Path


def start_retrain(session: Session, retrainer: Retrainer, model: AiModel, user_id: int) -> Job:
    """Start training `model`'s family unless a run of it is already in progress (409).

    A `training` row left by a trainer that died on this host is marked `error` first, so a
    crashed run does not block retraining for ever.
    """
    layer = model.model_type
    with retrainer.exclusive():
        running = retrainer.running(layer)
        if running:
            raise Conflict(
                f"a {layer} retraining is already running (job {running[0].id})",
                job_id=running[0].id,
            )
        registry.reap_abandoned(session, layer)
        training = session.scalars(
            select(AiModel).where(AiModel.model_type == layer, AiModel.status == "training")
        ).first()
        if training is not None:
            raise Conflict(
                f"{training.name} is already training (ai_models row {training.id})",
                model_id=training.id,
            )
        return retrainer.start(layer, user_id)


def rows_of(session: Session, job: Job) -> list[AiModel]:
    """The `ai_models` rows the job's trainer registered (it records its pid on them)."""
    if job.trainer_pid is None:
        return []
    candidates = session.scalars(
        select(AiModel)
        .where(AiModel.model_type == job.layer, AiModel.created_at >= job.requested_at)
        .order_by(AiModel.id)
    ).all()
    return [row for row in candidates if (row.configuration or {}).get("pid") == job.trainer_pid]


def _request_part(job: Job) -> dict[str, Any]:
    stored = asdict(job)
    for name in ("trainer_pid", "exit_code", "finished_at"):
        stored.pop(name)
    stored["requested_at"] = job.requested_at.isoformat()
    return stored


def _write_json(path: Path, content: dict[str, Any]) -> None:
    """Write whole or not at all: a reader never sees half a file."""
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(content))
    os.replace(scratch, path)


def _now() -> datetime:
    return datetime.now(UTC)


def supervise(status_path: Path, log_path: Path, command: Sequence[str]) -> int:
    """Run `command` with its output in `log_path`; record its pid, then its exit code."""
    with log_path.open("ab") as log:
        try:
            trainer = subprocess.Popen(
                list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        except OSError as error:
            log.write(f"could not start {command[0]}: {error}\n".encode())
            _write_json(status_path, {"exit_code": 127, "finished_at": _now().isoformat()})
            return 127
        started = {"pid": trainer.pid, "started_at": _now().isoformat()}
        _write_json(status_path, started)
        code = trainer.wait()
    _write_json(status_path, {**started, "exit_code": code, "finished_at": _now().isoformat()})
    return code


def main(argv: Sequence[str]) -> int:
    """`python -m serving.services.retraining STATUS LOG -- COMMAND...`, started by
    `Retrainer.start`."""
    status, log, separator, *command = argv
    if separator != "--" or not command:
        raise SystemExit("usage: python -m serving.services.retraining STATUS LOG -- COMMAND...")
    return supervise(Path(status), Path(log), command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
