"""Statements run on the driver's connection (the pre-check's hot path) behave as SQLAlchemy's do.

In the session's transaction, errors raised as SQLAlchemy's exceptions, and a connection the database
dropped is replaced in the pool.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError, DBAPIError

from storage.database import driver_sql, execute_on_driver, make_engine, make_sessionmaker, session_scope

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
