"""Ledger reports: the numbers equal the counts of the cases behind them; paging; XLSX; isolation."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook

from storage import ledger as store

BJ = dt.timezone(dt.timedelta(hours=8))
ADMIN = store.Actor("管理员", "admin")
A, B = store.Actor("甲", "education"), store.Actor("乙", "education")
LOOP = ("inspection", "registered", "assessed", "reported", "remediation", "acceptance")


def _case(session, n: int, *, district: str, category: str, lead: str, opened: dt.datetime) -> int:  # noqa: ANN001
    return store.create_case(
        session, subject=f"premises:r{n}", rule_id=category, category=category, source="manual", state="warning",
        title=f"case {n}", lead_department=lead, now=opened, who=ADMIN, district_adcode=district,
    )  # fmt: skip


def _close(session, case_id: int, when: dt.datetime) -> None:  # noqa: ANN001
    for state in LOOP:
        store.transition(session, case_id, state, department=None, who=A, now=when)
    store.transition(session, case_id, "closed", department=None, who=B, now=when)


@pytest.fixture
def ledger_cases(session, client):  # noqa: ANN001, ANN201
    aug, sep = dt.datetime(2025, 8, 5, 9, tzinfo=BJ), dt.datetime(2025, 9, 1, 9, tzinfo=BJ)
    ids = {}
    # Guilin 象山区: two bars (30 calendar days), one closed in time; one food stall (5 working days), open
    ids["bar1"] = _case(session, 1, district="450304", category="bar", lead="culture_tourism", opened=aug)
    ids["bar2"] = _case(session, 2, district="450304", category="bar", lead="culture_tourism", opened=sep)
    ids["stall"] = _case(session, 3, district="450304", category="food_stall", lead="urban_management", opened=sep)
    # Chongqing 渝中区: one tobacco closed late, one dismissed, one open
    ids["tob1"] = _case(session, 4, district="500103", category="tobacco", lead="tobacco", opened=aug)
    ids["tob2"] = _case(session, 5, district="500103", category="tobacco", lead="tobacco", opened=aug)
    ids["tob3"] = _case(session, 6, district="500103", category="tobacco", lead="tobacco", opened=sep)
    _close(session, ids["bar1"], dt.datetime(2025, 9, 3, 10, tzinfo=BJ))  # deadline 9-04: in time
    _close(session, ids["tob1"], dt.datetime(2025, 9, 20, 10, tzinfo=BJ))  # deadline 9-04: late
    store.transition(session, ids["tob2"], "dismissed", department=None, who=B, now=sep, reason="已核实为误报")
    session.commit()
    client.app.state.clock = lambda: dt.datetime(2025, 10, 1, 12, tzinfo=BJ)
    return ids


def _count(client, headers, href: str) -> int:  # noqa: ANN001
    r = client.get(href, headers=headers)
    assert r.status_code == 200
    return r.json()["numberMatched"]


@pytest.mark.parametrize("by", ["district", "department", "category"])
def test_report_numbers_equal_the_cases_behind_them(client, auth, ledger_cases, by: str) -> None:  # noqa: ANN001
    headers = auth()
    r = client.get("/v1/reports/cases", params={"by": by}, headers=headers)
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert sum(row["total"] for row in rows) == 6
    for row in rows:
        for measure in ("open", "overdue", "closed", "closed_in_time"):
            assert row[measure] == _count(client, headers, row["links"][measure]), (row["key"], measure)


def test_report_by_district_values(client, auth, ledger_cases) -> None:  # noqa: ANN001
    rows = {r["key"]: r for r in client.get("/v1/reports/cases", headers=auth()).json()["rows"]}
    guilin, cq = rows["450304"], rows["500103"]
    # on 2025-10-01: bar2 (due 10-01) is in time; the stall (due 9-08) is overdue; tob3 (due 10-01) in time
    assert (guilin["open"], guilin["overdue"], guilin["closed"], guilin["closed_in_time_pct"]) == (2, 1, 1, 100.0)
    assert (cq["open"], cq["overdue"], cq["closed"], cq["closed_in_time_pct"], cq["dismissed"]) == (1, 0, 1, 0.0, 1)
    trend = client.get("/v1/reports/cases", headers=auth()).json()["trend"]
    assert trend == [{"month": "2025-08", "opened": 3, "closed": 0}, {"month": "2025-09", "opened": 3, "closed": 2}]


def test_report_by_district_names_the_districts_on_record(client, session, auth, ledger_cases) -> None:  # noqa: ANN001
    from geoalchemy2.shape import from_shape
    from shapely.geometry import MultiPolygon, box

    from storage.models import District

    session.add(District(adcode="450304", name="象山区", level="county", parent_adcode="450300",
                         geom=from_shape(MultiPolygon([box(110.28, 25.20, 110.32, 25.26)]), srid=4326)))  # fmt: skip
    session.commit()
    rows = client.get("/v1/reports/cases", headers=auth()).json()["rows"]
    assert [(r["key"], r["name"], r["total"]) for r in rows] == [("450304", "象山区", 3), ("500103", None, 3)]
    r = client.get("/v1/reports/cases.xlsx", params={"by": "district"}, headers=auth())
    sheet = list(load_workbook(io.BytesIO(r.content))["by district"].values)
    assert sheet[0][:3] == ("district", "name 名称", "open 未销号")
    assert [row[:2] + row[-1:] for row in sheet[1:]] == [("450304", "象山区", 3), ("500103", None, 3)]


def test_report_paging_and_department_isolation(client, auth, ledger_cases) -> None:  # noqa: ANN001
    first = client.get("/v1/reports/cases", params={"by": "category", "limit": 2}, headers=auth()).json()
    assert [r["key"] for r in first["rows"]] == ["bar", "food_stall"]
    nxt = next(link["href"] for link in first["links"] if link["rel"] == "next")
    second = client.get(nxt, headers=auth()).json()
    assert [r["key"] for r in second["rows"]] == ["tobacco"]
    mine = client.get("/v1/reports/cases", params={"by": "category"}, headers=auth("tobacco")).json()
    assert [(r["key"], r["total"]) for r in mine["rows"]] == [("tobacco", 3)]
    assert client.get("/v1/reports/cases", headers=auth("viewer")).status_code == 403


def test_xlsx_export_has_the_same_numbers(client, auth, ledger_cases) -> None:  # noqa: ANN001
    r = client.get("/v1/reports/cases.xlsx", params={"by": "department"}, headers=auth())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(r.content))
    sheet = list(wb["by department"].values)
    assert sheet[0][0] == "department"
    got = {row[0]: row[1:] for row in sheet[1:]}
    assert got["tobacco"] == (1, 0, 1, 0, 0.0, 1, 3)
    assert got["culture_tourism"] == (1, 0, 1, 1, 100.0, 0, 2)
    assert list(wb["trend"].values)[1:] == [("2025-08", 3, 0), ("2025-09", 3, 2)]
