"""An import killed with SIGKILL past half-way leaves zero rows of its batch; the next run completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.database import make_engine

pytestmark = pytest.mark.e2e
N = 150_000


def _big_permit_file(path: Path) -> Path:
    lines = ["permit_id,category,name,lon,lat,crs,issued"]
    for i in range(N):
        lon = 110.20 + (i % 1000) * 0.0002
        lat = 25.20 + (i // 1000) * 0.0002
        lines.append(f"K{i:07d},tobacco,店{i},{lon:.6f},{lat:.6f},wgs84,2020-01-01")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _counts(engine) -> tuple[int, int, int]:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT (SELECT count(*) FROM permits), (SELECT count(*) FROM premises), "
                 "(SELECT count(*) FROM import_batches WHERE kind = 'permits')")
        ).one()  # fmt: skip


def test_sigkill_past_half_way_leaves_nothing(e2e_url: str, tmp_path: Path) -> None:
    path = _big_permit_file(tmp_path / "big.csv")
    engine = make_engine(e2e_url, pool_size=1)
    before = _counts(engine)
    env = {**os.environ, "DATABASE_URL": e2e_url}
    cmd = [sys.executable, "-m", "service.cli", "import", "permits", str(path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed_at = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as conn:
                stage = conn.execute(
                    text("SELECT query FROM pg_stat_activity WHERE application_name = 'safezone' "
                         "AND datname = current_database() "
                         "AND (query LIKE '%INSERT INTO permits%' OR query LIKE '%COPY \"stage_permits\"%') "
                         "AND pid <> pg_backend_pid()")
                ).first()  # fmt: skip
            if stage is not None:
                proc.send_signal(signal.SIGKILL)
                killed_at = stage[0][:40]
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        proc.wait(30)
    assert killed_at is not None, f"the import finished before it could be killed: {proc.stderr.read()[-500:]!r}"
    # the server notices the dead client and rolls back; wait for its backend to go
    for _ in range(100):
        with engine.connect() as conn:
            busy = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'safezone' "
                     "AND pid <> pg_backend_pid() AND state <> 'idle' AND datname = current_database()")
            ).scalar()  # fmt: skip
        if not busy:
            break
        time.sleep(0.1)
    assert _counts(engine) == before
    # autovacuum may now vacuum the rolled-back premises, leaving statistics of 0 rows over their pages; the
    # next import must not plan its joins on that (it once ran a nested loop of 150,000 × 150,000 rows)
    with engine.connect() as conn:
        conn.execute(
            text("UPDATE pg_class SET reltuples = 0, relpages = greatest(relpages, 1000) WHERE relname = 'premises'")
        )
        conn.commit()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = _counts(engine)
    assert after[0] == before[0] + N and after[2] == before[2] + 1
    engine.dispose()
