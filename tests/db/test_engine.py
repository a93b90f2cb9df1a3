"""A pooled PostgreSQL connection that the server closed is replaced when it is handed out.

`pg_terminate_backend` closes the pooled connection from the server side, as a restart of
the server would; the next checkout must give a live connection, with no failed statement.
A plain engine without the check fails on that same connection, so the check is what the
test sees.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from db.engine import make_engine


def backend(engine: Engine) -> int:
    with engine.connect() as connection:
        pid: int = connection.scalar(text("SELECT pg_backend_pid()"))
    return pid


def terminate(url: str, pid: int) -> None:
    """Close `pid`'s connection from the server and wait (5 s at most) until it is gone."""
    admin = create_engine(url, poolclass=NullPool)
    with admin.connect() as connection:
        assert connection.scalar(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    admin.dispose()


def test_a_connection_the_server_closed_is_replaced_at_checkout(empty_postgres_url: str) -> None:
    engine = make_engine(empty_postgres_url, pool_size=1, max_overflow=0)
    try:
        first = backend(engine)
        assert backend(engine) == first  # the pool hands out the same connection
        terminate(empty_postgres_url, first)
        assert backend(engine) != first
    finally:
        engine.dispose()


def test_without_the_check_the_closed_connection_fails_its_statement(
    empty_postgres_url: str,
) -> None:
    engine = create_engine(empty_postgres_url, pool_size=1, max_overflow=0)
    try:
        first = backend(engine)
        terminate(empty_postgres_url, first)
        with pytest.raises(OperationalError):
            backend(engine)
    finally:
        engine.dispose()
