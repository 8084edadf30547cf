"""One connection to the record store: SQLite in the data dir, or the server
`DOCCHAT_DATABASE_URL` names (PostgreSQL, through psycopg), with the same code.

`write(fn)` runs `fn(connection)` as one transaction that no other writer can
interleave with: SQLite's `BEGIN IMMEDIATE` (one writer at a time; WAL lets readers
go on) and PostgreSQL's SERIALIZABLE isolation. When the database says the
transaction lost a race (a serialization failure, a deadlock, SQLite busy past its
timeout) it is run again from the start, so `fn` must only touch the database and
do what is safe to repeat. `read(fn)` runs `fn` in a plain transaction.

Every failure leaves this module as a `RagError` whose message names neither the
database's path nor its URL: `Conflict` for a broken uniqueness rule (the callers
say what it means), `StoreUnavailableError` for the rest.

Left out: connection settings beyond the URL (pool sizes are SQLAlchemy's), and read
replicas.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from rag.core.errors import RagError, StoreUnavailableError
from rag.core.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
_RETRIES = 12  # a transaction that lost this many races in a row is given up
_SQLITE_BUSY_MS = 30_000  # how long SQLite waits for the write lock before "busy"
_DATABASE_FILE = "docchat.db"


class Conflict(RagError):
    """A write broke a uniqueness rule (a name taken, a record that exists)."""


def database_url(settings: Settings) -> str:
    """The settings' database: `DOCCHAT_DATABASE_URL`, else SQLite in the data dir."""
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{Path(settings.data_dir).resolve() / _DATABASE_FILE}"


class Database:
    """The record store's engine and its two ways in: `read` and `write`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = url.split(":", 1)[0].split("+", 1)[0]  # sqlite or postgresql
        # hide_parameters: a failed statement's text reaches the log (`_unavailable`),
        # its values (session digests, password hashes) never do.
        try:
            if self.dialect == "sqlite":
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
                self.engine = create_engine(
                    url, hide_parameters=True, connect_args={"timeout": _SQLITE_BUSY_MS / 1000}
                )
                _sqlite_events(self.engine)
            else:
                self.engine = create_engine(url, hide_parameters=True, pool_pre_ping=True)
        except (SQLAlchemyError, ImportError, ValueError, OSError) as e:
            raise StoreUnavailableError(
                f"Cannot open the record store ({type(e).__name__}): check "
                "DOCCHAT_DATABASE_URL and the data dir."
            ) from None

    # -- transactions ------------------------------------------------------------------------

    def write(self, fn: Callable[[Connection], T]) -> T:
        """`fn(connection)` as one serializable transaction, run again if it lost a race."""
        for attempt in range(_RETRIES):
            try:
                with self._connect(write=True) as conn, conn.begin():
                    return fn(conn)
            except IntegrityError as e:
                raise Conflict("That record exists already.") from e
            except DBAPIError as e:
                if not _lost_race(e) or attempt == _RETRIES - 1:
                    raise _unavailable(e) from None
                # Back off a little, at random, so the racers do not meet again at once.
                time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 6)))
            except SQLAlchemyError as e:
                raise _unavailable(e) from None
        raise AssertionError("unreachable")

    def read(self, fn: Callable[[Connection], T]) -> T:
        """`fn(connection)` in a read transaction (a consistent view on both databases)."""
        try:
            with self._connect(write=False) as conn, conn.begin():
                return fn(conn)
        except SQLAlchemyError as e:
            raise _unavailable(e) from None

    def _connect(self, *, write: bool) -> Connection:
        conn = self.engine.connect()
        if self.dialect == "postgresql":
            level = "SERIALIZABLE" if write else "REPEATABLE READ"
            return conn.execution_options(isolation_level=level)
        return conn.execution_options(docchat_write=write)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_events(engine: Engine) -> None:
    """SQLite as a server-less database for several processes: WAL (readers never wait
    for the writer), a busy timeout, and transactions begun by us (pysqlite's own
    begin is deferred and skips DDL): IMMEDIATE for writes, so two read-modify-writes
    cannot both read before either writes."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at each checkpoint
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("docchat_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _lost_race(e: DBAPIError) -> bool:
    code = getattr(e.orig, "sqlstate", None)  # psycopg
    if code in ("40001", "40P01"):  # serialization failure, deadlock
        return True
    message = str(e.orig).lower()
    return "database is locked" in message or "database is busy" in message


def _unavailable(e: Exception) -> StoreUnavailableError:
    log.warning("record store: %s", e)  # the details (paths, URLs) stay in the log
    return StoreUnavailableError(f"The record store is unavailable ({type(e).__name__}).")


# -- one Database per URL per process, migrated on first use ---------------------------------

_OPEN: dict[str, Database] = {}
_OPEN_LOCK = threading.Lock()


def open_database(settings: Settings) -> Database:
    """The settings' record store, its schema brought up to date and the data dir's
    JSON files of earlier releases imported (both once per process)."""
    url = database_url(settings)
    with _OPEN_LOCK:
        db = _OPEN.get(url)
        if db is None:
            db = Database(url)
            from rag.records.migrate import upgrade

            upgrade(db, Path(settings.data_dir))
            _OPEN[url] = db
        return db


def ping(conn: Connection) -> None:
    conn.execute(text("SELECT 1"))
