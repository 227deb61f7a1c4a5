"""The risk ledger on real PostGIS with an injected clock: scans → cases, the loop and its refusals,
department isolation, deadlines across a holiday, escalation, reopening after a failing rescan."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon
from sqlalchemy import select

from geo.rules import DEFAULT_DIRECTORY, RuleRegistry
from service import ledger
from service.scanning import run_scan
from service.settings import Settings
from service.webhooks import HEADER, verify
from service.worker import HANDLERS
from storage.models import Case, CaseFinding, District, Job, Premises
from tests.factories import Clock, add_premises, add_school, at, offset, square

PROBLEM = "application/problem+json"
LON, LAT = 118.7800, 32.0400  # central Nanjing (no district loaded: the national pack applies)


@pytest.fixture
def clock(client) -> Clock:  # noqa: ANN001
    c = Clock(at(2025, 9, 30))
    client.app.state.clock = c
    return c


def _tobacco_shop_near_a_gate(session, *, issued: dt.date = dt.date(2024, 3, 1), expires=None):  # noqa: ANN001, ANN202
    gate = offset(LON, LAT, east_m=60)
    school = add_school(session, name="石鼓路小学", outline=square(LON, LAT, 120), gates=[gate])
    shop_lon, shop_lat = offset(*gate, north_m=-25)
    shop = add_premises(
        session, name="便民烟酒店", lon=shop_lon, lat=shop_lat, categories=["tobacco"],
        permits=[{"category": "tobacco", "issued": issued, "expires": expires, "status": "active"}],
    )  # fmt: skip
    session.commit()
    return school, shop


def _scan_to_cases(session_factory, client, now: dt.datetime) -> dict:  # noqa: ANN001
    scan = run_scan(session_factory, client.app.state.rules, on=now.date())
    return ledger.cases_from_scan(session_factory, scan_id=scan["scan_id"], now=now)


def _move(client, case_id: int, to: str, headers: dict, reason: str | None = None):  # noqa: ANN001, ANN202
    return client.post(f"/v1/cases/{case_id}/transitions", json={"to": to, "reason": reason}, headers=headers)


def test_scan_findings_open_one_case_per_premises_and_rule(client, session, session_factory, auth, clock) -> None:  # noqa: ANN001
    school, shop = _tobacco_shop_near_a_gate(session)
    first = _scan_to_cases(session_factory, client, clock.now)
    assert first["created"] == 1
    second = _scan_to_cases(session_factory, client, clock.now + dt.timedelta(days=1))
    assert (second["created"], second["added"]) == (0, 1)

    r = client.get("/v1/cases", params={"premises_id": shop.id}, headers=auth("tobacco"))
    assert r.status_code == 200
    [case] = r.json()["features"]
    p = case["properties"]
    assert (p["state"], p["rule_id"], p["school_id"], p["finding_status"]) == (
        "warning",
        "tobacco",
        school.id,
        "violation",
    )
    assert (p["lead_department"], p["cooperating_departments"]) == ("tobacco", ["market_supervision"])
    assert (p["deadline"], p["deadline_source"]) == ("2025-10-30", "calendar")  # 30 calendar days for tobacco
    links = session.scalars(select(CaseFinding.scan_id).where(CaseFinding.case_id == case["id"])).all()
    assert len(set(links)) == 2  # both scans' findings stand behind the one case


def test_nonconforming_premises_comes_due_at_its_permit_expiry(client, session, session_factory, auth, clock) -> None:  # noqa: ANN001
    _, shop = _tobacco_shop_near_a_gate(session, issued=dt.date(2019, 5, 1), expires=dt.date(2026, 4, 30))
    _scan_to_cases(session_factory, client, clock.now)
    [case] = client.get("/v1/cases", params={"premises_id": shop.id}, headers=auth()).json()["features"]
    assert case["properties"]["finding_status"] == "nonconforming"
    assert (case["properties"]["deadline"], case["properties"]["deadline_source"]) == ("2026-04-30", "due_date")


def test_full_loop_refusals_and_acceptance_by_another_person(client, session, session_factory, auth, clock) -> None:  # noqa: ANN001
    _, shop = _tobacco_shop_near_a_gate(session)
    _scan_to_cases(session_factory, client, clock.now)
    case_id = session.scalar(select(Case.id).where(Case.premises_id == shop.id))
    officer = auth("tobacco", name="烟草-周")
    colleague = auth("market_supervision", name="市监-吴")

    r = _move(client, case_id, "closed", officer)
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["allowed"] == ["inspection", "dismissed"]

    for state in ("inspection", "registered", "assessed", "reported", "monitored", "remediation", "acceptance"):
        r = _move(client, case_id, state, officer, reason=f"进入{state}")
        assert r.status_code == 200, r.text
        assert r.json()["properties"]["state"] == state
    r = _move(client, case_id, "closed", officer)
    assert r.status_code == 403
    assert "someone other" in r.json()["detail"]
    r = _move(client, case_id, "closed", colleague, reason="复查已整改")
    assert r.status_code == 200
    assert r.json()["properties"]["state"] == "closed"

    case = client.get(f"/v1/cases/{case_id}", headers=auth()).json()["properties"]
    moves = [(e["from"], e["to"], e["actor"]) for e in case["events"] if e["kind"] == "transition"]
    assert moves[-2:] == [("remediation", "acceptance", "烟草-周"), ("acceptance", "closed", "市监-吴")]
    assert case["events"][-1]["reason"] == "复查已整改"
    assert case["remediation_by"] == "烟草-周"

    r = _move(client, case_id, "reopened", officer, reason="x")  # tobacco may not reopen by hand
    assert r.status_code == 403
    r = _move(client, case_id, "bogus", auth())
    assert r.status_code == 422


def test_closed_case_reopens_when_the_next_scan_still_finds_the_premises(
    client, session, session_factory, clock
) -> None:  # noqa: ANN001
    _, shop = _tobacco_shop_near_a_gate(session)
    _scan_to_cases(session_factory, client, clock.now)
    case_id = session.scalar(select(Case.id).where(Case.premises_id == shop.id))
    officer, other = ledger.store.Actor("甲", "tobacco"), ledger.store.Actor("乙", "tobacco")
    with session_factory() as s:
        for state in ("inspection", "registered", "assessed", "reported", "remediation", "acceptance"):
            ledger.store.transition(s, case_id, state, department="tobacco", who=officer, now=clock.now)
        ledger.store.transition(s, case_id, "closed", department="tobacco", who=other, now=clock.now)
        s.commit()
    result = _scan_to_cases(session_factory, client, at(2025, 11, 3))
    assert (result["reopened"], result["created"]) == (1, 0)
    session.expire_all()
    case = session.get(Case, case_id)
    assert case.state == "reopened"
    assert case.closed_at is None
    assert case.deadline == dt.date(2025, 12, 3)  # a fresh tobacco deadline from the reopening day


def test_department_isolation(client, session, session_factory, auth, clock) -> None:  # noqa: ANN001
    _, shop = _tobacco_shop_near_a_gate(session)
    _scan_to_cases(session_factory, client, clock.now)
    case_id = session.scalar(select(Case.id).where(Case.premises_id == shop.id))
    culture = auth("culture_tourism", name="文旅")
    assert client.get(f"/v1/cases/{case_id}", headers=culture).status_code == 404
    assert _move(client, case_id, "inspection", culture).status_code == 404
    assert client.patch(f"/v1/cases/{case_id}", json={"measures": "x"}, headers=culture).status_code == 404
    assert client.get("/v1/cases", headers=culture).json()["numberMatched"] == 0
    # the cooperating department sees and moves it; a token's department wins over its role
    assert client.get(f"/v1/cases/{case_id}", headers=auth("market_supervision")).status_code == 200
    assert client.get(f"/v1/cases/{case_id}", headers=auth("urban_management", department="tobacco")).status_code == 200
    assert client.get("/v1/cases", headers=auth("viewer")).status_code == 403


def test_five_fixes_are_recorded(client, session, session_factory, auth, clock) -> None:  # noqa: ANN001
    _, shop = _tobacco_shop_near_a_gate(session)
    _scan_to_cases(session_factory, client, clock.now)
    case_id = session.scalar(select(Case.id).where(Case.premises_id == shop.id))
    plan = {"responsible_department": "tobacco", "responsible_person": "周科长", "measures": "责令停止销售并迁址",
            "funds_yuan": 5000, "deadline": "2025-10-20", "plan": "十日内迁出学校周边50米"}  # fmt: skip
    r = client.patch(f"/v1/cases/{case_id}", json=plan, headers=auth("tobacco", name="周"))
    assert r.status_code == 200, r.text
    p = r.json()["properties"]
    assert (p["responsible_person"], p["funds_yuan"], p["deadline"], p["deadline_source"]) == (
        "周科长",
        5000,
        "2025-10-20",
        "manual",
    )
    events = client.get(f"/v1/cases/{case_id}", headers=auth()).json()["properties"]["events"]
    assert events[-1]["kind"] == "plan" and events[-1]["actor"] == "周"
    assert events[-1]["details"]["deadline"] == {"from": "2025-10-30", "to": "2025-10-20"}
    assert client.patch(f"/v1/cases/{case_id}", json={"funds_yuan": -1}, headers=auth()).status_code == 422


def test_field_report_enters_at_inspection_with_a_working_day_deadline_and_escalates(
    client,
    session,
    session_factory,
    auth,
    clock,  # noqa: ANN001
) -> None:
    gcj_lon, gcj_lat = 118.7905, 32.0452
    r = client.post(
        "/v1/field-reports",
        json={"lon": gcj_lon, "lat": gcj_lat, "crs": "gcj02", "category": "food_stall", "note": "校门口流动摊点",
              "photos": ["oss://patrol/0930-1.jpg"], "name": "烤肠摊"},
        headers=auth("urban_management", name="城管-孙"),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    case = r.json()
    p = case["properties"]
    assert (p["state"], p["source"], p["category"], p["finding_status"]) == (
        "inspection",
        "field_report",
        "food_stall",
        "unlicensed",
    )
    # 5 working days from Tuesday 30 September 2025 skip the National Day week (1-8 Oct) and count Sat 11 Oct
    assert (p["deadline"], p["deadline_source"]) == ("2025-10-14", "working")
    assert p["details"]["photos"] == ["oss://patrol/0930-1.jpg"]
    premises = session.get(Premises, p["premises_id"])
    assert (premises.source, premises.categories, premises.permits) == ("patrol", ["food_stall"], [])
    lon, lat = case["geometry"]["coordinates"]
    assert abs(lon - gcj_lon) > 0.003  # converted from GCJ-02 to WGS84 on entry (about 500 m in Nanjing)

    settings = Settings(webhook_url="http://127.0.0.1:9/hook", webhook_secret="a-long-test-secret-0123456789")
    assert ledger.tick(session_factory, now=at(2025, 10, 14, 23), settings=settings)["overdue"] == []
    assert client.get("/v1/cases", params={"overdue": "true"}, headers=auth()).json()["numberMatched"] == 0
    result = ledger.tick(session_factory, now=at(2025, 10, 15, 0), settings=settings)
    assert result["overdue"] == [case["id"]]
    [job_id] = result["webhook_jobs"]
    event = session.get(Job, job_id).params["event"]
    assert (event["type"], event["case"]["id"], event["case"]["deadline"]) == ("case.overdue", case["id"], "2025-10-14")
    assert ledger.tick(session_factory, now=at(2025, 10, 16), settings=settings)["overdue"] == []  # once only
    clock.now = at(2025, 10, 16)
    listed = client.get("/v1/cases", params={"overdue": "true"}, headers=auth("urban_management")).json()
    assert [f["id"] for f in listed["features"]] == [case["id"]]
    assert listed["features"][0]["properties"]["overdue"] is True
    events = client.get(f"/v1/cases/{case['id']}", headers=auth()).json()["properties"]["events"]
    assert events[-1]["kind"] == "escalation" and "1 day(s) past" in events[-1]["reason"]


def test_report_page_and_field_report_permissions(client, auth) -> None:  # noqa: ANN001
    token_headers = auth("public_security")
    r = client.get("/report", headers=token_headers)
    assert r.status_code == 200
    assert 'name="viewport"' in r.text and "/v1/field-reports" in r.text and 'value="gcj02"' in r.text
    assert client.get("/report").status_code == 401
    assert client.get("/report", headers=auth("tobacco")).status_code == 403
    body = {"lon": 118.78, "lat": 32.04, "category": "bar"}
    r = client.post("/v1/field-reports", json=body, headers=auth("urban_management"))
    assert r.status_code == 422 and r.json()["field"] == "crs"


def test_staffing_and_access_control_shortfalls_become_cases(client, session, session_factory, auth, clock) -> None:  # noqa: ANN001
    guilin = (110.2906, 25.2736)
    add_school(session, name="漓江小学", outline=square(*guilin, 100), district="450302", students=1500, staff=60,
               guards=2)  # fmt: skip
    add_school(session, name="象山幼儿园", outline=square(guilin[0] + 0.01, guilin[1], 60), district="450302",
               levels=["kindergarten"], students=90, staff=9, guards=1, access_control=None)  # fmt: skip
    add_school(session, name="桂花小学", outline=square(guilin[0] + 0.02, guilin[1], 80), district="450302",
               students=1499, staff=60, guards=2)  # fmt: skip
    session.commit()
    result = ledger.staffing_cases(session_factory, client.app.state.rules, now=clock.now, district="450302")
    assert len(result["created"]) == 2
    again = ledger.staffing_cases(session_factory, client.app.state.rules, now=clock.now, district="450302")
    assert again["created"] == []
    feats = client.get("/v1/cases", params={"district": "450302"}, headers=auth("education")).json()["features"]
    got = sorted((f["properties"]["category"], f["properties"]["title"]) for f in feats)
    assert got == [
        ("access_control", "象山幼儿园 · 幼儿园未建门禁/接送卡制度（要求 1，在册 0）"),
        ("staffing", "漓江小学 · 安保人员不足（要求 3，在册 2）"),
    ]


# --- the overdue ladder ----------------------------------------------------------------------------

SECRET = "ladder-test-secret-0123456789"


class _Receiver(ThreadingHTTPServer):
    """A loopback webhook receiver that checks every signature."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.received: list[tuple[bool, str, dict]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hooks/safezone"


class _Hook(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = verify(body, SECRET, self.headers.get(HEADER, ""))
        self.server.received.append((ok, self.headers.get("X-Safezone-Event", ""), json.loads(body)))
        self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver(monkeypatch):  # noqa: ANN001, ANN201
    server = _Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SAFEZONE_WEBHOOK_URL", server.url)  # the queue's webhook job reads its settings here
    monkeypatch.setenv("SAFEZONE_WEBHOOK_SECRET", SECRET)
    yield server
    server.shutdown()


def _district(session, adcode: str, name: str) -> None:  # noqa: ANN001
    outline = MultiPolygon([square(110.0 + int(adcode[-2:]) * 0.01, 24.0, 300)])  # names only: away from sites
    session.add(District(adcode=adcode, name=name, level="county", parent_adcode=adcode[:4] + "00",
                         geom=from_shape(outline, srid=4326)))  # fmt: skip


def _deliver(session, session_factory, job_ids: list[str]) -> None:  # noqa: ANN001
    """Run the queued webhook jobs through the queue's own handler (signing, delivery)."""
    for job_id in job_ids:
        HANDLERS["webhook"](session_factory, session.get(Job, job_id).params, lambda done, total: None)


def test_overdue_case_climbs_the_ladder_one_level_at_a_time(
    client, session, session_factory, auth, clock, receiver
) -> None:  # noqa: ANN001
    _district(session, "450302", "秀峰区")
    session.commit()
    r = client.post(
        "/v1/cases",
        json={"title": "校门口流动摊点", "category": "food_stall", "district": "450302",
              "lead_department": "urban_management", "cooperating_departments": ["market_supervision"]},
        headers=auth(),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    assert r.json()["properties"]["deadline"] == "2025-10-14"  # 5 working days over the National Day week
    assert r.json()["properties"]["escalation_level"] == 0
    rules = client.app.state.rules
    settings = Settings(webhook_url=receiver.url, webhook_secret=SECRET)

    def tick(now: dt.datetime) -> dict:
        return ledger.tick(session_factory, now=now, settings=settings, registry=rules)

    assert tick(at(2025, 10, 14, 23))["escalated"] == []
    first = tick(at(2025, 10, 15, 0))
    assert first["overdue"] == [case_id]
    assert first["escalated"] == [{"id": case_id, "level": 1, "recipient": "lead_department",
                                   "recipient_name": "城市管理部门", "after_working_days": 0}]  # fmt: skip
    for now in (at(2025, 10, 16), at(2025, 10, 21, 23)):  # 10-15 + 5 working days is Wednesday 10-22
        assert tick(now)["escalated"] == []
    second = tick(at(2025, 10, 22, 0))
    assert second["overdue"] == []
    assert second["escalated"] == [{"id": case_id, "level": 2, "recipient": "district_government",
                                    "recipient_name": "秀峰区人民政府", "after_working_days": 5}]  # fmt: skip
    assert tick(at(2025, 11, 28))["escalated"] == []  # each level once; 2 is the top of the default ladder

    _deliver(session, session_factory, first["webhook_jobs"] + second["webhook_jobs"])
    got = [(ok, kind, e["case"]["id"], e["escalation"]["level"], e["escalation"]["recipient_name"])
           for ok, kind, e in receiver.received]  # fmt: skip
    assert got == [
        (True, "case.overdue", case_id, 1, "城市管理部门"),
        (True, "case.escalated", case_id, 2, "秀峰区人民政府"),
    ]

    clock.now = at(2025, 10, 22, 9)
    officer = auth("urban_management")
    for level, expected in ((2, [case_id]), (1, []), (0, [])):
        listed = client.get("/v1/cases", params={"escalation_level": level}, headers=officer).json()
        assert [f["id"] for f in listed["features"]] == expected, level
    p = client.get(f"/v1/cases/{case_id}", headers=officer).json()["properties"]
    assert (p["escalation_level"], p["escalated_to"], p["overdue"]) == (2, "秀峰区人民政府", True)
    assert p["escalation_level_at"].startswith("2025-10-22")
    ladder = [(e["details"]["level"], e["details"]["recipient_name"]) for e in p["events"] if e["kind"] == "escalation"]
    assert ladder == [(1, "城市管理部门"), (2, "秀峰区人民政府")]
    assert client.get("/v1/cases", params={"escalation_level": 10}, headers=officer).status_code == 422

    # a new deadline starts the ladder again
    r = client.patch(f"/v1/cases/{case_id}", json={"deadline": "2025-11-03"}, headers=officer)
    assert (r.json()["properties"]["escalation_level"], r.json()["properties"]["escalated_to"]) == (0, None)
    assert tick(at(2025, 10, 23))["escalated"] == []
    assert [e["level"] for e in tick(at(2025, 11, 4))["escalated"]] == [1]


def test_a_pack_sets_its_own_ladder(client, session, session_factory, tmp_path: Path) -> None:  # noqa: ANN001
    packs = tmp_path / "rules"
    shutil.copytree(DEFAULT_DIRECTORY, packs)
    guilin = packs / "guilin-450300.yaml"
    guilin.write_text(
        guilin.read_text(encoding="utf-8")
        + """
escalation:
  - {level: 1, recipient: lead_department, recipient_zh: "{lead_department}"}
  - {level: 2, after_working_days: 2, recipient: district_government, recipient_zh: "{district}人民政府"}
  - {level: 3, after_working_days: 3, recipient: city_government, recipient_zh: 桂林市人民政府}
""",
        encoding="utf-8",
    )
    rules = RuleRegistry.load(packs)
    assert rules.version != client.app.state.rules.version  # the ladder is part of the pack's content
    _district(session, "450302", "秀峰区")
    ids = {}
    for place, adcode in (("guilin", "450302"), ("nanjing", "320102")):  # Nanjing: the national default ladder
        ids[place] = ledger.store.create_case(
            session, subject=f"premises:ladder-{place}", rule_id="food_stall.gate", category="food_stall",
            source="manual", state="registered", title=place, lead_department="urban_management",
            now=at(2025, 9, 30), who=ledger.store.Actor("甲", "admin"), district_adcode=adcode,
        )  # fmt: skip
    session.commit()
    settings = Settings(webhook_url=None)

    def levels(now: dt.datetime) -> list[tuple[str, int, str]]:
        raised = ledger.tick(session_factory, now=now, settings=settings, registry=rules)["escalated"]
        place = {v: k for k, v in ids.items()}
        return [(place[e["id"]], e["level"], e["recipient_name"]) for e in raised]

    assert levels(at(2025, 10, 15)) == [("guilin", 1, "城市管理部门"), ("nanjing", 1, "城市管理部门")]
    assert levels(at(2025, 10, 16)) == []
    assert levels(at(2025, 10, 17)) == [("guilin", 2, "秀峰区人民政府")]  # 2 working days after 10-15
    assert levels(at(2025, 10, 21)) == []
    assert levels(at(2025, 10, 22)) == [("guilin", 3, "桂林市人民政府"), ("nanjing", 2, "所在区县人民政府")]
    assert levels(at(2025, 12, 31)) == []
    session.expire_all()
    assert [session.get(Case, ids[p]).escalation_level for p in ("guilin", "nanjing")] == [3, 2]
