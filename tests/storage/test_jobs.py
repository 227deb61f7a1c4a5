"""The PostgreSQL job queue: a job enqueued through the API's path is run by a worker and seen done."""

from __future__ import annotations

import asyncio

from storage import jobs as store
from storage.database import make_engine, make_sessionmaker, session_scope


def test_enqueued_job_runs_to_done(e2e_url: str) -> None:
    from service.worker import make_job_app

    engine = make_engine(e2e_url, pool_size=2)
    factory = make_sessionmaker(engine)
    try:
        with session_scope(factory) as session:
            job_id = store.enqueue(session, kind="ping", params={"message": "你好"})
            assert store.get_job(session, job_id)["status"] == "queued"
        job_app = make_job_app(e2e_url, factory)

        async def run() -> None:
            async with job_app.open_async():
                await job_app.run_worker_async(wait=False, install_signal_handlers=False)

        asyncio.run(run())
        with session_scope(factory) as session:
            job = store.get_job(session, job_id)
        assert job["status"] == "done"
        assert job["result"] == {"pong": "你好"}
        assert job["progress"] == 1.0
        assert job["finished_at"] is not None
    finally:
        engine.dispose()


def test_enqueue_is_transactional(session) -> None:  # noqa: ANN001
    """A job enqueued in a transaction that rolls back leaves nothing on the queue."""
    from sqlalchemy import text

    before = session.execute(text("SELECT count(*) FROM procrastinate_jobs")).scalar()
    nested = session.begin_nested()
    store.enqueue(session, kind="ping")
    assert session.execute(text("SELECT count(*) FROM procrastinate_jobs")).scalar() == before + 1
    nested.rollback()
    assert session.execute(text("SELECT count(*) FROM procrastinate_jobs")).scalar() == before
