"""PostGIS stopped under load: requests fail fast (503 problem+json, Retry-After, < 1 s), the service recovers
by itself when the database is back, and no acknowledged check is lost (its decision and audit rows exist).

The test runs a cluster of its own (it stops PostgreSQL) and the API in a uvicorn subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from storage.access import create_token
from storage.database import ensure_database, make_engine, make_sessionmaker, migrate, session_scope
from storage.localdb import LocalCluster, free_port
from tests.factories import add_school, offset, square

pytestmark = pytest.mark.e2e
SW = (118.7700, 32.0300)
WORKERS = 4


@dataclass
class Outcome:
    started: float
    seconds: float
    status: int
    content_type: str
    retry_after: str | None
    decision_id: str | None


@pytest.fixture
def cluster(tmp_path: Path):  # noqa: ANN201
    c = LocalCluster(tmp_path / "state", db_name="outage")
    c.start()
    yield c
    c.destroy()


def _serve(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "SAFEZONE_POOL_TIMEOUT_S": "0.5", "SAFEZONE_LOG_LEVEL": "WARNING"}
    cmd = [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _wait(base: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} did not become ready")


def _load(base: str, token: str, stop: threading.Event, out: list[Outcome], *, keyed: bool) -> None:
    """Pre-checks in a loop; ``keyed``: each with an Idempotency-Key (a transaction), else without (one
    autocommit statement)."""
    lon, lat = offset(*SW, east_m=150, north_m=50)
    body = {"category": "internet_cafe", "location": {"lon": lon, "lat": lat}, "crs": "wgs84"}
    with httpx.Client(base_url=base, timeout=10) as client:
        while not stop.is_set():
            t0 = time.monotonic()
            headers = {"Authorization": f"Bearer {token}"} | ({"Idempotency-Key": uuid.uuid4().hex} if keyed else {})
            try:
                r = client.post("/v1/checks", json=body, headers=headers)
            except httpx.HTTPError:
                out.append(Outcome(t0, time.monotonic() - t0, 0, "", None, None))
                continue
            ok = r.status_code == 200
            out.append(
                Outcome(t0, time.monotonic() - t0, r.status_code, r.headers.get("content-type", ""),
                        r.headers.get("retry-after"), r.json()["decision_id"] if ok else None)
            )  # fmt: skip
            if not ok:
                time.sleep(0.05)


def test_postgis_stopped_under_load(cluster: LocalCluster, tmp_path: Path) -> None:
    url = cluster.url()
    ensure_database(url)
    migrate(url)
    engine = make_engine(url, pool_size=1)
    with session_scope(make_sessionmaker(engine)) as session:
        add_school(session, name="断电小学", outline=square(*SW, 100), levels=["primary"])
        token, _ = create_token(session, role="licensing_client", name="load")
    api_port = free_port(55000, 55999)
    base = f"http://127.0.0.1:{api_port}"
    server = _serve(url, api_port, tmp_path / "server.log")
    outcomes: list[Outcome] = []
    stop = threading.Event()
    try:
        _wait(base)
        threads = [
            threading.Thread(target=_load, args=(base, token, stop, outcomes), kwargs={"keyed": i % 2 == 0})
            for i in range(WORKERS)
        ]
        for t in threads:
            t.start()
        time.sleep(2.0)
        stopping_at = time.monotonic()
        cluster.stop()  # a fast shutdown still checkpoints: it may take a while on a busy machine
        down_at = time.monotonic()
        time.sleep(3.0)
        port = cluster.port
        starting_at = time.monotonic()
        cluster.start()
        up_at = time.monotonic()
        assert cluster.port == port, "the database came back on another port"
        time.sleep(4.0)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)

    # a request in flight when the database stops may fairly answer 503: judge those finished before it stopped
    # and "down" is from the moment pg_ctl reports it stopped until the moment it is asked to start
    before = [o for o in outcomes if o.started + o.seconds < stopping_at]
    during = [o for o in outcomes if down_at + 0.2 < o.started and o.started + o.seconds < starting_at]
    tail = [o for o in outcomes if o.started > up_at + 2.0]
    assert before and all(o.status == 200 for o in before), {o.status for o in before}
    assert len(during) >= 10, f"only {len(during)} requests while the database was down"
    assert {o.status for o in during} == {503}, {o.status for o in during}
    for o in during:
        assert o.content_type.startswith("application/problem+json")
        assert o.retry_after is not None and int(o.retry_after) >= 1
        assert o.seconds < 1.0, f"a request took {o.seconds:.2f} s while the database was down"
    assert {o.status for o in outcomes} <= {200, 503}, sorted({o.status for o in outcomes})
    assert tail and all(o.status == 200 for o in tail), "the service did not recover by itself"

    acknowledged = [o.decision_id for o in outcomes if o.status == 200]
    with engine.connect() as conn:
        decisions = conn.execute(
            text("SELECT count(*) FROM decisions WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": acknowledged}
        ).scalar()
        audited = conn.execute(
            text("SELECT count(DISTINCT object_ids->>'decision_id') FROM audit_log WHERE status = 200 "
                 "AND object_ids->>'decision_id' = ANY(:ids)"),
            {"ids": acknowledged},
        ).scalar()  # fmt: skip
    engine.dispose()
    assert decisions == len(acknowledged), f"{len(acknowledged) - decisions} acknowledged checks lost"
    assert audited == len(acknowledged), f"{len(acknowledged) - audited} acknowledged checks without an audit row"
    print(
        f"\n{len(outcomes)} requests: {len(acknowledged)} acknowledged, {len(during)} while down "
        f"(max {max(o.seconds for o in during) * 1000:.0f} ms), recovered in "
        f"{min(o.started for o in outcomes if o.started > up_at and o.status == 200) - up_at:.2f} s"
    )
