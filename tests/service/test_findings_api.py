"""Scans over HTTP: the job, the scan, its findings (GeoJSON, CSV, XLSX), filters, paging, diff, warnings."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

from openpyxl import load_workbook

from service.worker import run_job
from tests.factories import add_premises, add_school, offset, square

LON, LAT = 110.2906, 25.2736  # Guilin, 秀峰区


def _city(session):  # noqa: ANN001, ANN202
    gate = offset(LON, LAT, east_m=50)
    school = add_school(
        session, name="解放路小学", outline=square(LON, LAT, 100), levels=["primary"], district="450302",
        gates=[gate], accuracy_m=0.0,
    )  # fmt: skip
    school.campuses[0].accuracy_m = 0.0
    at = offset(*gate, north_m=-30)
    shop = add_premises(
        session, name="便民烟酒店", lon=at[0], lat=at[1], district="450302",
        permits=[{"category": "tobacco", "issued": dt.date(2024, 1, 1)},
                 {"category": "alcohol", "issued": dt.date(2019, 1, 1), "expires": dt.date(2030, 1, 1)}],
    )  # fmt: skip
    stall = add_premises(
        session, name="校门口摊区", lon=at[0], lat=at[1], district="450302",
        permits=[{"category": "food_stall", "issued": dt.date(2020, 1, 1)}],
    )  # fmt: skip
    cafe = add_premises(session, name="黑网吧", lon=at[0], lat=at[1], district="450302", categories=["internet_cafe"])
    session.commit()
    return school, shop, stall, cafe


def _run_scan(client, session_factory, headers) -> int:  # noqa: ANN001
    r = client.post("/v1/scans", headers=headers, json={})
    assert r.status_code == 202 and r.headers["location"] == f"/v1/jobs/{r.json()['job_id']}"
    run_job(session_factory, uuid.UUID(r.json()["job_id"]))
    job = client.get(r.headers["location"], headers=headers).json()
    assert job["status"] == "done", job
    return job["result"]["scan_id"]


def test_scan_job_findings_and_filters(client, session, session_factory, auth) -> None:  # noqa: ANN001
    school, shop, stall, cafe = _city(session)
    assert client.post("/v1/scans", headers=auth("viewer"), json={}).status_code == 403
    h = auth("education")
    scan_id = _run_scan(client, session_factory, h)

    scan = client.get(f"/v1/scans/{scan_id}", headers=h).json()
    assert scan["status"] == "done" and scan["counts"]["by_status"]["violation"] >= 2

    r = client.get("/v1/findings", headers=h)
    assert r.status_code == 200 and r.json()["type"] == "FeatureCollection" and r.json()["scan_id"] == scan_id
    got = {
        (f["properties"]["premises_name"], f["properties"]["rule_id"]): f["properties"] for f in r.json()["features"]
    }
    assert got[("便民烟酒店", "tobacco")]["status"] == "violation"
    assert got[("便民烟酒店", "tobacco")]["distance_m"] == 30.0
    assert got[("便民烟酒店", "alcohol")]["status"] == "nonconforming"
    assert got[("便民烟酒店", "alcohol")]["due_date"] == "2030-01-01"
    assert got[("校门口摊区", "food_stall.gate")]["status"] == "violation"  # Guilin: existing prohibited
    assert got[("校门口摊区", "food_stall.gate")]["lead_department"] == "campus_environment_group"
    assert got[("黑网吧", "internet_cafe.school")]["status"] == "unlicensed"
    assert all(p["school_name"] == "解放路小学" for p in got.values())

    def names(**q) -> set[tuple[str, str]]:  # noqa: ANN003
        feats = client.get("/v1/findings", headers=h, params=q).json()["features"]
        return {(f["properties"]["premises_name"], f["properties"]["rule_id"]) for f in feats}

    assert names(status="unlicensed") == {("黑网吧", "internet_cafe.school")}
    assert names(category="alcohol") == {("便民烟酒店", "alcohol")}
    assert names(rule="food_stall.gate") == {("校门口摊区", "food_stall.gate")}
    assert names(department="campus_environment_group") == {("校门口摊区", "food_stall.gate")}
    assert names(district="450300") == set(got) and names(district="500000") == set()
    assert names(school=school.id) == set(got)

    page = client.get("/v1/findings", headers=h, params={"limit": 2}).json()
    assert len(page["features"]) == 2
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    rest = client.get(nxt, headers=h).json()["features"]
    assert {f["id"] for f in rest}.isdisjoint({f["id"] for f in page["features"]}) and len(rest) == len(got) - 2

    assert client.get("/v1/findings", headers=auth("viewer")).status_code == 403


def test_csv_xlsx_diff_and_warnings(client, session, session_factory, auth) -> None:  # noqa: ANN001
    school, *_ = _city(session)
    h = auth("market_supervision")
    first = _run_scan(client, session_factory, h)

    r = client.get("/v1/findings", headers=h, params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["编号 finding id", "状态 status", "类别 category"]
    assert {row[5] for row in rows[1:]} == {"便民烟酒店", "校门口摊区", "黑网吧"}

    r = client.get("/v1/findings", headers=h, params={"format": "xlsx", "status": "violation"})
    sheet = load_workbook(io.BytesIO(r.content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][1] == "状态 status" and {v[1] for v in values[1:]} == {"violation"}

    at = offset(*offset(LON, LAT, east_m=50), north_m=-20)
    add_premises(session, name="新开彩票店", lon=at[0], lat=at[1], district="450302",
                 permits=[{"category": "lottery", "issued": dt.date(2025, 1, 1)}])  # fmt: skip
    session.commit()
    second = _run_scan(client, session_factory, h)
    diff = client.get(f"/v1/scans/{second}/diff", headers=h).json()
    assert diff["previous_scan"] == first and diff["disappeared"] == []
    assert [(f["properties"]["premises_name"], f["properties"]["rule_id"]) for f in diff["appeared"]] == [
        ("新开彩票店", "lottery")
    ]

    warned = client.get(f"/v1/schools/{school.id}/warnings", headers=auth("education")).json()["warnings"]
    assert warned[0]["scan_id"] == second and warned[0]["finding"]["properties"]["premises_name"] == "新开彩票店"
    assert len([w for w in warned if w["scan_id"] == first]) == 4
