"""Inspections (日周月) across the National Day holiday, their records, campaign progress equal to the
checks behind it, the district risk and responsibility lists, and the ledger overview page — on real PostGIS
with an injected clock."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from storage import ledger as store
from storage.models import CampaignCheck
from tests.factories import Clock, add_premises, add_school, at, offset, square

LON, LAT = 110.2900, 25.2700  # Guilin
ADMIN = store.Actor("管理员", "admin")


@pytest.fixture
def clock(client) -> Clock:  # noqa: ANN001
    c = Clock(at(2025, 9, 29))
    client.app.state.clock = c
    return c


def _plan(client, headers, school_id: int, rhythm: str) -> dict:  # noqa: ANN001
    r = client.post(
        "/v1/inspections/plans",
        json={"school_id": school_id, "rhythm": rhythm, "items": ["校门口摊贩"]},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


def _due(client, headers, date: str, **params) -> list[tuple]:  # noqa: ANN001, ANN003
    r = client.get("/v1/inspections/due", params={"date": date, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return [(i["plan_id"], i["period_start"], i["due_by"], i["status"]) for i in r.json()["items"]]


def test_due_inspections_across_the_national_day_holiday(client, session, auth, clock) -> None:  # noqa: ANN001
    school = add_school(session, name="象山小学", outline=square(LON, LAT, 100), district="450304")
    other = add_school(session, name="七星中学", outline=square(LON + 0.01, LAT, 100), district="450305")
    session.commit()
    edu = auth("education", name="王老师")
    daily = _plan(client, edu, school.id, "daily")["id"]
    weekly = _plan(client, edu, school.id, "weekly")["id"]
    monthly = _plan(client, edu, other.id, "monthly")["id"]
    r = client.post(f"/v1/inspections/plans/{daily}/records", json={"items_done": ["校门口摊贩"]}, headers=edu)
    assert (r.status_code, r.json()["period_start"], r.json()["done_by"]) == (201, "2025-09-29", "王老师")

    # 2025-10-04 is inside the holiday (10-01…10-08 off): nothing new is due; 9-30 (Tuesday) was missed and
    # the week of 9-29 was due by its last working day, 9-30
    assert _due(client, edu, "2025-10-04", district="450304") == [
        (daily, "2025-09-30", "2025-09-30", "overdue"),
        (weekly, "2025-09-29", "2025-09-30", "overdue"),
    ]
    # 2025-10-09, the first working day after: today's daily round is due; the week of 10-06 runs to
    # Saturday 10-11, an adjusted working day (调休); October's monthly round to Friday 10-31. The other
    # school's plan started 9-29, inside September's period (due 9-30): that round was missed too
    assert _due(client, edu, "2025-10-09") == [
        (daily, "2025-09-30", "2025-09-30", "overdue"),
        (weekly, "2025-09-29", "2025-09-30", "overdue"),
        (monthly, "2025-09-01", "2025-09-30", "overdue"),
        (daily, "2025-10-09", "2025-10-09", "due"),
        (weekly, "2025-10-06", "2025-10-11", "due"),
        (monthly, "2025-10-01", "2025-10-31", "due"),
    ]
    assert [d[0] for d in _due(client, edu, "2025-10-09", district="450305")] == [monthly, monthly]
    too_long = client.get("/v1/inspections/due", params={"date": "2025-10-09", "since": "2024-01-01"}, headers=edu)
    assert (too_long.status_code, too_long.json()["field"]) == (422, "since")


def test_records_say_who_did_which_period_and_are_kept_apart_by_department(client, session, auth, clock) -> None:  # noqa: ANN001
    school = add_school(session, name="象山小学", outline=square(LON, LAT, 100), district="450304")
    session.commit()
    edu = auth("education", name="王老师")
    daily = _plan(client, edu, school.id, "daily")["id"]
    weekly = _plan(client, edu, school.id, "weekly")["id"]

    clock.now = at(2025, 10, 4)  # a holiday: the record goes to the last working day, 9-30
    r = client.post(
        f"/v1/inspections/plans/{daily}/records", json={"note": "节前补录"}, headers=auth("education", name="李老师")
    )
    assert (r.status_code, r.json()["period_start"], r.json()["done_by"]) == (201, "2025-09-30", "李老师")
    again = client.post(f"/v1/inspections/plans/{daily}/records", json={"period_start": "2025-09-30"}, headers=edu)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    saturday = client.post(f"/v1/inspections/plans/{weekly}/records", json={"period_start": "2025-10-11"}, headers=edu)
    assert (saturday.status_code, saturday.json()["field"]) == (422, "period_start")
    client.post(f"/v1/inspections/plans/{weekly}/records", json={"period_start": "2025-09-29"}, headers=edu)

    plan = client.get(f"/v1/inspections/plans/{daily}", headers=edu).json()
    assert [(x["period_start"], x["done_by"], x["note"]) for x in plan["records"]] == [
        ("2025-09-30", "李老师", "节前补录")
    ]
    done = client.get("/v1/inspections/due", params={"date": "2025-10-09", "include_done": "true"}, headers=edu).json()
    assert {(i["period_start"], i["rhythm"], i["done_by"]) for i in done["items"] if i["status"] == "done"} == {
        ("2025-09-30", "daily", "李老师"),
        ("2025-09-29", "weekly", "王老师"),
    }
    assert done["counts"] == {"overdue": 1, "due": 2, "done": 2}  # 9-29 daily; 10-09 daily and week of 10-06

    # the tobacco bureau does not run this plan: 404 and an empty due list; it cannot record for education
    tob = auth("tobacco")
    assert client.get(f"/v1/inspections/plans/{daily}", headers=tob).status_code == 404
    assert _due(client, tob, "2025-10-09") == []
    forged = {"school_id": school.id, "rhythm": "daily", "department": "education"}
    assert client.post("/v1/inspections/plans", json=forged, headers=tob).status_code == 403
    assert client.get("/v1/inspections/due", headers=auth("viewer")).status_code == 403


def _stall(session, name: str, school_sw: tuple[float, float], north_m: float, district: str, **kw):  # noqa: ANN001, ANN003, ANN202
    lon, lat = offset(*school_sw, north_m=-north_m)  # south of the campus's southern edge
    return add_premises(session, name=name, lon=lon, lat=lat, district=district, **kw)


def test_campaign_progress_equals_the_checks_behind_it(client, session, auth, clock) -> None:  # noqa: ANN001
    a_sw, b_sw = (LON, LAT), (LON + 0.02, LAT)
    add_school(session, name="象山小学", outline=square(*a_sw, 100), district="450304")
    add_school(session, name="七星幼儿园", outline=square(*b_sw, 80), levels=["kindergarten"], district="450305")
    a1 = _stall(session, "甲摊区", a_sw, 30, "450304", categories=["food_stall"])
    a2 = _stall(session, "乙摊区", a_sw, 80, "450304", categories=["food_stall"])
    far = _stall(session, "远处摊区", a_sw, 150, "450304", categories=["food_stall"])
    _stall(session, "烟酒店", a_sw, 20, "450304", categories=["tobacco"])
    b1 = _stall(session, "丙摊区", b_sw, 50, "450305", categories=["food_stall"])
    b2 = _stall(
        session, "丁小吃", b_sw, 95, "450305",
        permits=[{"category": "food_stall", "issued": dt.date(2024, 1, 1), "status": "active"}],
    )  # fmt: skip
    session.commit()
    admin, market = auth(), auth("market_supervision", name="市场监管张")
    body = {"name": "2025年秋季校园周边食品经营专项检查", "categories": ["food_stall"], "district": "450300",
            "starts": "2025-09-01", "ends": "2025-10-31", "lead_department": "market_supervision"}  # fmt: skip
    r = client.post("/v1/campaigns", json=body, headers=admin)
    assert r.status_code == 201, r.text
    campaign = r.json()
    assert campaign["radius_m"] == 100.0  # Guilin's food-stall rule (五(三)), from the pack in force
    cid = campaign["id"]

    scope = client.get(f"/v1/campaigns/{cid}/premises", headers=market).json()["premises"]
    assert [(p["name"], p["school_name"], round(p["distance_m"])) for p in scope] == [
        ("甲摊区", "象山小学", 30), ("乙摊区", "象山小学", 80),
        ("丙摊区", "七星幼儿园", 50), ("丁小吃", "七星幼儿园", 95),
    ]  # fmt: skip

    def check(pid: int, result: str):  # noqa: ANN202
        return client.post(f"/v1/campaigns/{cid}/checks", json={"premises_id": pid, "result": result}, headers=market)

    assert check(a1.id, "rectification").status_code == 201
    assert check(a1.id, "compliant").status_code == 201  # a correction replaces the check, never counts twice
    assert check(b1.id, "rectification").status_code == 201
    assert check(b2.id, "absent").status_code == 201
    unknown_case = {"premises_id": a2.id, "result": "violation", "case_id": 999999}
    assert client.post(f"/v1/campaigns/{cid}/checks", json=unknown_case, headers=market).status_code == 404
    out = check(far.id, "compliant")
    assert (out.status_code, out.json()["field"]) == (422, "premises_id")  # 150 m: not in scope

    got = client.get(f"/v1/campaigns/{cid}", headers=market).json()["progress"]
    assert got == [
        {"district": "450304", "in_scope": 2, "checked": 1, "compliant": 1, "rectification": 0, "violation": 0,
         "absent": 0, "checked_pct": 50.0},
        {"district": "450305", "in_scope": 2, "checked": 2, "compliant": 0, "rectification": 1, "violation": 0,
         "absent": 1, "checked_pct": 100.0},
    ]  # fmt: skip
    for row in got:
        listed = client.get(f"/v1/campaigns/{cid}/premises", params={"district": row["district"]}, headers=market)
        checked = [p for p in listed.json()["premises"] if p["result"]]
        assert (listed.json()["count"], len(checked)) == (row["in_scope"], row["checked"])
        assert all(p["checked_by"] == "市场监管张" for p in checked)
    stored = session.scalar(select(func.count()).select_from(CampaignCheck).where(CampaignCheck.campaign_id == cid))
    assert stored == sum(row["checked"] for row in got) == 3
    assert a2.id not in {p["premises_id"] for p in scope if p["result"]}

    clock.now = at(2025, 11, 3)  # after the campaign's end
    assert check(a2.id, "compliant").status_code == 409
    assert client.get(f"/v1/campaigns/{cid}", headers=auth("tobacco")).status_code == 404
    assert client.get("/v1/campaigns", headers=auth("tobacco")).json()["campaigns"] == []


def test_a_violation_in_a_campaign_opens_one_case_by_itself(client, session, session_factory, auth, clock) -> None:  # noqa: ANN001
    sw = (LON, LAT)
    school = add_school(session, name="象山小学", outline=square(*sw, 100), district="450304",
                        gates=[offset(*sw, east_m=50)])  # fmt: skip
    stall = _stall(session, "甲摊区", sw, 30, "450304", categories=["food_stall"])
    clean = _stall(session, "乙摊区", sw, 80, "450304", categories=["food_stall"])
    session.commit()
    market = auth("market_supervision", name="市场监管张")
    body = {"name": "2025年秋季校园周边食品经营专项检查", "categories": ["food_stall"], "district": "450300",
            "starts": "2025-09-01", "ends": "2025-10-31", "lead_department": "market_supervision"}  # fmt: skip
    cid = client.post("/v1/campaigns", json=body, headers=auth()).json()["id"]

    def check(pid: int, result: str, **kw):  # noqa: ANN003, ANN202
        r = client.post(
            f"/v1/campaigns/{cid}/checks", json={"premises_id": pid, "result": result, **kw}, headers=market
        )
        assert r.status_code == 201, r.text
        return r.json()

    first = check(stall.id, "violation", note="校门口占道经营")
    case_id = first["case_id"]
    assert (first["result"], first["case_action"]) == ("violation", "opened") and case_id is not None
    r = client.get(f"/v1/cases/{case_id}", headers=market)  # the campaign's department cooperates on it
    assert r.status_code == 200, r.text
    p = r.json()["properties"]
    assert (p["source"], p["state"], p["premises_id"], p["school_id"], p["district"]) == (
        "campaign", "inspection", stall.id, school.id, "450304",
    )  # fmt: skip
    # Guilin 五(三): the food-stall rule in force there, led by the city's campus-environment group
    assert (p["rule_id"], p["lead_department"], p["finding_status"]) == (
        "food_stall.gate", "campus_environment_group", "violation",
    )  # fmt: skip
    assert {"market_supervision", "urban_management"} <= set(p["cooperating_departments"])
    # 5 working days from Monday 29 September 2025: 9-30, then 10-09, 10-10, Saturday 10-11 (调休), 10-13
    assert (p["deadline"], p["deadline_source"]) == ("2025-10-13", "working")
    assert (p["details"]["campaign_id"], p["details"]["checked_by"], p["details"]["school_name"]) == (
        cid, "市场监管张", "象山小学",
    )  # fmt: skip
    assert p["title"] == "甲摊区 · food_stall.gate · 象山小学（2025年秋季校园周边食品经营专项检查）"
    assert (p["events"][0]["kind"], p["events"][0]["actor"], p["events"][0]["to"]) == ("created", "市场监管张",
                                                                                       "inspection")  # fmt: skip
    assert "校门口占道经营" in p["events"][0]["reason"]

    clock.now = at(2025, 9, 30)  # the same premises found in violation again while its case is open
    second = check(stall.id, "violation", note="复查仍在经营")
    assert (second["case_id"], second["case_action"]) == (case_id, "added")
    listed = client.get("/v1/cases", params={"premises_id": stall.id}, headers=auth()).json()
    assert (listed["numberMatched"], [f["id"] for f in listed["features"]]) == (1, [case_id])
    events = client.get(f"/v1/cases/{case_id}", headers=auth()).json()["properties"]["events"]
    assert [(e["kind"], e["details"].get("campaign_id")) for e in events] == [("created", None), ("check", cid)]
    assert client.get(f"/v1/cases/{case_id}", headers=auth("tobacco")).status_code == 404

    ok = check(clean.id, "compliant")
    assert (ok["case_id"], ok["case_action"]) == (None, None)
    corrected = check(stall.id, "rectification")  # a correction keeps the case the violation went into
    assert (corrected["case_id"], corrected["case_action"]) == (case_id, None)
    [row] = client.get(f"/v1/campaigns/{cid}", headers=market).json()["progress"]
    assert (row["checked"], row["violation"], row["rectification"], row["compliant"]) == (2, 0, 1, 1)
    assert client.get("/v1/cases", params={"source": "campaign"}, headers=auth()).json()["numberMatched"] == 1

    # closed, and a later check finds the stall again: the same case reopens (closed but not fixed)
    a, b = store.Actor("甲", "market_supervision"), store.Actor("乙", "market_supervision")
    with session_factory() as s:
        for state in ("registered", "assessed", "reported", "remediation", "acceptance"):
            store.transition(s, case_id, state, department=None, who=a, now=clock.now)
        store.transition(s, case_id, "closed", department=None, who=b, now=clock.now)
        s.commit()
    clock.now = at(2025, 10, 20)
    again = check(stall.id, "violation")
    assert (again["case_id"], again["case_action"]) == (case_id, "reopened")
    p = client.get(f"/v1/cases/{case_id}", headers=market).json()["properties"]
    assert (p["state"], p["deadline"]) == ("reopened", "2025-10-27")  # a fresh 5 working days from 10-20
    assert client.get("/v1/cases", params={"premises_id": stall.id}, headers=auth()).json()["numberMatched"] == 1


def test_the_rule_a_campaign_violation_breaks(client) -> None:  # noqa: ANN001
    from service.inspections import campaign_rule

    rules, on = client.app.state.rules, dt.date(2025, 9, 29)

    def rule(categories: list[str], district: str, levels: list[str], distance_m: float) -> str | None:
        found = campaign_rule(rules, categories=categories, district=district, school_levels=levels,
                              distance_m=distance_m, on=on)  # fmt: skip
        return found.id if found else None

    assert rule(["internet_cafe"], "320102", ["primary"], 150) == "internet_cafe.school"
    assert rule(["internet_cafe"], "320102", ["kindergarten"], 99) == "internet_cafe.kindergarten"
    assert rule(["internet_cafe"], "320102", ["kindergarten"], 150) is None  # 100 m for kindergartens
    assert rule(["internet_cafe"], "320102", ["nine_year"], 150) == "internet_cafe.school"
    assert rule(["internet_cafe"], "320102", [], 150) == "internet_cafe.school"  # unknown level: every rule
    assert rule(["food_stall"], "450304", ["primary"], 95) == "food_stall.gate"  # Guilin 五(三)
    assert rule(["food_stall"], "320102", ["primary"], 20) is None  # no national food-stall rule


def _case(session, n: int, *, school_id: int | None, status: str | None, category: str, lead: str,  # noqa: ANN001
          deadline: dt.date, opened: dt.datetime = at(2025, 9, 1)) -> int:  # fmt: skip
    return store.create_case(
        session, subject=f"premises:risk{n}", rule_id=category, category=category, source="scan", state="warning",
        title=f"案件{n}", lead_department=lead, now=opened, who=ADMIN, district_adcode="450304", school_id=school_id,
        finding_status=status, deadline=deadline, deadline_source="manual",
    )  # fmt: skip


def test_risk_list_ranks_schools_and_cases_by_overdue_then_severity(client, session, auth, clock) -> None:  # noqa: ANN001
    x = add_school(session, name="甲小学", outline=square(LON, LAT, 100), district="450304")
    y = add_school(session, name="乙中学", outline=square(LON + 0.01, LAT, 100), district="450304")
    z = add_school(session, name="丙幼儿园", outline=square(LON + 0.02, LAT, 100), district="450304")
    ok, late = dt.date(2025, 12, 31), dt.date(2025, 9, 20)
    x_review_late = _case(session, 1, school_id=x.id, status="review", category="lottery", lead="market_supervision",
                          deadline=late)  # fmt: skip
    x_violation = _case(session, 2, school_id=x.id, status="violation", category="internet_cafe",
                        lead="culture_tourism", deadline=ok)  # fmt: skip
    y_violation = _case(session, 3, school_id=y.id, status="violation", category="tobacco", lead="tobacco", deadline=ok)
    z1 = _case(session, 4, school_id=z.id, status="nonconforming", category="tobacco", lead="tobacco",
               deadline=dt.date(2025, 11, 1))  # fmt: skip
    z2 = _case(session, 5, school_id=z.id, status="nonconforming", category="bar", lead="culture_tourism",
               deadline=dt.date(2025, 10, 15))  # fmt: skip
    loose = _case(session, 6, school_id=None, status="unlicensed", category="internet_cafe", lead="culture_tourism",
                  deadline=late)  # fmt: skip
    closed = _case(
        session, 7, school_id=y.id, status="violation", category="bar", lead="culture_tourism", deadline=late
    )
    store.transition(session, closed, "dismissed", department=None, who=ADMIN, now=at(2025, 9, 2), reason="误报")
    session.commit()
    clock.now = at(2025, 9, 29)

    r = client.get("/v1/risk-lists/450304", headers=auth())
    assert r.status_code == 200, r.text
    risks = r.json()["risks"]
    assert [(s["rank"], s["school_name"], s["open"], s["overdue"]) for s in risks] == [
        (1, "甲小学", 2, 1), (2, "乙中学", 1, 0), (3, "丙幼儿园", 2, 0), (4, None, 1, 1),
    ]  # fmt: skip
    assert [c["id"] for c in risks[0]["cases"]] == [x_review_late, x_violation]  # 9 days overdue comes first
    assert risks[0]["cases"][0]["days_overdue"] == 9
    assert [c["id"] for c in risks[1]["cases"]] == [y_violation]  # the dismissed case is not a risk
    assert [c["id"] for c in risks[2]["cases"]] == [z2, z1]  # same severity: the nearer deadline first
    assert [c["id"] for c in risks[3]["cases"]] == [loose]

    duties = {d["department"]: d for d in r.json()["responsibilities"]}
    assert (duties["culture_tourism"]["open"], duties["culture_tourism"]["overdue"]) == (3, 1)
    assert (duties["tobacco"]["open"], duties["market_supervision"]["overdue"]) == (2, 1)
    assert "internet_cafe.school" in {x["rule_id"] for x in duties["culture_tourism"]["leads"]}
    assert "food_stall.gate" in {x["rule_id"] for x in duties["urban_management"]["cooperates"]}  # Guilin 五(三)

    mine = client.get("/v1/risk-lists/450304", headers=auth("tobacco")).json()["risks"]
    assert [(s["school_name"], [c["id"] for c in s["cases"]]) for s in mine] == [("乙中学", [y_violation]),
                                                                                 ("丙幼儿园", [z1])]  # fmt: skip
    assert client.get("/v1/risk-lists/4503", headers=auth()).status_code == 422


def test_overview_page_shows_the_report_numbers_and_no_external_url(client, session, auth, make_token, clock) -> None:  # noqa: ANN001
    school = add_school(session, name="甲小学", outline=square(LON, LAT, 100), district="450304")
    for n, (cat, lead, opened) in enumerate(
        [("bar", "culture_tourism", at(2025, 8, 5)), ("bar", "culture_tourism", at(2025, 9, 1)),
         ("tobacco", "tobacco", at(2025, 9, 2)), ("food_stall", "urban_management", at(2025, 9, 3))]
    ):  # fmt: skip
        _case(session, 10 + n, school_id=school.id, status="violation", category=cat, lead=lead,
              deadline=dt.date(2025, 9, 10), opened=opened)  # fmt: skip
    session.commit()
    clock.now = at(2025, 10, 1)
    token = make_token("admin")
    r = client.get("/maps/ledger", params={"token": token, "district": "450300"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert not re.search(r"https?://|//cdn|<script\s[^>]*src=|<link\s[^>]*href=", page)
    assert page.count("<svg") == 4

    report = client.get("/v1/reports/cases", params={"by": "category", "district": "450300"},
                        headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
    by_category = page.split('id="by-category"')[1].split("</section>")[0]
    shown = dict(re.findall(r'<text [^>]*data-key="[^"]* ([a-z_]+)">(\d+)</text>', by_category))
    assert {k: int(v) for k, v in shown.items()} == {row["key"]: row["total"] for row in report["rows"]}
    assert shown == {"bar": "2", "tobacco": "1", "food_stall": "1"}
    assert re.search(r'id="open"><div class="v">4<', page) and re.search(r'id="overdue"><div class="v">4<', page)
    trend = dict(re.findall(r'data-month="([\d-]+)" data-kind="opened">(\d+)<', page))
    assert trend == {t["month"]: str(t["opened"]) for t in report["trend"]} == {"2025-08": "1", "2025-09": "3"}

    assert client.get("/maps/ledger").status_code == 401
    assert client.get("/maps/ledger", params={"token": make_token("viewer")}).status_code == 403
    tob = client.get("/maps/ledger", headers={"Authorization": f"Bearer {make_token('tobacco')}"}).text
    assert re.search(r'id="open"><div class="v">1<', tob)  # the tobacco bureau sees its own case only


def _districts(session, rows: list[tuple[str, str, str, str | None]]) -> None:  # noqa: ANN001
    from geoalchemy2.shape import from_shape
    from shapely.geometry import MultiPolygon

    from storage.models import District

    for i, (adcode, name, level, parent) in enumerate(rows):
        outline = MultiPolygon([square(LON + 1 + 0.1 * i, LAT + 1, 500)])  # away from the schools: names only
        session.add(District(adcode=adcode, name=name, level=level, parent_adcode=parent,
                             geom=from_shape(outline, srid=4326)))  # fmt: skip
    session.flush()


def test_overview_page_names_the_districts_with_their_adcodes(client, session, auth, make_token, clock) -> None:  # noqa: ANN001
    _districts(session, [("450300", "桂林市", "city", "450000"), ("450302", "秀峰区", "county", "450300"),
                         ("450304", "象山区", "county", "450300")])  # fmt: skip
    school = add_school(session, name="甲小学", outline=square(LON, LAT, 100), district="450304")
    for n, district in enumerate(["450302", "450302", "450304", "450305"]):  # 450305 (七星区) not on record
        store.create_case(
            session, subject=f"premises:named{n}", rule_id="bar", category="bar", source="scan", state="warning",
            title=f"案件{n}", lead_department="culture_tourism", now=at(2025, 9, 1), who=ADMIN,
            district_adcode=district, school_id=school.id, deadline=dt.date(2025, 9, 10), deadline_source="manual",
        )  # fmt: skip
    session.commit()
    clock.now = at(2025, 10, 1)
    token = make_token("admin")
    page = client.get("/maps/ledger", params={"token": token, "district": "450300"}).text
    assert "行政区 桂林市 450300" in page
    by_district = page.split('id="by-district"')[1].split("</section>")[0]
    shown = re.findall(r'<text [^>]*data-key="([^"]*)">(\d+)</text>', by_district)
    assert shown == [("秀峰区 450302", "2"), ("象山区 450304", "1"), ("450305", "1")]
    report = client.get("/v1/reports/cases", params={"by": "district", "district": "450300"},
                        headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
    assert [(r["key"], r["name"], r["total"]) for r in report["rows"]] == [
        ("450302", "秀峰区", 2), ("450304", "象山区", 1), ("450305", None, 1),
    ]  # fmt: skip
    assert {key.split()[-1]: int(n) for key, n in shown} == {r["key"]: r["total"] for r in report["rows"]}
    county = client.get("/maps/ledger", params={"token": token, "district": "450302"}).text
    assert "行政区 秀峰区 450302" in county and re.search(r'id="open"><div class="v">2<', county)


def test_campaign_scope_on_the_real_nanjing_extract_matches_the_reference_distances(
    client, session, session_factory, auth, clock, nanjing_osm
) -> None:  # noqa: ANN001
    from geoalchemy2.shape import to_shape

    from geo.measure import distance_to_outline
    from service.importing import ImportOptions, import_osm
    from storage.models import Campus, Permit, Premises, School

    import_osm(session_factory, nanjing_osm, ImportOptions(created_by="test"))
    cats = ["bar", "entertainment", "food_stall", "hazardous"]
    body = {"name": "新街口校园周边专项检查", "categories": cats, "starts": "2025-09-01", "ends": "2025-10-31"}
    r = client.post("/v1/campaigns", json=body, headers=auth())
    assert r.status_code == 201, r.text
    cid, radius = r.json()["id"], r.json()["radius_m"]
    assert radius == 200.0  # the national pack's largest distance for these categories (bars, entertainment)

    scope = {
        p["premises_id"]: p for p in client.get(f"/v1/campaigns/{cid}/premises", headers=auth()).json()["premises"]
    }
    campuses = [
        (sid, to_shape(g))
        for sid, g in session.execute(select(Campus.school_id, Campus.geom).join(School).where(School.closed.is_(None)))
    ]
    permitted = set(session.scalars(select(Permit.premises_id).where(Permit.category.in_(cats))))
    candidates = session.execute(select(Premises.id, Premises.geom, Premises.categories)).all()
    expected = {}
    for pid, geom, pcats in candidates:
        if not (set(pcats or ()) & set(cats) or pid in permitted):
            continue
        site = to_shape(geom)
        near = [
            (distance_to_outline(site, outline).distance_m, sid)
            for sid, outline in campuses
            if outline.distance(site) < 0.005  # ~500 m: a pre-filter only
        ]
        best = min(near, default=None)
        if best is not None and best[0] <= radius:
            expected[pid] = best
    assert len(expected) >= 5, "the extract has bars, entertainment venues, food stalls near schools"
    assert set(scope) == set(expected)
    for pid, (dist, school_id) in expected.items():
        assert scope[pid]["distance_m"] == pytest.approx(dist, abs=0.5), pid
        assert scope[pid]["school_id"] == school_id

    first = sorted(scope)[:3]
    for pid in first:
        client.post(f"/v1/campaigns/{cid}/checks", json={"premises_id": pid, "result": "compliant"}, headers=auth())
    [row] = client.get(f"/v1/campaigns/{cid}", headers=auth()).json()["progress"]
    assert (row["district"], row["in_scope"], row["checked"], row["compliant"]) == ("", len(expected), 3, 3)
