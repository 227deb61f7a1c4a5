"""The FastAPI application factory."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from geo.rules import RuleRegistry
from service import errors, idempotency, metrics, middleware
from service.routes import (
    audit,
    cases,
    checks,
    districts,
    exports,
    health,
    imports,
    inspections,
    jobs,
    maps,
    notices,
    ogc,
    patrol,
    premises,
    reports,
    scans,
    school_edits,
    schools,
    tiles,
)
from service.settings import Settings
from storage.access import ensure_departments
from storage.database import LoopPool, make_engine, make_sessionmaker, resolve_url, session_scope
from storage.settings import DatabaseSettings

log = logging.getLogger(__name__)

VERSION = "0.1.0"


def load_rules(settings: Settings) -> RuleRegistry:
    """The rule packs, validated; a bad pack raises ``RulePackError`` naming file, rule and field."""
    return RuleRegistry.load(settings.resolved_rules_dir, default_adcode=settings.default_adcode)


#: generation thresholds of a server process (CPython's defaults: 700, 10, 10); a check allocates a few
#: thousand objects, which the default collects several times per request
_SERVER_GC_THRESHOLDS = (20_000, 20, 20)


def create_app(
    settings: Settings | None = None, db_settings: DatabaseSettings | None = None, *, server: bool = False
) -> FastAPI:
    """Build the app; the engine, sessions and rule registry are created in its lifespan.

    ``server``: the app is a server process's for life (``service.main``): once started, what it holds is
    frozen out of the garbage collector's generations and the youngest generation is collected less often,
    so that collections walk only what requests create (fewer and shorter pauses under load).
    """
    settings = settings or Settings()
    db_settings = db_settings or DatabaseSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.rules = load_rules(settings)
        url = resolve_url(db_settings)
        engine = make_engine(
            url,
            pool_size=db_settings.pool_size,
            pool_timeout_s=db_settings.pool_timeout_s,
            statement_timeout_ms=db_settings.statement_timeout_ms,
        )
        app.state.engine = engine
        app.state.database_url = url
        app.state.sessionmaker = make_sessionmaker(engine)
        # for a pre-check without an Idempotency-Key, one writing statement run on the event loop (no thread,
        # no session, no BEGIN and COMMIT round trips): connections of its own, made as needed
        app.state.loop_pool = loop_pool = LoopPool(
            url, size=db_settings.pool_size, timeout_s=db_settings.pool_timeout_s,
            statement_timeout_ms=db_settings.statement_timeout_ms,
        )  # fmt: skip
        try:
            with session_scope(app.state.sessionmaker) as session:
                ensure_departments(session, app.state.rules.departments)
        except Exception as exc:  # noqa: BLE001 - the API starts and reports 503 until the database is back
            log.warning("could not reach the database at start-up: %s", exc.__class__.__name__)
        if server:
            gc.collect()
            gc.freeze()
            gc.set_threshold(*_SERVER_GC_THRESHOLDS)
        try:
            yield
        finally:
            await loop_pool.close()
            engine.dispose()

    app = FastAPI(
        title="safezone",
        version=VERSION,
        summary="Student safety zones around schools: permit pre-checks, scans, maps and the risk ledger",
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    for module in (health, schools, premises, districts, jobs, imports, checks, maps, tiles, scans, cases, reports):
        app.include_router(module.router)
    app.include_router(audit.router)
    app.include_router(ogc.router)
    app.include_router(exports.router)
    app.include_router(notices.router)
    app.include_router(patrol.router)
    app.include_router(inspections.router)
    app.include_router(school_edits.router)
    errors.document_problems(app)
    idempotency.install(app)
    metrics.install(app)
    middleware.install(app)
    app.mount("/static", StaticFiles(directory=settings.static_dir, check_dir=False), name="static")
    return app
