"""The overdue clock's signed webhook: a loopback receiver verifies the HMAC; a failed delivery is retried
with back-off through the PostgreSQL job queue until the receiver accepts it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import service.webhooks  # noqa: F401 - registers the "webhook" job handler
from service import ledger
from service.settings import Settings
from service.webhooks import HEADER, verify
from storage import jobs
from storage.database import make_engine, make_sessionmaker, session_scope

SECRET = "loopback-secret-for-the-webhook-test"
BJ = dt.timezone(dt.timedelta(hours=8))


class Receiver(ThreadingHTTPServer):
    def __init__(self, fail_first: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fail_first = fail_first
        self.attempts: list[tuple[bool, dict]] = []


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = verify(body, SECRET, self.headers.get(HEADER, ""))
        self.server.attempts.append((ok, json.loads(body)))
        status = 503 if len(self.server.attempts) <= self.server.fail_first else (204 if ok else 401)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _run_worker(url: str, factory) -> None:  # noqa: ANN001
    from service.worker import make_job_app

    app = make_job_app(url, factory)

    async def run() -> None:
        async with app.open_async():
            await app.run_worker_async(wait=False, install_signal_handlers=False)

    asyncio.run(run())


def test_overdue_case_sends_a_signed_event_retried_until_accepted(e2e_url: str, monkeypatch) -> None:  # noqa: ANN001
    receiver = Receiver(fail_first=1)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks/safezone"
    monkeypatch.setenv("SAFEZONE_WEBHOOK_URL", url)
    monkeypatch.setenv("SAFEZONE_WEBHOOK_SECRET", SECRET)
    engine = make_engine(e2e_url, pool_size=3)
    factory = make_sessionmaker(engine)
    opened = dt.datetime(2025, 9, 30, 9, tzinfo=BJ)
    try:
        with session_scope(factory) as session:
            case_id = ledger.store.create_case(
                session, subject="premises:webhook-e2e", rule_id="bar", category="bar", source="manual",
                state="registered", title="夜色酒吧 · bar · 石鼓路小学", lead_department="culture_tourism",
                cooperating_departments=["market_supervision"], now=opened, who=ledger.store.Actor("甲", "admin"),
            )  # fmt: skip
        assert ledger.tick(factory, now=dt.datetime(2025, 10, 30, 23, tzinfo=BJ))["overdue"] == []
        result = ledger.tick(factory, now=dt.datetime(2025, 10, 31, 8, tzinfo=BJ), settings=Settings())
        assert result["overdue"] == [case_id]
        [job_id] = result["webhook_jobs"]

        _run_worker(e2e_url, factory)  # first attempt: the receiver answers 503; the queue schedules a retry
        assert [ok for ok, _ in receiver.attempts] == [True]
        deadline = time.monotonic() + 20
        while len(receiver.attempts) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            _run_worker(e2e_url, factory)
        assert [ok for ok, _ in receiver.attempts] == [True, True]
        event = receiver.attempts[-1][1]
        assert (event["type"], event["case"]["id"], event["case"]["deadline"]) == (
            "case.overdue",
            case_id,
            "2025-10-30",
        )
        assert event["case"]["lead_department"] == "culture_tourism"
        with session_scope(factory) as session:
            job = jobs.get_job(session, uuid.UUID(job_id))
        assert job["status"] == "done"
        assert job["result"] == {"status": 204, "type": "case.overdue"}
        assert not verify(json.dumps(event).encode(), "wrong-secret", "sha256=00")
    finally:
        receiver.shutdown()
        engine.dispose()
