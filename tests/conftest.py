"""Shared fixtures.

Database tests run against the real PostGIS the project's own command starts (or ``DATABASE_URL``):
a template database is migrated once per test session and cloned into ``safezone_test`` (each test in a
transaction rolled back at the end) and ``safezone_e2e`` (committed data, for workers, subprocesses and
browsers). If the database cannot start, the tests fail — they are never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SAFEZONE_SHARED_DIR", REPO.parent / "shared"))
NANJING_OSM = SHARED / "data" / "osm" / "nanjing_xinjiekou_2021-06-12.osm.gz"

DB_MARKERS = ("storage", "service", "e2e")


@pytest.fixture(scope="session")
def nanjing_osm() -> Path:
    """The real OpenStreetMap extract of central Nanjing (read from ../shared, never committed)."""
    if not NANJING_OSM.exists():
        pytest.fail(f"the Nanjing OSM extract is missing at {NANJING_OSM}; set SAFEZONE_SHARED_DIR")
    return NANJING_OSM


def _db_url(name: str) -> str:
    from sqlalchemy.engine import make_url

    from storage.database import resolve_url

    return make_url(resolve_url()).set(database=name).render_as_string(hide_password=False)


SUFFIX = f"_{os.getpid()}"  # test sessions running side by side never share a database


def _drop_stale(url: str) -> None:
    """Drop test databases left by test sessions whose process is gone."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from storage.database import drop_database

    admin = create_engine(make_url(url).set(database="postgres"), poolclass=NullPool)
    with admin.connect() as conn:
        names = [
            r[0]
            for r in conn.execute(
                text("SELECT datname FROM pg_database WHERE datname ~ '^safezone_(tmpl|test|e2e)_[0-9]+$'")
            )
        ]
    admin.dispose()
    for name in names:
        pid = int(name.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            drop_database(make_url(url).set(database=name).render_as_string(hide_password=False))
        except PermissionError:
            pass


@pytest.fixture(scope="session")
def template_url() -> Iterator[str]:
    """A migrated template database (created by the project's own `db up` machinery)."""
    from service.cli import prepare_database
    from storage.database import drop_database

    try:
        prepare_database()
        url = _db_url("safezone_tmpl" + SUFFIX)
        _drop_stale(url)
        url = prepare_database(db_name="safezone_tmpl" + SUFFIX)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"the test database could not be prepared: {exc}")
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def database_url(template_url: str) -> Iterator[str]:
    from storage.database import clone_database, drop_database

    url = _db_url("safezone_test" + SUFFIX)
    clone_database(url, template_url)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def e2e_url(template_url: str) -> Iterator[str]:
    """A database of its own for tests that need committed data (workers, subprocesses, browsers)."""
    from storage.database import clone_database, drop_database

    url = _db_url("safezone_e2e" + SUFFIX)
    clone_database(url, template_url)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def engine(database_url: str):  # noqa: ANN201
    from storage.database import make_engine

    eng = make_engine(database_url, pool_size=2)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine):  # noqa: ANN001, ANN201
    conn = engine.connect()
    trans = conn.begin()
    yield conn
    trans.rollback()
    conn.close()


@pytest.fixture
def session_factory(connection):  # noqa: ANN001, ANN201
    """Sessions bound to the test's connection: their commits become savepoints, rolled back at the end."""
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def session(session_factory):  # noqa: ANN001, ANN201
    with session_factory() as s:
        yield s


@pytest.fixture
def app(database_url: str, session_factory):  # noqa: ANN001, ANN201
    from service.app import create_app
    from service.settings import Settings
    from storage.settings import DatabaseSettings

    return create_app(Settings(), DatabaseSettings(database_url=database_url)), session_factory


@pytest.fixture
def client(app):  # noqa: ANN001, ANN201
    """A TestClient whose requests run inside the test's rolled-back transaction."""
    from fastapi.testclient import TestClient

    application, factory = app
    with TestClient(application) as c:
        application.state.sessionmaker = factory
        application.state.loop_pool = None  # pre-checks too run in the test's transaction (in a thread)
        yield c


@pytest.fixture
def make_token(session) -> Callable[..., str]:  # noqa: ANN001
    from storage.access import create_token

    def make(role: str, *, department: str | None = None, name: str | None = None) -> str:
        clear, _ = create_token(session, role=role, name=name or f"test-{role}", department=department)
        session.commit()
        return clear

    return make


@pytest.fixture
def auth(make_token) -> Callable[..., dict[str, str]]:  # noqa: ANN001
    def headers(role: str = "admin", **kw: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(role, **kw)}"}

    return headers
