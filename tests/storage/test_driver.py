"""Statements run on the driver's connection (the pre-check's hot path) behave as SQLAlchemy's do.

In the session's transaction, errors raised as SQLAlchemy's exceptions, and a connection the database
dropped is replaced in the pool.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from storage.checks import Statement
from storage.database import (
    IDLE_PING_S,
    LoopPool,
    driver_sql,
    execute_on_driver,
    make_engine,
    make_sessionmaker,
    session_scope,
)

ECHO = driver_sql(text("SELECT CAST(:v AS int), 7 % 4"))


@pytest.fixture
def factory(database_url: str):  # noqa: ANN201
    engine = make_engine(database_url, pool_size=2)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_statements_run_in_the_sessions_transaction(factory) -> None:  # noqa: ANN001
    assert ECHO == "SELECT CAST(%(v)s AS int), 7 %% 4"
    with factory() as session:
        session.execute(text("CREATE TEMP TABLE t (x int)"))
        execute_on_driver(session, "INSERT INTO t VALUES (%(x)s)", {"x": 41})
        assert session.execute(text("SELECT x FROM t")).scalar() == 41  # the session sees the driver's write
        assert execute_on_driver(session, ECHO, {"v": "12"}).fetchone() == (12, 3)
        session.rollback()
        gone = session.execute(text("SELECT to_regclass('pg_temp.t')")).scalar()
        assert gone is None  # rolled back with the session


def test_errors_are_sqlalchemys_and_name_the_value(factory) -> None:  # noqa: ANN001
    with pytest.raises(DataError, match="abc") as err, session_scope(factory) as session:
        execute_on_driver(session, ECHO, {"v": "abc"})
    assert not err.value.connection_invalidated


def test_dropped_connections_are_all_replaced(factory, engine) -> None:  # noqa: ANN001
    """As after a database restart: both pooled connections are dead; the first statement fails (503), and
    the next request gets a new connection at once, not the other dead one."""
    with factory() as a, factory() as b:  # two connections in the pool
        pids = {execute_on_driver(s, "SELECT pg_backend_pid()").fetchone()[0] for s in (a, b)}
    assert len(pids) == 2
    with engine.connect() as other:
        for pid in pids:
            assert other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    with pytest.raises(DBAPIError) as err, session_scope(factory) as session:
        execute_on_driver(session, "SELECT 1")
    assert err.value.connection_invalidated
    for _ in range(2):
        with session_scope(factory) as session:
            assert execute_on_driver(session, "SELECT pg_backend_pid()").fetchone()[0] not in pids


# -- the event loop's pool (pre-checks without an Idempotency-Key) behaves as the engine's -----------------


def _loop(coro):  # noqa: ANN001, ANN202
    return asyncio.run(coro)


def test_loop_pool_errors_are_sqlalchemys_and_name_the_value(database_url: str) -> None:
    async def go() -> None:
        pool = LoopPool(database_url, size=1)
        try:
            async with pool.connection() as conn:
                assert await pool.run(conn, Statement(ECHO, {"v": "12"}, list)) == [(12, 3)]
                with pytest.raises(DataError, match="abc") as err:
                    await pool.run(conn, Statement(ECHO, {"v": "abc"}, list))
                assert not err.value.connection_invalidated
            async with pool.connection() as conn:  # the failed statement left the connection usable
                assert await pool.run(conn, Statement("SELECT 1", {}, list)) == [(1,)]
        finally:
            await pool.close()

    _loop(go())


def test_loop_pool_times_out_when_all_connections_are_in_use(database_url: str) -> None:
    async def go() -> float:
        pool = LoopPool(database_url, size=1, timeout_s=0.3)
        try:
            async with pool.connection():
                t0 = time.monotonic()
                with pytest.raises(PoolTimeout, match="0.3 s"):
                    async with pool.connection():
                        pass
                return time.monotonic() - t0
        finally:
            await pool.close()

    assert 0.25 < _loop(go()) < 1.0


def test_loop_pool_replaces_dropped_connections(database_url: str, engine) -> None:  # noqa: ANN001
    """As after a database restart: the pool's connections are dead; the first statement fails (503), and the
    next check gets a new connection at once, not the other dead one; one idle long enough is pinged first."""
    pid_of = Statement("SELECT pg_backend_pid()", {}, lambda rows: rows[0][0])

    def kill(pids: set[int]) -> None:
        with engine.connect() as other:
            for pid in pids:
                assert other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()

    async def go() -> None:
        pool = LoopPool(database_url, size=2)
        try:
            async with pool.connection() as a, pool.connection() as b:  # two connections in the pool
                pids = {await pool.run(c, pid_of) for c in (a, b)}
            assert len(pids) == 2
            kill(pids)
            with pytest.raises(DBAPIError) as err:
                async with pool.connection() as conn:
                    await pool.run(conn, pid_of)
            assert err.value.connection_invalidated
            for _ in range(2):
                async with pool.connection() as conn:
                    fresh = await pool.run(conn, pid_of)
                    assert fresh not in pids
            kill({fresh})  # idle past the ping interval: pinged at checkout, replaced, no error
            for entry in pool._idle:  # noqa: SLF001 - age the idle connection instead of sleeping
                pool._idle[pool._idle.index(entry)] = (entry[0], entry[1], entry[2] - IDLE_PING_S)  # noqa: SLF001
            async with pool.connection() as conn:
                assert await pool.run(conn, pid_of) != fresh
        finally:
            await pool.close()

    _loop(go())
