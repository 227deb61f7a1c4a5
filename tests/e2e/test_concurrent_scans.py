"""Two scans at once (two districts' jobs, an operator's `safezone scan` during a scheduled one): the second
waits for the first instead of both waiting for each other (committed data, two sessions)."""

from __future__ import annotations

import threading

from sqlalchemy import delete, select, text

from geo.decide import DecisionSettings
from geo.rules import RuleRegistry
from service.scanning import run_scan, scan_rules, today
from service.settings import Settings
from storage import scan as store
from storage.database import make_engine, make_sessionmaker
from storage.models import Finding, Premises, Scan, School
from tests.factories import add_premises, add_school, offset, square

SW = (110.2950, 25.2650)  # Guilin 叠彩区
DISTRICT = "450303"


def test_a_second_scan_waits_for_the_first(e2e_url: str) -> None:
    engine = make_engine(e2e_url, pool_size=3, statement_timeout_ms=0)
    factory = make_sessionmaker(engine)
    rules = RuleRegistry.load()
    with factory() as s:
        school = add_school(s, name="并发排查小学", outline=square(*SW, 120), district=DISTRICT)
        lon, lat = offset(*SW, north_m=-40)
        bar = add_premises(s, name="并发排查酒吧", lon=lon, lat=lat, district=DISTRICT, categories=["bar"])
        s.commit()
        ids = (school.id, bar.id)
    second: dict = {}
    scan_ids: list[int] = []
    try:
        with factory() as first:
            on = today()
            first_id = store.create_scan(first, pack_version=rules.version, on=on, district=DISTRICT)
            scan_ids.append(first_id)

            def run() -> None:
                try:
                    second["out"] = run_scan(factory, rules, district=DISTRICT, actor="second")
                except Exception as exc:  # noqa: BLE001 - the assertion below shows it
                    second["error"] = repr(exc)

            worker = threading.Thread(target=run)
            worker.start()
            worker.join(1.0)
            assert worker.is_alive(), f"the second scan did not wait: {second}"
            settings = store.ScanSettings(
                on=on, school_accuracy_m=Settings().school_accuracy_m,
                campus_radius_m=DecisionSettings().campus_radius_m,
            )  # fmt: skip
            in_force = scan_rules(rules, store.premises_districts(first, district=DISTRICT), on=on)
            counts = store.run_scan(first, first_id, in_force, settings=settings, district=DISTRICT)
            store.finish_scan(first, first_id, counts)
            first.commit()
        worker.join(120.0)
        assert "error" not in second, second.get("error")
        scan_ids.append(second["out"]["scan_id"])
        with factory() as s:
            for scan_id in scan_ids:
                assert s.get(Scan, scan_id).status == "done"
                found = s.scalars(
                    select(Finding.rule_id).where(Finding.scan_id == scan_id, Finding.premises_id == ids[1])
                ).all()
                assert found == ["bar"], (scan_id, found)
                attached = s.execute(
                    text("SELECT relispartition FROM pg_class WHERE relname = :t"), {"t": f"findings_s{scan_id}"}
                ).scalar()
                assert attached is True
    finally:
        with factory() as s:
            s.execute(delete(Scan).where(Scan.id.in_(scan_ids)))
            s.execute(delete(Premises).where(Premises.id == ids[1]))
            s.execute(delete(School).where(School.id == ids[0]))
            s.commit()
        engine.dispose()
