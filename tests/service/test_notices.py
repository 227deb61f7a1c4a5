"""The decision notice (告知书) page and the "where may it open" answer and page, on hand-made schools.

A primary school (a 100 m square with two gates) and a kindergarten (no gate) in a square 秀峰区
(450302, Guilin pack). Sites are placed at exact geodesic distances east of the primary school.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, shape

from geo.maps import external_urls
from storage.models import District
from tests.factories import add_school, offset, square

LON, LAT = 110.27, 25.28  # south-west corner of the primary school
PROBLEM = "application/problem+json"


@pytest.fixture
def town(session):  # noqa: ANN001, ANN201
    sw = offset(LON, LAT, east_m=-1500, north_m=-1500)
    session.add(District(adcode="450302", name="秀峰区", level="county", parent_adcode=None,
                         geom=from_shape(MultiPolygon([square(*sw, 3100)]), srid=4326)))  # fmt: skip
    gates = [offset(LON, LAT, east_m=100, north_m=50), offset(LON, LAT, east_m=50)]
    add_school(session, name="秀峰第一小学", outline=square(LON, LAT, 100), levels=["primary"], district="450302",
               gates=gates)  # fmt: skip
    kg = offset(LON, LAT, north_m=-900)
    add_school(session, name="阳光幼儿园", outline=square(*kg, 40), levels=["kindergarten"], district="450302")
    session.commit()
    return session


def _east(d: float) -> Point:
    """A site ``d`` metres due east of the primary school's east edge (mid-height)."""
    return Point(*offset(*offset(LON, LAT, north_m=50), east_m=100 + d))


def _check(client, headers, p: Point, category: str = "internet_cafe", **extra):  # noqa: ANN001, ANN202
    body = {"category": category, "location": {"lon": p.x, "lat": p.y}, "crs": "wgs84", "name": "星海网吧", **extra}
    r = client.post("/v1/checks", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_decision_notice_names_site_school_distance_rule_basis_and_outcome(town, client, auth) -> None:  # noqa: ANN001
    headers = auth("market_supervision")
    answer = _check(client, headers, _east(150.0), permit_id="GL-2026-001")
    assert answer["outcome"] == "prohibited"
    (rule,) = [r for r in answer["rules"] if r["rule_id"] == "internet_cafe.school"]
    token = headers["Authorization"].removeprefix("Bearer ")
    r = client.get(f"{answer['map_url']}?token={quote(token)}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "学生安全区域许可前置核查告知书" in page
    assert '核查结论：<span class="notice-outcome">禁止</span>' in page
    assert "秀峰第一小学" in page and "星海网吧" in page and "GL-2026-001" in page and "秀峰区" in page
    assert rule["nearest"]["distance_m"] == pytest.approx(150.0, abs=0.01) and "150.0 米" in page
    assert rule["legal_basis"]["text"] in page and rule["legal_basis"]["citation"] in page
    assert ("距离取值待主管部门确认" in page) is (not rule["confirmed"])
    assert answer["decision_id"] in page and answer["pack_version"] in page
    assert "@page { size: A4; margin: 10mm; }" in page
    assert external_urls(page) == []
    assert "/tiles/streets/" in page  # the streets basemap, for a role that may read maps
    # the measured line from the school's outline to the site
    to = rule["nearest"]["to"]["coordinates"]
    assert f"[{to[1]}, {to[0]}]" in page

    en = client.get(f"{answer['map_url']}?token={quote(token)}&lang=en").text
    assert "Student safety zone pre-check notice" in en and "Prohibited" in en and "150.0 m" in en


def test_decision_notice_of_an_allowed_site_and_who_may_read_it(town, client, auth) -> None:  # noqa: ANN001
    client_headers = auth("licensing_client")
    answer = _check(client, client_headers, _east(400.0))
    assert answer["outcome"] == "allowed"
    page = client.get(answer["map_url"], headers=client_headers)
    assert page.status_code == 200
    assert '<span class="notice-outcome">允许</span>' in page.text and "400.0 米" in page.text
    assert "/tiles/" not in page.text  # licensing clients may not read map tiles: no basemap, no failed request
    assert client.get(answer["map_url"], headers=auth("viewer")).status_code == 403
    assert client.get(answer["map_url"]).status_code == 401
    missing = client.get("/maps/decisions/00000000-0000-0000-0000-000000000000", headers=client_headers)
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


def _kinds(body: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in body["features"]:
        out.setdefault(f["properties"]["kind"], []).append(f)
    return out


def test_open_areas_allowed_zone_and_band_around_a_school(town, client, auth) -> None:  # noqa: ANN001
    r = client.get("/v1/open-areas?category=internet_cafe&district=450302", headers=auth("licensing_client"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert "秀峰第一小学" not in r.text and "阳光幼儿园" not in r.text  # public-safe: zones only
    assert body["district"] == {"adcode": "450302", "name": "秀峰区"} and body["application"] == "new"
    kinds = _kinds(body)
    zones = {f["properties"]["rule_id"]: f for f in kinds["zone"]}
    assert set(zones) == {"internet_cafe.school", "internet_cafe.kindergarten"}
    assert zones["internet_cafe.school"]["properties"]["distance_m"] == 200
    allowed, band = shape(kinds["allowed"][0]["geometry"]), shape(kinds["review_band"][0]["geometry"])
    school_zone = shape(zones["internet_cafe.school"]["geometry"])
    # u = 5 m (the default school accuracy): prohibited up to 195 m, review to 205 m, allowed beyond
    for d, inside in ((150, "zone"), (194, "zone"), (196, "band"), (204, "band"), (206, "allowed"), (600, "allowed")):
        p = _east(d)
        assert (inside == "allowed") is allowed.contains(p), d
        assert (inside == "band") is band.contains(p), d
        assert (inside == "zone") is (school_zone.contains(p) and not band.contains(p)), d
    # a site given with 20 m accuracy widens the band to 175–225 m
    wide = _kinds(client.get("/v1/open-areas?category=internet_cafe&district=450302&accuracy_m=20",
                             headers=auth("viewer")).json())  # fmt: skip
    assert shape(wide["review_band"][0]["geometry"]).contains(_east(180))
    assert not shape(wide["allowed"][0]["geometry"]).contains(_east(220))


def test_tobacco_zone_from_gates_and_a_school_without_gates_is_review(town, client, auth) -> None:  # noqa: ANN001
    body = client.get("/v1/open-areas?category=tobacco&district=450302", headers=auth("tobacco")).json()
    kinds = _kinds(body)
    (zone,) = kinds["zone"]
    assert zone["properties"]["measure_from"] == "gates" and zone["properties"]["gate_unknown"] == 1
    assert "gate_unknown" in body["flags"]
    band, allowed = shape(kinds["review_band"][0]["geometry"]), shape(kinds["allowed"][0]["geometry"])
    east_gate = Point(*offset(LON, LAT, east_m=100, north_m=50))
    near_gate = Point(*offset(east_gate.x, east_gate.y, east_m=30))
    assert shape(zone["geometry"]).contains(near_gate) and not band.contains(near_gate)
    # 30 m east of the school's north-east corner is 50+ m from both gates: allowed
    corner = Point(*offset(*offset(LON, LAT, north_m=100), east_m=130))
    assert allowed.contains(corner)
    # the kindergarten has no gate: its whole zone (to the outline) can only be review, never prohibited
    kg_near = Point(*offset(*offset(LON, LAT, north_m=-900), east_m=60))
    assert band.contains(kg_near) and not allowed.contains(kg_near)
    assert _check(client, auth("tobacco"), kg_near, "tobacco")["outcome"] == "review"
    assert _check(client, auth("tobacco"), near_gate, "tobacco")["outcome"] == "prohibited"


def test_open_areas_errors_and_the_open_page(town, client, auth) -> None:  # noqa: ANN001
    h = auth("licensing_client")
    missing = client.get("/v1/open-areas?category=internet_cafe&district=450399", headers=h)
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    polluter = client.get("/v1/open-areas?category=polluter&district=450302", headers=h)
    assert polluter.status_code == 422 and polluter.json()["field"] == "protection_distance_m"
    assert client.get("/v1/open-areas?category=internet_cafe&district=450302").status_code == 401

    page = client.get("/maps/open?category=internet_cafe&district=450302", headers=h)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "可新设网吧的区域 · 秀峰区" in page.text and "需复核带" in page.text
    assert "秀峰第一小学" not in page.text and "阳光幼儿园" not in page.text
    assert external_urls(page.text) == [] and "/tiles/" not in page.text
    viewer = client.get("/maps/open?category=internet_cafe&district=450302&lang=en", headers=auth("viewer"))
    assert "Where a new Internet café may open" in viewer.text and "/tiles/streets/" in viewer.text
