"""Engines, sessions, database creation and migrations."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, TextClause, create_engine, event, text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from storage.localdb import LocalCluster
from storage.settings import DatabaseSettings

if TYPE_CHECKING:
    from storage.checks import Statement

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def resolve_url(settings: DatabaseSettings | None = None) -> str:
    """The database URL: ``DATABASE_URL`` when set, else the local cluster's (which must exist)."""
    settings = settings or DatabaseSettings()
    if settings.database_url:
        return normalise_url(settings.database_url)
    cluster = LocalCluster(settings.state_dir, db_name=settings.db_name)
    if not cluster.secret_file.exists() or cluster.port is None:
        msg = "no database configured: run `safezone db up` or set DATABASE_URL"
        raise RuntimeError(msg)
    return cluster.url()


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(
    url: str, *, pool_size: int = 10, pool_timeout_s: float = 5.0, statement_timeout_ms: int = 60_000
) -> Engine:
    """An engine with a bounded pool and fast failure when the database is away.

    A connection idle for more than :data:`IDLE_PING_S` is pinged when checked out (and replaced if the
    database dropped it); one in steady use is not, so a busy API pays no round trip for it. If the database
    goes away under load, the next statement on a hot connection fails as a disconnect: the request answers
    503 and the pool replaces all its connections.
    """
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout_s,
        pool_pre_ping=False,
        pool_recycle=RECYCLE_S,
        connect_args=_connect_args(statement_timeout_ms),
    )
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", lambda dbapi, record, _proxy: _ping_if_idle(engine, dbapi, record))
    return engine


def _connect_args(statement_timeout_ms: int) -> dict[str, Any]:
    return {
        "connect_timeout": 3,
        # client_connection_check_interval: a statement whose client has gone (a killed import, a
        # dropped request) is cancelled within a second instead of running on, holding its locks
        "options": (
            f"-c statement_timeout={statement_timeout_ms} -c TimeZone=Asia/Shanghai"
            " -c client_connection_check_interval=1000"
        ),
        "application_name": "safezone",
    }


#: Seconds a pooled connection may rest before it is pinged at checkout.
IDLE_PING_S = 2.0
#: Seconds after which a pooled connection is replaced (the engine's ``pool_recycle``).
RECYCLE_S = 1800


def _note_checkin(dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(engine: Engine, dbapi_connection: Any, record: Any) -> None:
    since = record.info.get("idle_since")
    if since is None or time.monotonic() - since < IDLE_PING_S:
        return
    try:
        alive = engine.dialect.do_ping(dbapi_connection)  # the dialect's own ping (pool_pre_ping's)
    except Exception as exc:  # noqa: BLE001
        raise DisconnectionError(str(exc)) from exc
    if not alive:
        raise DisconnectionError("the connection did not answer its ping")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction commits at the end, or rolls back on error."""
    with factory() as session, session.begin():
        yield session


#: the dialect that renders statements in the driver's own parameter style (``%(name)s``)
_DRIVER_DIALECT = PGDialect_psycopg()


def driver_sql(stmt: TextClause) -> str:
    """``stmt`` as the driver's SQL (``:name`` → ``%(name)s``, ``%`` escaped), for :func:`execute_on_driver`.

    Compile once, at import: hot paths keep one definition of each statement and skip the compiler.
    """
    return str(stmt.compile(dialect=_DRIVER_DIALECT))


def execute_on_driver(session: Session | Connection, sql: str, params: dict[str, Any] | None = None) -> psycopg.Cursor:
    """Run ``sql`` (from :func:`driver_sql`) on the psycopg connection under ``session``, in its transaction.

    For the pre-check's hot path: about a third of a check's CPU went into the statement machinery around
    the driver. Errors are raised as SQLAlchemy raises them (``DBAPIError`` and its subclasses), and a
    connection the database dropped is invalidated in the pool, so the API answers and recovers alike.
    """
    conn = session.connection() if isinstance(session, Session) else session
    driver = conn.connection.driver_connection
    try:
        return driver.execute(sql, params)
    except psycopg.Error as exc:
        invalidated = conn.dialect.is_disconnect(exc, driver, None)
        if invalidated:
            # as SQLAlchemy does on a disconnect: every connection the pool made before this one is replaced
            # at its next checkout (after a database restart they are all dead), and this one now
            conn.engine.pool._invalidate(conn.connection, exc)  # noqa: SLF001
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql, params, exc, psycopg.Error, connection_invalidated=invalidated, dialect=conn.dialect
        ) from exc


class LoopPool:
    """Autocommit connections for statements run on the event loop: the pre-check's hot path.

    A check without an Idempotency-Key is one writing statement and a read or two; run on the event loop, it
    waits for the database without a thread (handing each check to a thread and back cost a fifth of its CPU).
    The pool behaves as the engine's does: the same connection options, at most ``size`` connections made as
    they are needed, a connection idle for more than :data:`IDLE_PING_S` pinged at checkout and one older than
    :data:`RECYCLE_S` replaced, no free connection within ``timeout_s`` raised as SQLAlchemy's pool timeout
    (503), and errors raised as SQLAlchemy raises them (``DBAPIError`` and its subclasses). A connection the
    database dropped is invalidated with every idle one (after a restart they are all dead), so the pool
    recovers at the next checkout, as the engine does.
    """

    def __init__(self, url: str, *, size: int = 10, timeout_s: float = 1.0, statement_timeout_ms: int = 60_000):
        self._conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._kwargs = {**_connect_args(statement_timeout_ms), "autocommit": True}
        self._size, self._timeout_s = size, timeout_s
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float, float]] = []  # (conn, made, idle since)
        self._slots: asyncio.Semaphore | None = None  # made in the event loop
        self._in_use = 0

    def stats(self) -> dict[str, int]:
        """Connections: ``size`` (at most), ``open`` (idle and in use), ``in_use``."""
        return {"size": self._size, "open": len(self._idle) + self._in_use, "in_use": self._in_use}

    async def close(self) -> None:
        """Close the idle connections (those in use close when they come back)."""
        idle, self._idle = self._idle, []
        for conn, *_ in idle:
            await conn.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._size)
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._slots.acquire()
        except TimeoutError:
            msg = f"no database connection free within {self._timeout_s} s ({self._size} in use)"
            raise PoolTimeout(msg) from None
        try:
            conn, made = await self._checkout()
            self._in_use += 1
            try:
                yield conn
            finally:
                self._in_use -= 1
                if conn.closed or conn.broken or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    await conn.close()
                else:
                    self._idle.append((conn, made, time.monotonic()))
        finally:
            self._slots.release()

    async def _checkout(self) -> tuple[psycopg.AsyncConnection[Any], float]:
        now = time.monotonic()
        while self._idle:
            conn, made, since = self._idle.pop()
            if now - made > RECYCLE_S:
                await conn.close()
                continue
            if now - since < IDLE_PING_S:
                return conn, made
            try:
                await conn.execute("")  # the ping: a dead connection is closed and the next one tried
            except psycopg.Error:
                await conn.close()
                continue
            return conn, made
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, **self._kwargs)
        except psycopg.Error as exc:
            raise DBAPIError.instance(
                None, None, exc, psycopg.Error, connection_invalidated=True, dialect=_DRIVER_DIALECT
            ) from exc
        return conn, now

    async def run(self, conn: psycopg.AsyncConnection[Any], stmt: Statement) -> Any:
        """Run ``stmt`` on ``conn``; what its ``read`` makes of the rows (see :func:`storage.checks.run`)."""
        try:
            cursor = await conn.execute(stmt.sql, stmt.params)
            rows = await cursor.fetchall() if stmt.read is not None else None
        except psycopg.Error as exc:
            invalidated = conn.closed or conn.broken
            if invalidated:
                await self.close()
            raise DBAPIError.instance(
                stmt.sql, stmt.params, exc, psycopg.Error, connection_invalidated=invalidated, dialect=_DRIVER_DIALECT
            ) from exc
        return None if stmt.read is None else stmt.read(rows)


def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` if missing (connecting to ``postgres``); True if created."""
    target = make_url(url)
    admin = _admin_engine(target)
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}).scalar()
            if exists:
                return False
            conn.exec_driver_sql(f'CREATE DATABASE "{_ident(target.database)}"')
            return True
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    target = make_url(url)
    admin = _admin_engine(target)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{_ident(target.database)}" WITH (FORCE)')
    finally:
        admin.dispose()


def clone_database(url: str, template_url: str) -> None:
    """Create the database of ``url`` as a copy of the database of ``template_url``."""
    target, template = make_url(url), make_url(template_url)
    drop_database(url)
    admin = _admin_engine(target)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{_ident(target.database)}" TEMPLATE "{_ident(template.database)}"')
    finally:
        admin.dispose()


def _admin_engine(target):  # noqa: ANN001
    return create_engine(
        target.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 5},
    )


def _ident(name: str | None) -> str:
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        msg = f"unsafe database name: {name!r}"
        raise ValueError(msg)
    return name


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def migrate(url: str, revision: str = "heads") -> None:
    """Upgrade the database to ``revision`` (PostGIS extension first)."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
    finally:
        engine.dispose()
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


@functools.cache
def _script_heads() -> tuple[str, ...]:
    """The head revisions of the migration scripts shipped with this code (read once per process)."""
    script = ScriptDirectory.from_config(alembic_config("postgresql+psycopg://localhost/unused"))
    return tuple(script.get_heads())


def migration_state(engine: Engine) -> dict[str, object]:
    """The current and head revisions of the schema."""
    heads = set(_script_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return {"current": sorted(current), "head": sorted(heads), "at_head": current == heads}
