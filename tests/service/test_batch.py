"""Batch pre-checks: a job over many sites; a bad site fails alone; results as JSON and CSV."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import pytest

from service.importing import ImportOptions, import_osm
from service.worker import load_handlers, run_job
from tests.service.test_checks import _campus, _exact_u, point_outside


@pytest.fixture
def nanjing(session_factory, session, nanjing_osm: Path):  # noqa: ANN001, ANN201
    import_osm(session_factory, nanjing_osm, ImportOptions())
    load_handlers()
    return session


def _run(client, session_factory, headers, resp):  # noqa: ANN001, ANN202
    assert resp.status_code == 202, resp.text
    assert resp.headers["location"] == f"/v1/jobs/{resp.json()['job_id']}"
    job_id = uuid.UUID(resp.json()["job_id"])
    assert client.get(f"/v1/jobs/{job_id}", headers=headers).json()["status"] == "queued"
    run_job(session_factory, job_id)
    return client.get(f"/v1/jobs/{job_id}", headers=headers).json(), job_id


def test_json_batch_with_a_bad_site(nanjing, client, auth, session_factory) -> None:  # noqa: ANN001
    cid, outline = _campus(nanjing, "南京市第五中学")
    _exact_u(nanjing, cid)
    near, far = point_outside(outline, 120.0), point_outside(outline, 6000.0)
    h = auth("licensing_client")
    sites = [
        {"category": "internet_cafe", "location": {"lon": near.x, "lat": near.y}, "crs": "wgs84", "permit_id": "A"},
        {"category": "internet_cafe", "location": {"lon": far.x, "lat": far.y}, "crs": "wgs84", "permit_id": "B"},
        {"category": "internet_cafe", "location": {"lon": far.x, "lat": far.y}, "permit_id": "C"},
    ]
    job, job_id = _run(client, session_factory, h, client.post("/v1/checks/batch", json={"sites": sites}, headers=h))
    assert job["status"] == "done" and job["progress"] == 1.0
    items = job["result"]["items"]
    assert [i["permit_id"] for i in items] == ["A", "B", "C"]
    assert items[0]["outcome"] == "prohibited" and items[0]["school"] == "南京市第五中学"
    assert items[0]["distance_m"] == pytest.approx(120.0, abs=0.01)
    assert items[1]["outcome"] == "allowed" and items[1]["decision_id"]
    assert items[2]["error"]["field"] == "crs"
    assert job["result"]["counts"]["error"] == 1
    # every good site is a stored decision
    d = client.get(f"/v1/decisions/{items[0]['decision_id']}", headers=h).json()
    assert d["outcome"] == "prohibited"
    text_csv = client.get(f"/v1/jobs/{job_id}?format=csv", headers=h).text
    assert text_csv.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text_csv.lstrip("\ufeff"))))
    assert len(rows) == 4 and rows[1][3] == "prohibited" and "crs" in rows[3][8]


def test_csv_upload_batch(nanjing, client, auth, session_factory) -> None:  # noqa: ANN001
    cid, outline = _campus(nanjing, "南京市第五中学")
    _exact_u(nanjing, cid)
    near = point_outside(outline, 40.0)
    body = "许可证号,许可类别,场所名称,经度,纬度,坐标系\n"
    body += f"T1,烟草制品零售,甲店,{near.x},{near.y},wgs84\n"
    body += f"T2,体育彩票,乙店,{near.x},{near.y},wgs84\n"
    body += "T3,酒类零售,丙店,abc,32.0,wgs84\n"
    h = auth("tobacco")
    files = {"file": ("sites.csv", body.encode("gbk"), "text/csv")}
    job, _ = _run(client, session_factory, h, client.post("/v1/checks/batch", files=files, headers=h))
    items = job["result"]["items"]
    assert [i["row"] for i in items] == [2, 3, 4]
    assert "error" in items[2] and "location" in items[2]["error"]["field"]
    assert all("decision_id" in i for i in items[:2])


def test_batch_limits(client, auth) -> None:  # noqa: ANN001
    h = auth("admin")
    assert client.post("/v1/checks/batch", json={"sites": []}, headers=h).status_code == 422
    assert client.post("/v1/checks/batch", json={"nope": 1}, headers=h).json()["field"] == "sites"
    assert client.post("/v1/checks/batch", json={"sites": [{}]}, headers=auth("viewer")).status_code == 403
