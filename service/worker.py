"""The background worker: procrastinate consumes the queue; each job runs a registered handler.

Handlers get a session factory, the job's parameters and a progress callback; what they return is the
job's result. A handler raising a ``SafezoneError`` fails the job with that problem (no retry); any other
exception is retried with back-off by the queue.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from procrastinate import App, PsycopgConnector, RetryStrategy
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from geo.errors import SafezoneError
from storage import jobs as store
from storage.database import session_scope

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
Handler = Callable[[sessionmaker[Session], dict[str, Any], Progress], dict[str, Any]]

#: Job kinds and their handlers. Other modules register theirs with :func:`handler`.
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return deco


@handler("ping")
def _ping(factory: sessionmaker[Session], params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    progress(1, 1)
    return {"pong": params.get("message", "pong")}


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as a plain libpq connection string."""
    u = make_url(url).set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


def run_job(factory: sessionmaker[Session], job_id: uuid.UUID) -> None:
    """Run one job to the end, recording its state."""
    with session_scope(factory) as session:
        job = store.load_job(session, job_id)
        if job.status == "done":
            log.info("job %s already done", job_id)
            return
        kind, params = job.kind, dict(job.params)
        store.mark_started(session, job_id)
    fn = HANDLERS.get(kind)

    def progress(done: int, total: int | None = None) -> None:
        with session_scope(factory) as s:
            store.mark_progress(s, job_id, done=done, total=total)

    try:
        if fn is None:
            msg = f"unknown job kind {kind!r}"
            raise SafezoneError(msg, field="kind", value=kind)
        result = fn(factory, params, progress)
    except SafezoneError as exc:
        with session_scope(factory) as session:
            store.mark_failed(session, job_id, error=exc.to_dict())
        return
    with session_scope(factory) as session:
        store.mark_finished(session, job_id, result=result)


#: Modules whose import registers job handlers.
HANDLER_MODULES: tuple[str, ...] = ("service.batch", "service.webhooks", "service.ledger", "service.scanning")


def load_handlers() -> None:
    for name in HANDLER_MODULES:
        importlib.import_module(name)


def make_job_app(url: str, factory: sessionmaker[Session]) -> App:
    """A procrastinate app bound to the database at ``url`` with the ``run_job`` task."""
    load_handlers()
    app = App(connector=PsycopgConnector(conninfo=libpq_url(url)))

    @app.task(
        name="run_job",
        queue=store.QUEUE,
        retry=RetryStrategy(max_attempts=5, exponential_wait=2),
    )
    def _run_job(job_id: str) -> None:
        run_job(factory, uuid.UUID(job_id))

    return app
