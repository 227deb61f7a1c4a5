"""Scan retention on the real Nanjing extract: old scans go with their partitions, the latest and the cited stay."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, text

from geo.rules import RuleRegistry
from service.importing import ImportOptions, import_osm
from service.ledger import cases_from_scan
from service.scanning import run_scan
from storage import scan as store
from storage.models import CaseFinding, Finding, Scan
from tests.factories import add_premises
from tests.storage.test_scan import _campus, _south_of_outline

ON = dt.date(2026, 6, 1)
NOW = dt.datetime(2026, 6, 1, 2, 0, tzinfo=dt.UTC)
RULES = RuleRegistry.load()


def _tables(session, scan_id: int) -> set[str]:  # noqa: ANN001
    names = session.execute(
        text("SELECT relname FROM pg_class WHERE relname IN (:f, :w)"),
        {"f": f"findings_s{scan_id}", "w": f"school_warnings_s{scan_id}"},
    ).scalars()
    return set(names)


def _findings(session, scan_id: int) -> int:  # noqa: ANN001
    return session.scalar(select(func.count()).select_from(Finding).where(Finding.scan_id == scan_id))


def test_prune_keeps_the_latest_and_the_scans_cases_cite(session_factory, session, nanjing_osm) -> None:  # noqa: ANN001
    import_osm(session_factory, nanjing_osm, ImportOptions(created_by="test"))
    lon, lat = _south_of_outline(_campus(session, "金陵中学"), 30.0)
    add_premises(session, name="网吧", categories=["internet_cafe"], lon=lon, lat=lat)  # no permit: unlicensed
    session.commit()
    scans = [run_scan(session_factory, RULES, on=ON)["scan_id"] for _ in range(4)]
    per_scan = {s: _findings(session, s) for s in scans}
    assert all(n > 0 for n in per_scan.values()), per_scan
    cases_from_scan(session_factory, scan_id=scans[1], now=NOW)  # the second scan's findings become cases
    assert session.scalar(select(func.count()).select_from(CaseFinding).where(CaseFinding.scan_id == scans[1]))

    would = store.prune_scans(session, keep=1, dry_run=True)
    assert [r["id"] for r in would] == [scans[0], scans[2]]
    assert [r["findings"] for r in would] == [per_scan[scans[0]], per_scan[scans[2]]]
    assert all(r["bytes"] > 0 for r in would)
    assert all(_tables(session, s) for s in scans)  # a dry run drops nothing

    dropped = store.prune_scans(session, keep=1)
    assert [r["id"] for r in dropped] == [scans[0], scans[2]]
    for gone in (scans[0], scans[2]):
        assert _tables(session, gone) == set()
        assert session.get(Scan, gone) is None
        assert _findings(session, gone) == 0
    for kept in (scans[1], scans[3]):  # the cases' evidence and the latest scan, whole
        assert _tables(session, kept) == {f"findings_s{kept}", f"school_warnings_s{kept}"}
        assert _findings(session, kept) == per_scan[kept]
    # the latest scan's diff now compares it with the scan the cases cite
    assert store.previous_scan_id(session, scans[3]) == scans[1]
    assert store.prune_scans(session, keep=1) == []


def test_prune_keeps_at_least_one(session) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="keep must be at least 1"):
        store.prune_scans(session, keep=0)
