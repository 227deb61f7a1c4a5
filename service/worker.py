"""The background worker: procrastinate consumes the queue; each job runs a registered handler.

Handlers get a session factory, the job's parameters and a progress callback; what they return is the
job's result. A handler raising a ``SafezoneError`` fails the job with that problem (no retry, none of its
writes kept); any other exception is retried with back-off by the queue.

A job runs **once**, whatever happens to its worker:

- everything a handler writes goes into one transaction on one connection (the handler's own commits are
  savepoints), committed together with the job's ``done`` state; a worker killed half-way leaves none of
  it, and the job's next run starts from the beginning (a batch stores each site's decision once);
- that transaction holds an advisory lock on the job, so two workers never run the same job at once, and
  a job already ``done`` is not run again;
- procrastinate's heartbeats tell a dead worker: every ``SAFEZONE_WORKER_RECOVER_EVERY_S`` seconds a
  periodic task hands the jobs of workers silent for ``SAFEZONE_WORKER_STALLED_AFTER_S`` seconds back
  to the queue (procrastinate's documented "retry stalled jobs" recipe).

Progress is committed on its own, so clients watch it while the job runs.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from procrastinate import App, JobContext, PsycopgConnector, RetryStrategy
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Connection, Engine, text
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


class WorkerSettings(BaseSettings):
    """How fast a dead worker's jobs come back (environment variables ``SAFEZONE_WORKER_*``)."""

    model_config = SettingsConfigDict(env_prefix="SAFEZONE_WORKER_", extra="ignore")

    heartbeat_s: float = Field(default=10.0, gt=0, description="a live worker records its heartbeat this often")
    stalled_after_s: float = Field(default=30.0, gt=0, description="a worker silent this long is dead; its jobs rerun")
    recover_every_s: int = Field(default=15, ge=1, le=59, description="how often stalled jobs are looked for")

    @model_validator(mode="after")
    def _heartbeat_within_timeout(self) -> WorkerSettings:
        if self.heartbeat_s >= self.stalled_after_s:
            msg = (
                f"SAFEZONE_WORKER_HEARTBEAT_S ({self.heartbeat_s}) must be shorter than "
                f"SAFEZONE_WORKER_STALLED_AFTER_S ({self.stalled_after_s}), or live workers would look dead"
            )
            raise ValueError(msg)
        return self


class JobBusy(RuntimeError):
    """Another worker is running this job right now (the queue retries later)."""


def _lock_key(job_id: uuid.UUID) -> int:
    return int.from_bytes(job_id.bytes[:8], "big", signed=True)


@contextmanager
def _job_transaction(factory: sessionmaker[Session], job_id: uuid.UUID) -> Iterator[Connection]:
    """One connection in one transaction holding the job's advisory lock; commits when the block ends."""
    bind = factory.kw["bind"]
    conn = bind.connect() if isinstance(bind, Engine) else bind
    trans = conn.begin() if isinstance(bind, Engine) else conn.begin_nested()
    try:
        locked = conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _lock_key(job_id)}).scalar()
        if not locked:
            msg = f"job {job_id} is being run by another worker"
            raise JobBusy(msg)
        yield conn
    except BaseException:
        trans.rollback()
        raise
    else:
        trans.commit()
    finally:
        if isinstance(bind, Engine):
            conn.close()


def run_job(factory: sessionmaker[Session], job_id: uuid.UUID) -> None:
    """Run one job to the end, recording its state; its writes and its ``done`` commit together."""

    def progress(done: int, total: int | None = None) -> None:
        with session_scope(factory) as s:
            store.mark_progress(s, job_id, done=done, total=total)

    with _job_transaction(factory, job_id) as conn:
        tx = sessionmaker(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        with session_scope(tx) as session:
            job = store.load_job(session, job_id)
            if job.status == "done":
                log.info("job %s already done", job_id)
                return
            kind, params, rerun = job.kind, dict(job.params), job.status == "running"
        if rerun:
            log.warning("job %s (%s) was interrupted; it runs again from the start", job_id, kind)
        with session_scope(factory) as session:  # committed at once: clients see the job running
            store.mark_started(session, job_id)
            store.mark_progress(session, job_id, done=0)
        work = conn.begin_nested()
        try:
            fn = HANDLERS.get(kind)
            if fn is None:
                msg = f"unknown job kind {kind!r}"
                raise SafezoneError(msg, field="kind", value=kind)
            result = fn(tx, params, progress)
        except SafezoneError as exc:
            work.rollback()
            with session_scope(tx) as session:
                store.mark_failed(session, job_id, error=exc.to_dict())
            return
        work.commit()
        with session_scope(tx) as session:
            store.mark_finished(session, job_id, result=result)


#: Modules whose import registers job handlers.
HANDLER_MODULES: tuple[str, ...] = ("service.batch", "service.webhooks", "service.ledger", "service.scanning")


def load_handlers() -> None:
    for name in HANDLER_MODULES:
        importlib.import_module(name)


def make_job_app(url: str, factory: sessionmaker[Session], settings: WorkerSettings | None = None) -> App:
    """A procrastinate app bound to the database at ``url``: the ``run_job`` task, and the periodic task
    that puts the jobs of dead workers back on the queue."""
    load_handlers()
    settings = settings or WorkerSettings()
    app = App(
        connector=PsycopgConnector(conninfo=libpq_url(url)),
        worker_defaults={
            "update_heartbeat_interval": settings.heartbeat_s,
            "stalled_worker_timeout": settings.stalled_after_s,
        },
    )

    @app.task(
        name="run_job",
        queue=store.QUEUE,
        retry=RetryStrategy(max_attempts=5, exponential_wait=2),
    )
    def _run_job(job_id: str) -> None:
        run_job(factory, uuid.UUID(job_id))

    @app.periodic(cron=f"* * * * * */{settings.recover_every_s}", periodic_id="retry_stalled")
    @app.task(name="retry_stalled_jobs", queue=store.QUEUE, queueing_lock="retry_stalled_jobs", pass_context=True)
    async def _retry_stalled_jobs(context: JobContext, timestamp: int) -> None:
        manager = context.app.job_manager
        for job in await manager.get_stalled_jobs(queue=store.QUEUE, seconds_since_heartbeat=settings.stalled_after_s):
            log.warning("the worker of queue job %s (%s) has sent no heartbeat for %s s; the job goes back on the "
                        "queue", job.id, job.task_name, settings.stalled_after_s)  # fmt: skip
            await manager.retry_job(job)

    return app
