"""Hardening: audit trail, idempotency keys, body and rate limits, request ids and JSON logs, metrics, and
bad input everywhere answered with a 4xx problem+json naming the field (never a 500, never a write)."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import text

from service.middleware import JsonFormatter, OpsSettings
from tests.factories import add_school, offset, square

PROBLEM = "application/problem+json"
SW = (118.7700, 32.0300)  # Nanjing


@pytest.fixture
def school(session):  # noqa: ANN001, ANN201
    """A primary school with a 100 m square campus; a site 50 m east of it is inside every 200 m zone."""
    s = add_school(session, name="审计小学", outline=square(*SW, 100), levels=["primary"])
    session.commit()
    return s


def _site(east_m: float = 150.0) -> dict[str, float]:
    lon, lat = offset(*SW, east_m=east_m, north_m=50)
    return {"lon": lon, "lat": lat}


def _check_body(**kw: object) -> dict[str, object]:
    return {"category": "internet_cafe", "application": "new", "location": _site(), "crs": "wgs84", **kw}


def _count(session, sql: str, **params: object) -> int:  # noqa: ANN001
    return int(session.execute(text(sql), params).scalar() or 0)


# --- audit --------------------------------------------------------------------------------------------------


def test_a_check_is_audited_with_who_what_when_and_where(client, auth, school) -> None:  # noqa: ANN001
    checker = auth("market_supervision", name="市场监管-张三")
    r = client.post("/v1/checks", json=_check_body(), headers={**checker, "X-Request-ID": "req-42"})
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "prohibited"
    assert r.json()["rules"][0]["nearest"]["school_name"] == "审计小学"
    decision = r.json()["decision_id"]

    log = client.get("/v1/audit", params={"object_id": decision}, headers=auth("admin"))
    assert log.status_code == 200, log.text
    (entry,) = log.json()["entries"]
    assert entry["token"]["name"] == "市场监管-张三"
    assert entry["token"]["role"] == "market_supervision"
    assert (entry["method"], entry["path"], entry["route"], entry["status"]) == (
        "POST",
        "/v1/checks",
        "/v1/checks",
        200,
    )
    assert entry["object_ids"]["decision_id"] == decision
    assert entry["client"] == "testclient"
    assert entry["request_id"] == "req-42"
    assert entry["at"] and entry["duration_ms"] >= 0


def test_refused_writes_are_audited_and_reads_are_not(client, auth, school) -> None:  # noqa: ANN001
    viewer = auth("viewer", name="只读用户")
    assert client.post("/v1/checks", json=_check_body(), headers=viewer).status_code == 403
    assert client.get("/v1/districts", headers=viewer).status_code == 200
    entries = client.get("/v1/audit", params={"role": "viewer"}, headers=auth("admin")).json()["entries"]
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [("POST", "/v1/checks", 403)]


def test_audit_pages_newest_first_and_filters(client, auth, school) -> None:  # noqa: ANN001
    checker = auth("tobacco", name="烟草-李四")
    ids = [client.post("/v1/checks", json=_check_body(), headers=checker).json()["decision_id"] for _ in range(3)]
    admin = auth("admin")
    first = client.get("/v1/audit", params={"limit": 2, "path": "/v1/checks", "role": "tobacco"}, headers=admin)
    page1 = first.json()
    assert [e["object_ids"]["decision_id"] for e in page1["entries"]] == ids[::-1][:2]
    nxt = next(link["href"] for link in page1["links"] if link["rel"] == "next")
    page2 = client.get(nxt, headers=admin).json()
    assert [e["object_ids"]["decision_id"] for e in page2["entries"]] == [ids[0]]
    assert not [link for link in page2["links"] if link["rel"] == "next"]
    assert client.get("/v1/audit", params={"status": 500}, headers=admin).json()["entries"] == []


# --- idempotency --------------------------------------------------------------------------------------------


def test_a_retried_check_returns_the_first_answer_and_stores_one_decision(client, auth, session, school) -> None:  # noqa: ANN001
    headers = {**auth("licensing_client"), "Idempotency-Key": "permit-2026-0001"}
    before = _count(session, "SELECT count(*) FROM decisions")
    first = client.post("/v1/checks", json=_check_body(), headers=headers)
    again = client.post("/v1/checks", json=_check_body(), headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert _count(session, "SELECT count(*) FROM decisions") == before + 1

    other = client.post("/v1/checks", json=_check_body(category="bar"), headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"].startswith(PROBLEM)
    assert other.json()["field"] == "Idempotency-Key"
    assert "幂等键" in other.json()["message_zh"]
    assert _count(session, "SELECT count(*) FROM decisions") == before + 1

    fresh = client.post("/v1/checks", json=_check_body(), headers={**headers, "Idempotency-Key": "permit-2026-0002"})
    assert fresh.json()["decision_id"] != first.json()["decision_id"]


def test_keys_are_per_token(client, auth, school) -> None:  # noqa: ANN001
    a = client.post("/v1/checks", json=_check_body(), headers={**auth("tobacco"), "Idempotency-Key": "k1"})
    b = client.post("/v1/checks", json=_check_body(), headers={**auth("tobacco"), "Idempotency-Key": "k1"})
    assert a.json()["decision_id"] != b.json()["decision_id"]


def test_a_failed_check_does_not_burn_its_key(client, auth, school) -> None:  # noqa: ANN001
    headers = {**auth("tobacco"), "Idempotency-Key": "retry-me"}
    bad = client.post("/v1/checks", json=_check_body(location={"lon": 118.77, "lat": 95.0}), headers=headers)
    assert bad.status_code == 422
    good = client.post("/v1/checks", json=_check_body(location={"lon": 118.77, "lat": 95.0}), headers=headers)
    assert good.status_code == 422 and "idempotent-replayed" not in good.headers


def test_a_retried_batch_enqueues_one_job(client, auth, session, school) -> None:  # noqa: ANN001
    headers = {**auth("licensing_client"), "Idempotency-Key": "night-batch-1"}
    body = {"sites": [_check_body(), _check_body(category="bar")]}
    before = _count(session, "SELECT count(*) FROM jobs WHERE kind = 'batch_check'")
    first = client.post("/v1/checks/batch", json=body, headers=headers)
    again = client.post("/v1/checks/batch", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"]
    assert again.headers["location"] == f"/v1/jobs/{first.json()['job_id']}"
    assert _count(session, "SELECT count(*) FROM jobs WHERE kind = 'batch_check'") == before + 1


PERMITS_CSV = (
    "permit_id,category,name,address,uscc,lon,lat,crs,issued,expires,status\n"
    "XK-901,烟草制品零售,便民烟酒店,中山路1号,,118.7790,32.0410,wgs84,2019-05-01,2027-04-30,有效\n"
)


def test_a_retried_import_returns_the_first_summary(client, auth, session) -> None:  # noqa: ANN001
    headers = {**auth("admin"), "Idempotency-Key": "permits-2026-11-25"}
    files = {"file": ("permits.csv", PERMITS_CSV.encode(), "text/csv")}
    first = client.post("/v1/imports/permits", files=files, headers=headers)
    assert first.status_code == 200, first.text
    batches = _count(session, "SELECT count(*) FROM import_batches")
    again = client.post("/v1/imports/permits", files=files, headers=headers)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert _count(session, "SELECT count(*) FROM import_batches") == batches
    assert _count(session, "SELECT count(*) FROM permits WHERE permit_id = 'XK-901'") == 1
    changed = {"file": ("permits.csv", PERMITS_CSV.replace("XK-901", "XK-902").encode(), "text/csv")}
    assert client.post("/v1/imports/permits", files=changed, headers=headers).status_code == 422


# --- limits -------------------------------------------------------------------------------------------------


def test_an_oversized_body_is_413_before_it_is_read(client, auth, session) -> None:  # noqa: ANN001
    client.app.state.ops = OpsSettings(max_body_mb=0.01)  # 10 KiB
    big = PERMITS_CSV + "\n".join(f"XK-{i},烟草制品零售,店{i},路,,118.78,32.04,wgs84,,,有效" for i in range(1000))
    r = client.post("/v1/imports/permits", files={"file": ("p.csv", big.encode(), "text/csv")}, headers=auth("admin"))
    assert r.status_code == 413
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "请求体超过上限" in r.json()["message_zh"]
    assert _count(session, "SELECT count(*) FROM permits WHERE permit_id = 'XK-5'") == 0
    chunked = client.post(
        "/v1/checks",
        content=iter([b"{" + b" " * 20000 + b"}"]),
        headers={**auth("tobacco"), "Content-Type": "application/json"},
    )
    assert chunked.status_code == 413


def test_a_token_over_its_rate_is_429_with_retry_after(client, auth) -> None:  # noqa: ANN001
    client.app.state.ops = OpsSettings(rate_limit_per_min=3)
    busy, calm = auth("viewer"), auth("viewer")
    codes = [client.get("/v1/districts", headers=busy).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = client.get("/v1/districts", headers=busy)
    assert r.status_code == 429
    assert r.headers["content-type"].startswith(PROBLEM)
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.json()["limit"] == 3 and "每分钟" in r.json()["message_zh"]
    assert client.get("/v1/districts", headers=calm).status_code == 200
    assert client.get("/health").status_code == 200  # never limited


# --- request ids, logs, metrics -----------------------------------------------------------------------------


def test_request_ids_go_in_and_out_and_on_the_json_log_line(client, auth, caplog) -> None:  # noqa: ANN001
    with caplog.at_level(logging.INFO, logger="safezone.access"):
        r = client.get("/v1/districts", headers={**auth("viewer"), "X-Request-ID": "abc-123"})
        made = client.get("/health")
    assert r.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32
    record = next(rec for rec in caplog.records if getattr(rec, "request_id", None) == "abc-123")
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "abc-123"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/v1/districts", 200)
    assert line["level"] == "INFO" and line["duration_ms"] >= 0 and line["token_id"] > 0
    evil = client.get("/health", headers={"X-Request-ID": "a b;" * 30})
    assert evil.headers["x-request-id"] != "a b;" * 30


def test_metrics_count_requests_checks_and_read_the_database(client, auth, school) -> None:  # noqa: ANN001
    client.post("/v1/checks", json=_check_body(), headers=auth("tobacco"))
    client.post("/v1/checks", json=_check_body(location=_site(east_m=900)), headers=auth("tobacco"))
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    body = r.text
    assert 'safezone_check_outcomes_total{category="internet_cafe",outcome="prohibited"} 1.0' in body
    assert 'safezone_check_outcomes_total{category="internet_cafe",outcome="allowed"} 1.0' in body
    assert 'safezone_http_requests_total{method="POST",route="/v1/checks",status="200"} 2.0' in body
    assert 'safezone_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/v1/checks"} 2.0' in body
    assert 'safezone_db_pool_connections{state="size"}' in body
    assert "safezone_db_up 1.0" in body
    assert "safezone_job_queue_depth" in body and "safezone_scan_duration_seconds" in body


# --- bad input: a clear 4xx naming the field, never a 500 ---------------------------------------------------

BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[118.77, 32.03], [118.78, 32.04], [118.78, 32.03], [118.77, 32.04], [118.77, 32.03]]],
}  # noqa: E501
BAD_CHECKS = {
    "latitude out of range": (_check_body(location={"lon": 118.77, "lat": 91.0}), "location"),
    "longitude out of range": (_check_body(location={"lon": 181.0, "lat": 32.0}), "location"),
    "swapped lat/lon": (_check_body(location={"lon": 32.04, "lat": 118.78}), "location"),
    "unknown crs": (_check_body(crs="epsg:3857"), "crs"),
    "missing crs": ({k: v for k, v in _check_body().items() if k != "crs"}, "crs"),
    "self-intersecting polygon": (
        {k: v for k, v in _check_body(geometry=BOWTIE).items() if k != "location"},
        "geometry",
    ),
    "empty geometry": (
        {k: v for k, v in _check_body(geometry={"type": "Polygon", "coordinates": []}).items() if k != "location"},
        "geometry",
    ),
    "garbage geometry": (
        {k: v for k, v in _check_body(geometry={"type": "Blob", "coordinates": 7}).items() if k != "location"},
        "geometry",
    ),
    "unknown category": (_check_body(category="casino"), "category"),
    "negative accuracy": (_check_body(accuracy_m=-1), "accuracy_m"),
    "string coordinates": (_check_body(location={"lon": "east", "lat": 32.0}), "location.lon"),
}


@pytest.mark.parametrize("case", list(BAD_CHECKS), ids=list(BAD_CHECKS))
def test_bad_checks_are_422_naming_the_field_and_write_nothing(client, auth, session, case) -> None:  # noqa: ANN001
    body, field = BAD_CHECKS[case]
    before = _count(session, "SELECT count(*) FROM decisions")
    r = client.post("/v1/checks", json=body, headers=auth("tobacco"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    problem = r.json()
    assert problem["field"].startswith(field), problem
    assert problem["message_en"] and problem["message_zh"] and problem["message_zh"] != problem["message_en"]
    assert _count(session, "SELECT count(*) FROM decisions") == before


RAW_BODIES = {
    "NaN": b'{"category": "bar", "location": {"lon": NaN, "lat": 32.0}, "crs": "wgs84"}',
    "Infinity": b'{"category": "bar", "location": {"lon": 118.7, "lat": Infinity}, "crs": "wgs84"}',
    "malformed JSON": b'{"category": "bar", "location": {',
    "GBK bytes": '{"category": "bar", "name": "网吧", "location": {"lon": 118.7, "lat": 32.0}, "crs": "wgs84"}'.encode(
        "gbk"
    ),
    "empty body": b"",
    "a JSON list": b"[1, 2]",
}


@pytest.mark.parametrize("case", list(RAW_BODIES), ids=list(RAW_BODIES))
def test_undecodable_bodies_are_4xx_problems(client, auth, case) -> None:  # noqa: ANN001
    r = client.post(
        "/v1/checks", content=RAW_BODIES[case], headers={**auth("tobacco"), "Content-Type": "application/json"}
    )
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["message_zh"] and r.json()["message_en"]


BAD_FILES = {
    "empty file": (b"", "permits.csv"),
    "header only": (PERMITS_CSV.splitlines()[0].encode(), "permits.csv"),
    "duplicate ids": ((PERMITS_CSV + PERMITS_CSV.splitlines()[1] + "\n").encode(), "permits.csv"),
    "binary junk": (bytes(range(256)) * 4, "permits.csv"),
    "not an xlsx": (b"PK\x03\x04 not really a zip", "permits.xlsx"),
    "wrong suffix": (PERMITS_CSV.encode(), "permits.txt"),
}


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
def test_bad_import_files_are_rejected_whole_with_a_problem(client, auth, session, case) -> None:  # noqa: ANN001
    content, name = BAD_FILES[case]
    before = _count(session, "SELECT count(*) FROM permits")
    r = client.post("/v1/imports/permits", files={"file": (name, content, "text/csv")}, headers=auth("admin"))
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["message_zh"] and r.json()["message_en"]
    assert _count(session, "SELECT count(*) FROM permits") == before


BAD_QUERIES = [
    ("/v1/schools", {"bbox": "1,2,3"}, "bbox"),
    ("/v1/schools", {"bbox": "nan,0,1,1"}, "bbox"),
    ("/v1/premises", {"bbox": "118.8,32.0,118.7,32.1"}, "bbox"),
    ("/v1/premises", {"limit": "0"}, "limit"),
    ("/v1/districts", {"limit": "100000"}, "limit"),
    ("/v1/rules", {"lon": "118.7", "lat": "32.0"}, "crs"),
    ("/v1/rules", {"lon": "118.7", "lat": "32.0", "crs": "mars"}, "crs"),
    ("/v1/rules", {"lon": "inf", "lat": "32.0", "crs": "wgs84"}, "lon"),
    ("/v1/rules", {"district": "12ab56"}, "district"),
    ("/v1/jobs/not-a-uuid", {}, "job_id"),
    ("/v1/decisions/123", {}, "decision_id"),
    ("/v1/schools", {"out_crs": "mercator"}, "out_crs"),
]


@pytest.mark.parametrize(("path", "params", "field"), BAD_QUERIES)
def test_bad_query_parameters_are_422_naming_the_field(client, auth, path, params, field) -> None:  # noqa: ANN001
    r = client.get(path, params=params, headers=auth("admin"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["field"] == field
    assert r.json()["message_zh"]
