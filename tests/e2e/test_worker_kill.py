"""Job robustness: a worker killed with SIGKILL in the middle of a batch — the job is picked up by the next
worker and completes once (one decision per site); a job is never run twice; batches over the limit are 413."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from storage import jobs as store
from storage.access import create_token
from storage.database import make_engine, make_sessionmaker, session_scope

pytestmark = pytest.mark.e2e

N = 400
#: A dead worker is noticed within seconds, not the production half-minute.
FAST_RECOVERY = {
    "SAFEZONE_WORKER_HEARTBEAT_S": "0.5",
    "SAFEZONE_WORKER_STALLED_AFTER_S": "2",
    "SAFEZONE_WORKER_RECOVER_EVERY_S": "1",
}


def _sites(n: int) -> list[dict[str, Any]]:
    return [
        {"category": "internet_cafe", "location": {"lon": 118.70 + (i % 40) * 0.001, "lat": 32.00 + (i // 40) * 0.001},
         "crs": "wgs84", "permit_id": f"W{i:05d}"}
        for i in range(n)
    ]  # fmt: skip


def _start_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "service.cli", "worker", "--concurrency", "1"]
    env = {**os.environ, "DATABASE_URL": url, "SAFEZONE_LOG_JSON": "false", **FAST_RECOVERY}
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def _decisions_of(engine, token_id: int) -> list[str]:  # noqa: ANN001
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id::text FROM decisions WHERE token_id = :t"), {"t": token_id}).all()
    return [r[0] for r in rows]


def _queue_row(engine, job_id: uuid.UUID) -> tuple[int, str, int, dict[str, int]]:  # noqa: ANN001
    """procrastinate's job for ours: id, status, attempts and its events by type."""
    with engine.connect() as conn:
        pid, status, attempts = conn.execute(
            text("SELECT id, status::text, attempts FROM procrastinate_jobs WHERE args->>'job_id' = :j"),
            {"j": str(job_id)},
        ).one()
        events = conn.execute(
            text("SELECT type::text, count(*) FROM procrastinate_events WHERE job_id = :p GROUP BY type"), {"p": pid}
        ).all()
    return pid, status, attempts, {t: n for t, n in events}


def _wait_for(check, timeout: float, what: str, log: Path):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text(errors='replace')[-3000:]}")


def test_batch_whose_worker_is_killed_completes_once(e2e_url: str, tmp_path: Path) -> None:
    from service.worker import run_job

    engine = make_engine(e2e_url, pool_size=2)
    factory = make_sessionmaker(engine)
    log = tmp_path / "worker.log"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with session_scope(factory) as session:
            _, token = create_token(session, role="licensing_client", name=f"kill-test-{uuid.uuid4().hex[:8]}")
            job_id = store.enqueue(
                session, kind="batch_check", params={"sites": _sites(N), "token_id": token.id}, token_id=token.id,
                total=N,
            )  # fmt: skip

        def job() -> dict[str, Any]:
            with session_scope(factory) as s:
                return store.get_job(s, job_id)

        workers.append(_start_worker(e2e_url, log))
        # kill it once it has checked (and written) at least one chunk of 200 sites, well before the end
        seen = _wait_for(
            lambda: (j := job())["status"] == "running" and 200 <= j["done"] < N and j, 60, "progress", log
        )
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        assert seen["done"] < N
        _wait_for(lambda: _queue_row(engine, job_id)[1] == "doing" and not _busy(engine), 10, "the dead backend", log)
        # nothing of the half-done batch is left behind: no decision, the job not done
        assert _decisions_of(engine, token.id) == []
        assert job()["status"] == "running"

        workers.append(_start_worker(e2e_url, log))
        t0 = time.monotonic()
        done = _wait_for(lambda: (j := job())["status"] in ("done", "failed") and j, 120, "the job to finish", log)
        recovered_s = time.monotonic() - t0
        print(f"killed at {seen['done']}/{N}; picked up again and finished in {recovered_s:.1f} s")  # noqa: T201

        assert done["status"] == "done", done["error"]
        result = done["result"]
        assert sum(result["counts"].values()) == N and result["counts"]["error"] == 0
        assert [it["index"] for it in result["items"]] == list(range(N))
        assert [it["permit_id"] for it in result["items"]] == [f"W{i:05d}" for i in range(N)]
        # exactly one stored decision per site, and they are the ones the job's results name
        decisions = _decisions_of(engine, token.id)
        assert len(decisions) == N
        assert set(decisions) == {it["decision_id"] for it in result["items"]}
        # procrastinate: started twice (killed, then recovered), handed back once, succeeded once
        _, status, attempts, events = _queue_row(engine, job_id)
        assert status == "succeeded" and attempts == 2, (attempts, events)  # two runs: the killed one, the last
        assert events.get("started") == 2 and events.get("succeeded") == 1 and events.get("deferred_for_retry") == 1

        # a job already done is not run again
        run_job(factory, job_id)
        assert len(_decisions_of(engine, token.id)) == N
        assert job()["finished_at"] == done["finished_at"]
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        engine.dispose()


def _busy(engine) -> bool:  # noqa: ANN001
    """A backend of the killed worker still in a transaction (the server rolls it back once it notices)."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'safezone' "
                     "AND datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'")
            ).scalar()
        )  # fmt: skip


def test_a_job_runs_in_one_worker_at_a_time(e2e_url: str) -> None:
    """While one worker holds a job, another asked to run it backs off (the queue retries it later)."""
    from service.worker import JobBusy, _job_transaction, run_job

    engine = make_engine(e2e_url, pool_size=2)
    factory = make_sessionmaker(engine)
    try:
        with session_scope(factory) as session:
            job_id = store.enqueue(session, kind="ping", params={"message": "一次"})
        with _job_transaction(factory, job_id), pytest.raises(JobBusy, match=str(job_id)):
            run_job(factory, job_id)
        with session_scope(factory) as session:
            assert store.get_job(session, job_id)["status"] == "queued"
        run_job(factory, job_id)
        with session_scope(factory) as session:
            job = store.get_job(session, job_id)
        assert job["status"] == "done" and job["result"] == {"pong": "一次"}
    finally:
        engine.dispose()


def test_batch_over_the_limit_is_413(client, auth, session) -> None:  # noqa: ANN001
    from service.batch import MAX_SITES

    before = len(store.job_ids(session, kind="batch_check"))
    resp = client.post("/v1/checks/batch", json={"sites": [{}] * (MAX_SITES + 1)}, headers=auth("licensing_client"))
    assert resp.status_code == 413
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == 413 and body["field"] == "sites" and body["value"] == MAX_SITES + 1
    assert "100001" in body["detail"] and "100000" in body["detail"]
    assert "100001" in body["message_zh"]
    assert len(store.job_ids(session, kind="batch_check")) == before
