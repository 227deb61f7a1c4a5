"""Backup and restore, as docs/operations.md tells an operator to do it: ``pg_dump -Fc`` of a loaded database,
``pg_restore`` into an empty one — same rows, migrations at head, and the same scan result after restore."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from service.app import load_rules
from service.demo import load_demo
from service.scanning import run_scan
from service.settings import Settings
from storage.database import (
    clone_database,
    drop_database,
    ensure_database,
    make_engine,
    make_sessionmaker,
    migration_state,
)
from storage.localdb import find_bindir

pytestmark = pytest.mark.e2e
TABLES = ("schools", "campuses", "gates", "premises", "permits", "districts", "street_edges", "import_batches", "scans")


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _counts(engine) -> dict[str, int]:  # noqa: ANN001
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}  # noqa: S608 - fixed names


def _findings(engine, scan_id: int) -> list[tuple]:  # noqa: ANN001
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT premises_id, permit_id, rule_id, campus_id, status, round(distance_m::numeric, 3) "
                    "FROM findings WHERE scan_id = :s ORDER BY 1, 2, 3, 4"
                ),
                {"s": scan_id},
            )
        ]


@pytest.fixture
def databases(template_url: str):  # noqa: ANN201
    src = make_url(template_url).set(database="safezone_backup_src").render_as_string(hide_password=False)
    dst = make_url(template_url).set(database="safezone_backup_dst").render_as_string(hide_password=False)
    clone_database(src, template_url)
    drop_database(dst)
    yield src, dst
    drop_database(src)
    drop_database(dst)


def test_pg_dump_and_pg_restore_round_trip(databases, tmp_path: Path) -> None:  # noqa: ANN001
    src_url, dst_url = databases
    settings = Settings()
    registry = load_rules(settings)
    src = make_engine(src_url, pool_size=2)
    load_demo(make_sessionmaker(src), schools=25, premises=500, seed=11, workdir=tmp_path / "demo")
    before_scan = run_scan(make_sessionmaker(src), registry, settings=settings)
    assert before_scan["total"] > 0, "the demo city should have findings to compare"
    before = _counts(src)
    findings_before = _findings(src, before_scan["scan_id"])
    src.dispose()

    bindir = find_bindir()
    dump = tmp_path / "safezone.dump"
    subprocess.run([str(bindir / "pg_dump"), "-Fc", "-f", str(dump), "-d", _libpq(src_url)], check=True, timeout=120)
    ensure_database(dst_url)
    subprocess.run(
        [str(bindir / "pg_restore"), "--no-owner", "--exit-on-error", "-d", _libpq(dst_url), str(dump)],
        check=True,
        timeout=300,
    )

    dst = make_engine(dst_url, pool_size=2)
    try:
        assert _counts(dst) == before
        assert migration_state(dst)["at_head"]
        assert _findings(dst, before_scan["scan_id"]) == findings_before
        after_scan = run_scan(make_sessionmaker(dst), registry, settings=settings)
        assert after_scan["total"] == before_scan["total"]
        assert _findings(dst, after_scan["scan_id"]) == findings_before
    finally:
        dst.dispose()
