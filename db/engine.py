"""Engines and sessions for the database that `DATABASE_URL` names."""

from __future__ import annotations

import select
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings we rely on in each dialect.

    SQLite gets foreign keys switched on (off by default there), WAL so readers do not
    block the writer, and a busy timeout so concurrent writers wait instead of failing.
    A missing parent directory of the SQLite file is created. A PostgreSQL connection the
    server has closed is replaced when the pool hands it out (`_refuse_if_closed`).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    engine = create_engine(url, **kwargs)
    event.listen(engine, "checkout", _refuse_if_closed)
    return engine


def _refuse_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A liveness check at checkout without a round trip (`pool_pre_ping` sends a query: it
    was one of the seven round trips of a `POST /predictions`).

    The server sends an idle connection nothing unless it is closing it (a restart, a
    terminated backend, an idle timeout: its last message, then end of file), so a pooled
    connection with something to read is dropped, and the pool hands out another
    (`DisconnectionError`). A connection lost without a word (a cut network) is not seen
    here, nor by a query, which would wait for TCP's timeout; the first statement on it
    fails and the pool is invalidated.
    """
    if dbapi_connection.closed or select.select([dbapi_connection.fileno()], [], [], 0)[0]:
        raise exc.DisconnectionError("the server closed this connection")


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)
