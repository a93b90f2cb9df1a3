"""`cryptopredict serve`, run as a real process, and `cryptopredict users create-admin`, run in
this interpreter as a process would run it (`cli_runner`: no start-up per command)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cli_runner import run_cli
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts import PASSWORD
from db.engine import make_engine
from db.schema import User, UserActivity
from serving.services.security import verify_password


def environment(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(data_dir), **extra}


def run(
    *args: str, database_url: str, data_dir: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    """`cryptopredict *args` in this interpreter (see cli_runner)."""
    return run_cli(args, {"DATABASE_URL": database_url, "DATA_DIR": str(data_dir), **extra})


def run_process(
    *args: str, database_url: str, data_dir: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    """`python -m cryptopredict *args` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "cryptopredict", *args],
        capture_output=True,
        text=True,
        env=environment(database_url, data_dir, **extra),
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def users(database_url: str) -> list[User]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.scalars(select(User).order_by(User.id)))
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --------------------------------------------------------------------------- users create-admin


def test_create_admin_with_the_password_from_the_environment(
    database_url: str, tmp_path: Path
) -> None:
    result = run(
        "users",
        "create-admin",
        "Root@Example.com",
        database_url=database_url,
        data_dir=tmp_path,
        CRYPTOPREDICT_ADMIN_PASSWORD=PASSWORD,
    )

    assert result.returncode == 0, result.stderr
    assert "root@example.com created as administrator" in result.stdout
    [user] = users(database_url)
    assert (user.email, user.role) == ("root@example.com", "admin")
    assert verify_password(user.password_hash, PASSWORD)
    engine = make_engine(database_url)
    with Session(engine) as session:
        activity = session.scalars(select(UserActivity)).one()
    engine.dispose()
    assert (activity.activity_type, activity.action, activity.entity_id) == (
        "user_admin",
        "create",
        user.id,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("root@example.com", "--password", "short1"), "error: a password needs 10 to 128"),
        (
            ("root@example.com", "--password", "onlyletters-here"),
            "error: a password needs at least one letter and one digit",
        ),
        (("not-an-email", "--password", PASSWORD), "error: 'not-an-email' is not an email"),
        (("nobody@example.com", "--promote"), "error: no account with email nobody@example.com"),
    ],
)
def test_create_admin_refuses_bad_input_in_one_line(
    args: tuple[str, ...], message: str, postgres_url: str, tmp_path: Path
) -> None:
    result = run("users", "create-admin", *args, database_url=postgres_url, data_dir=tmp_path)

    assert result.returncode == 1
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert users(postgres_url) == []


def test_create_admin_refuses_a_duplicate_and_promotes_on_request(
    postgres_url: str, tmp_path: Path
) -> None:
    first = run(
        "users",
        "create-admin",
        "ada@example.com",
        "--password",
        PASSWORD,
        database_url=postgres_url,
        data_dir=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    engine = make_engine(postgres_url)
    with Session(engine) as session:
        session.execute(User.__table__.update().values(role="public"))
        session.commit()
    engine.dispose()

    again = run(
        "users",
        "create-admin",
        "ADA@example.com",
        "--password",
        PASSWORD,
        database_url=postgres_url,
        data_dir=tmp_path,
    )
    promoted = run(
        "users",
        "create-admin",
        "ada@example.com",
        "--promote",
        database_url=postgres_url,
        data_dir=tmp_path,
    )

    assert again.returncode == 1
    assert again.stderr.startswith("error: an account with email ada@example.com already exists")
    assert "--promote" in again.stderr
    assert promoted.returncode == 0, promoted.stderr
    assert "ada@example.com is now an administrator" in promoted.stdout
    [user] = users(postgres_url)
    assert user.role == "admin"
    assert verify_password(user.password_hash, PASSWORD)


def test_create_admin_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = run(
        "users",
        "create-admin",
        "root@example.com",
        "--password",
        PASSWORD,
        database_url=url,
        data_dir=tmp_path,
    )

    assert result.returncode == 1
    assert "run `cryptopredict db upgrade` first" in result.stderr


# --------------------------------------------------------------------------- serve


def wait_until_up(process: subprocess.Popen[str], url: str, seconds: float = 90) -> bytes:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body: bytes = response.read()
                return body
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def test_serve_answers_over_http_until_terminated(postgres_url: str, tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cryptopredict", "serve", "--port", str(port), "--workers", "1"],
        env=environment(postgres_url, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        spec = wait_until_up(process, f"http://127.0.0.1:{port}/openapi.json")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/system/health") as health:
            assert health.status == 200
            assert health.read() == b'{"status":"up"}'
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert b"/api/v1/system/health" in spec
    assert b"/api/v1/dashboard/casual" in spec
    # A graceful shutdown (uvicorn re-raises the SIGTERM it handled once it has shut down).
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert f"serving on http://127.0.0.1:{port}/api/v1" in output


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = run_process("serve", "--port", str(free_port()), database_url=url, data_dir=tmp_path)

    assert result.returncode == 1
    assert result.stderr.startswith("error: the database is at revision base")
    assert "run `cryptopredict db upgrade` first" in result.stderr


def test_serve_validates_its_options(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = run_process("serve", "--port", "0", database_url=url, data_dir=tmp_path)

    assert result.returncode == 2
    assert "--port" in result.stderr


def test_a_served_app_hides_what_start_up_made_from_the_garbage_collector(
    tmp_path: Path,
) -> None:
    """What `serve` runs in each worker: the objects of start-up frozen (`gc.freeze`), so a full
    collection does not scan them on every request's time (a pause of about 250 ms)."""
    code = (
        "import gc; from serving.api.app import create_served_app; "
        "create_served_app(); print(gc.get_freeze_count())"
    )
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment(url, tmp_path),
        timeout=120,
        check=True,
    )
    assert int(result.stdout) > 100_000, result.stdout
