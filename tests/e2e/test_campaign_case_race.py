"""Two violation records of the same premises at once (a double-tapped submit, two inspectors): the
second waits for the first and adds to its case instead of opening another (committed data, two sessions)."""

from __future__ import annotations

import threading

from sqlalchemy import delete, select

from geo.rules import RuleRegistry
from service import inspections as svc
from storage import ledger as ledger_store
from storage.database import make_engine, make_sessionmaker
from storage.inspections import create_campaign
from storage.models import Campaign, Case, Premises, School
from tests.factories import add_premises, add_school, at, offset, square

SW = (110.3300, 25.2300)  # Guilin 象山区


def test_a_second_violation_at_once_adds_to_the_first_case(e2e_url: str) -> None:
    engine = make_engine(e2e_url, pool_size=3)
    factory = make_sessionmaker(engine)
    rules = RuleRegistry.load()
    now = at(2025, 9, 29)
    with factory() as s:
        school = add_school(s, name="竞态小学", outline=square(*SW, 100), district="450304")
        lon, lat = offset(*SW, north_m=-30)
        stall = add_premises(s, name="竞态摊区", lon=lon, lat=lat, district="450304", categories=["food_stall"])
        campaign = create_campaign(
            s, name="竞态专项检查", categories=["food_stall"], district="450304", starts=now.date(), ends=now.date(),
            radius_m=100.0, lead_department="market_supervision", created_by="test", now=now,
        )  # fmt: skip
        s.commit()
        ids = (school.id, stall.id, campaign["id"])

    def record(session, name: str) -> dict:  # noqa: ANN001
        return svc.record_check(
            session, rules, ids[2], {"premises_id": ids[1], "result": "violation"},
            who=ledger_store.Actor(name, "market_supervision"), department="market_supervision", now=now,
        )  # fmt: skip

    second: dict = {}
    try:
        with factory() as first_session:
            first = record(first_session, "甲")  # its case is not committed yet
            with factory() as other:

                def run() -> None:
                    try:
                        second["out"] = record(other, "乙")
                        other.commit()
                    except Exception as exc:  # noqa: BLE001 - the assertion below shows it
                        second["error"] = repr(exc)

                worker = threading.Thread(target=run)
                worker.start()
                worker.join(1.0)
                assert worker.is_alive(), f"the second record did not wait for the first: {second}"
                first_session.commit()
                worker.join(10.0)
        assert "error" not in second, second.get("error")
        assert (first["case_action"], second["out"]["case_action"]) == ("opened", "added")
        assert second["out"]["case_id"] == first["case_id"]
        with factory() as s:
            cases = s.scalars(select(Case.id).where(Case.premises_id == ids[1])).all()
        assert cases == [first["case_id"]]
    finally:
        with factory() as s:
            s.execute(delete(Case).where(Case.premises_id == ids[1]))
            s.execute(delete(Campaign).where(Campaign.id == ids[2]))
            s.execute(delete(Premises).where(Premises.id == ids[1]))
            s.execute(delete(School).where(School.id == ids[0]))
            s.commit()
        engine.dispose()
