"""The pre-check API on the real Nanjing extract: sites placed at exact distances from real campuses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pyproj import Geod
from shapely.geometry import Point, shape
from sqlalchemy import text

from geo.coords import point_from_wgs84
from geo.measure import distance_to_gates, distance_to_outline
from service.importing import ImportOptions, import_osm

GEOD = Geod(ellps="WGS84")
PROBLEM = "application/problem+json"


@pytest.fixture
def nanjing(session_factory, session, nanjing_osm: Path):  # noqa: ANN001, ANN201
    import_osm(session_factory, nanjing_osm, ImportOptions())
    return session


def _campus(session, name: str):  # noqa: ANN001, ANN202
    from shapely import wkb

    cid, geom = session.execute(
        text("SELECT c.id, ST_AsBinary(c.geom) FROM campuses c JOIN schools s ON s.id = c.school_id WHERE s.name = :n"),
        {"n": name},
    ).one()
    return cid, wkb.loads(bytes(geom))


def _exact_u(session, campus_id: int, accuracy: float = 0.0) -> None:  # noqa: ANN001
    session.execute(text("UPDATE campuses SET accuracy_m = :a WHERE id = :c"), {"a": accuracy, "c": campus_id})
    session.commit()


def point_outside(outline, d: float) -> Point:  # noqa: ANN001
    """A point exactly ``d`` metres (geodesic, reference method) outside the outline."""
    ring = outline.exterior if outline.geom_type == "Polygon" else max(outline.geoms, key=lambda g: g.area).exterior
    coords = list(ring.coords)
    for (x0, y0), (x1, y1) in zip(coords, coords[1:], strict=False):
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        az, _, length = GEOD.inv(x0, y0, x1, y1)
        if length < 20:
            continue
        for side in (90, -90):
            lon, lat, _ = GEOD.fwd(mx, my, az + side, d)
            p = Point(lon, lat)
            if outline.covers(p):
                continue
            got = distance_to_outline(p, outline).distance_m
            if abs(got - d) < 0.001:
                return p
    raise AssertionError(f"no edge of the outline admits a point at exactly {d} m")


def _check(client, headers, p: Point, category: str, **extra):  # noqa: ANN001, ANN202
    body = {"category": category, "location": {"lon": p.x, "lat": p.y}, "crs": "wgs84", **extra}
    r = client.post("/v1/checks", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _rule(answer, rule_id: str):  # noqa: ANN001, ANN202
    (rule,) = [r for r in answer["rules"] if r["rule_id"] == rule_id]
    return rule


@pytest.mark.parametrize(("d", "expected"), [(199.0, "prohibited"), (200.0, "prohibited"), (201.0, "allowed")])
def test_internet_cafe_at_the_200m_threshold(nanjing, client, auth, d: float, expected: str) -> None:  # noqa: ANN001
    cid, outline = _campus(nanjing, "南京市第五中学")
    _exact_u(nanjing, cid)
    site = point_outside(outline, d)
    answer = _check(client, auth("market_supervision"), site, "internet_cafe", date="2026-11-23")
    rule = _rule(answer, "internet_cafe.school")
    assert rule["u_m"] == 0
    assert rule["outcome"] == expected
    near = rule["nearest"]
    assert near["school_name"] == "南京市第五中学"
    assert near["distance_m"] == pytest.approx(distance_to_outline(site, outline).distance_m, abs=0.1)
    assert near["distance_m"] == pytest.approx(d, abs=0.01)
    assert near["margin_m"] == pytest.approx(d - 200, abs=0.01)
    assert rule["legal_basis"]["citation"] and rule["confirmed"] is False
    assert answer["outcome"] in (expected, "prohibited")
    assert answer["decision_id"] and answer["map_url"].endswith(answer["decision_id"])


@pytest.mark.parametrize(("d", "expected"), [(49.0, "prohibited"), (50.0, "prohibited"), (51.0, "allowed")])
def test_tobacco_measured_from_the_gate(nanjing, client, auth, d: float, expected: str) -> None:  # noqa: ANN001
    cid, outline = _campus(nanjing, "金陵中学")
    _exact_u(nanjing, cid)
    gx, gy, gid = nanjing.execute(
        text("SELECT ST_X(geom), ST_Y(geom), id FROM gates WHERE campus_id = :c AND name = '校门'"), {"c": cid}
    ).one()
    # walk away from the campus, d metres from the gate
    centre = outline.centroid
    az, _, _ = GEOD.inv(centre.x, centre.y, gx, gy)
    lon, lat, _ = GEOD.fwd(gx, gy, az, d)
    site = Point(lon, lat)
    gates = [
        Point(x, y)
        for x, y in nanjing.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM gates WHERE campus_id = :c"), {"c": cid})
    ]
    _, ref = distance_to_gates(site, gates)
    answer = _check(client, auth("tobacco"), site, "tobacco")
    rule = _rule(answer, "tobacco")
    assert rule["nearest"]["school_name"] == "金陵中学"
    assert rule["nearest"]["method"] == "gates"
    assert rule["nearest"]["distance_m"] == pytest.approx(ref.distance_m, abs=0.1)
    assert ref.distance_m == pytest.approx(d, abs=0.01), rule
    assert rule["nearest"]["outcome"] == expected, rule


def test_review_band_with_default_school_accuracy(nanjing, client, auth) -> None:  # noqa: ANN001
    _cid, outline = _campus(nanjing, "南京市第五中学")  # OSM outline: accuracy NULL → 5 m default
    h = auth("culture_tourism")
    outcomes = {}
    for d in (194.0, 196.0, 204.0, 206.0):
        answer = _check(client, h, point_outside(outline, d), "internet_cafe")
        rule = _rule(answer, "internet_cafe.school")
        assert rule["u_m"] == 5
        outcomes[d] = rule["outcome"]
    assert outcomes == {194.0: "prohibited", 196.0: "review", 204.0: "review", 206.0: "allowed"}


def test_kindergarten_rule_protects_the_kindergarten(nanjing, client, auth) -> None:  # noqa: ANN001
    cid, outline = _campus(nanjing, "五老村幼儿园")
    _exact_u(nanjing, cid)
    h = auth("culture_tourism")
    near = _rule(_check(client, h, point_outside(outline, 100.0), "internet_cafe"), "internet_cafe.kindergarten")
    far = _rule(_check(client, h, point_outside(outline, 101.0), "internet_cafe"), "internet_cafe.kindergarten")
    assert near["outcome"] == "prohibited" and near["nearest"]["school_name"] == "五老村幼儿园"
    assert far["outcome"] == "allowed"


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_shifted_input_is_converted_exactly(nanjing, client, auth, crs: str) -> None:  # noqa: ANN001
    _cid, outline = _campus(nanjing, "南京市第五中学")
    site = point_outside(outline, 150.0)
    x, y = point_from_wgs84(site.x, site.y, crs)
    r = client.post(
        "/v1/checks", json={"category": "bar", "location": {"lon": x, "lat": y}, "crs": crs}, headers=auth("admin")
    )
    stored = shape(r.json()["location"])
    assert GEOD.inv(stored.x, stored.y, site.x, site.y)[2] < 0.05
    rule = _rule(r.json(), "bar")
    assert rule["nearest"]["distance_m"] == pytest.approx(150.0, abs=0.05)
    gcj = client.post(
        "/v1/checks?out_crs=gcj02", json={"category": "bar", "location": {"lon": x, "lat": y}, "crs": crs},
        headers=auth("admin"),
    ).json()  # fmt: skip
    expect = point_from_wgs84(site.x, site.y, "gcj02")
    assert shape(gcj["location"]).distance(Point(expect)) < 1e-6


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        ({"category": "bar", "location": {"lon": 118.78, "lat": 32.04}}, "crs", None),
        ({"category": "bar", "location": {"lon": 118.78, "lat": 32.04}, "crs": "mars"}, "crs", "mars"),
        ({"category": "casino", "location": {"lon": 118.78, "lat": 32.04}, "crs": "wgs84"}, "category", "casino"),
        ({"category": "bar", "location": {"lon": 32.04, "lat": 118.78}, "crs": "wgs84"}, "location", None),
        ({"category": "bar", "location": {"lon": 190, "lat": 32.0}, "crs": "wgs84"}, "location", None),
        ({"category": "bar", "crs": "wgs84"}, None, None),
        (
            {"category": "bar", "location": {"lon": 118.78, "lat": 32.04}, "crs": "wgs84", "accuracy_m": -1},
            "accuracy_m",
            -1,
        ),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, auth, body, field, value) -> None:  # noqa: ANN001
    r = client.post("/v1/checks", json=body, headers=auth("licensing_client"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    if field:
        assert problem["field"] == field or problem["field"].startswith(field)
    if value is not None:
        assert problem["value"] == value
    assert problem["message_zh"] and problem["message_en"]


def test_nan_is_refused(client, auth) -> None:  # noqa: ANN001
    raw = '{"category": "bar", "location": {"lon": NaN, "lat": 32.0}, "crs": "wgs84"}'
    r = client.post("/v1/checks", content=raw, headers={**auth("admin"), "content-type": "application/json"})
    assert r.status_code == 422


def test_decision_is_stored_and_replayed_after_changes(nanjing, client, auth, session) -> None:  # noqa: ANN001
    cid, outline = _campus(nanjing, "南京市第五中学")
    _exact_u(nanjing, cid)
    h = auth("market_supervision")
    answer = _check(client, h, point_outside(outline, 150.0), "internet_cafe", date="2026-11-23")
    did = answer["decision_id"]
    stored = client.get(f"/v1/decisions/{did}", headers=h).json()
    assert stored["outcome"] == answer["outcome"] == "prohibited"
    assert stored["rules"] == answer["rules"]
    assert stored["inputs"]["crs"] == "wgs84"
    assert client.get(f"/v1/decisions/{did}/replay", headers=h).json()["unchanged"] is True
    # shrink the campus: its outline moves away from the site by about 100 m
    session.execute(
        text("UPDATE campuses SET geom = ST_Buffer(geom::geography, -60)::geometry WHERE id = :c"), {"c": cid}
    )
    session.commit()
    replay = client.get(f"/v1/decisions/{did}/replay", headers=h).json()
    assert replay["unchanged"] is False
    whats = {d["what"] for d in replay["differences"]}
    assert whats & {"distance_m", "nearest_school", "schools_within"}
    rule = _rule(replay["today"], "internet_cafe.school")
    fifth = [c for c in [rule["nearest"], *rule["within"]] if c and c["school_name"] == "南京市第五中学"]
    assert all(c["distance_m"] > 150 + 50 for c in fifth)
    assert _rule(replay["original"], "internet_cafe.school")["nearest"]["distance_m"] == pytest.approx(150, abs=0.01)


def test_replay_notices_a_moved_gate(nanjing, client, auth, session) -> None:  # noqa: ANN001
    cid, _ = _campus(nanjing, "金陵中学")
    _exact_u(nanjing, cid)
    gx, gy = nanjing.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM gates WHERE campus_id = :c AND name = '校门'"),
                             {"c": cid}).one()  # fmt: skip
    lon, lat, _ = GEOD.fwd(gx, gy, 180, 30)
    h = auth("tobacco")
    answer = _check(client, h, Point(lon, lat), "lottery")
    session.execute(text("UPDATE gates SET in_use = false WHERE campus_id = :c"), {"c": cid})
    session.commit()
    replay = client.get(f"/v1/decisions/{answer['decision_id']}/replay", headers=h).json()
    assert not replay["unchanged"]
    before = _rule(replay["original"], "lottery")
    after = _rule(replay["today"], "lottery")
    assert before["nearest"]["school_name"] == "金陵中学" and before["nearest"]["method"] == "gates"
    jinling = [c for c in [after["nearest"], *after["within"]] if c and c["school_name"] == "金陵中学"]
    assert jinling and "gate_unknown" in jinling[0]["flags"]
    assert {d["what"] for d in replay["differences"]} & {"distance_m", "outcome", "nearest_school", "u_m"}


def test_changing_a_pack_value_changes_the_answer_and_replay_says_so(
    nanjing, client, auth, app, tmp_path: Path
) -> None:  # noqa: ANN001
    cid, outline = _campus(nanjing, "南京市第五中学")
    _exact_u(nanjing, cid)
    h = auth("admin")
    answer = _check(client, h, point_outside(outline, 150.0), "bar")
    assert _rule(answer, "bar")["outcome"] == "prohibited"
    from storage.settings import PROJECT_ROOT

    rules_dir = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "data" / "rules", rules_dir)
    national = rules_dir / "national.yaml"
    content = national.read_text(encoding="utf-8")
    import re

    bar_block = re.search(r"- id: bar\n(?:.*\n)*?\s+distance_m: 200", content)
    assert bar_block, "the national pack has a bar rule at 200 m"
    national.write_text(content[: bar_block.start()] + bar_block.group(0)[:-3] + "120" + content[bar_block.end():],
                        encoding="utf-8")  # fmt: skip
    from geo.rules import RuleRegistry

    application, _ = app
    application.state.rules = RuleRegistry.load(rules_dir)
    again = _check(client, h, point_outside(outline, 150.0), "bar")
    assert _rule(again, "bar")["limit_m"] == 120 and _rule(again, "bar")["outcome"] == "allowed"
    replay = client.get(f"/v1/decisions/{answer['decision_id']}/replay", headers=h).json()
    whats = {d["what"] for d in replay["differences"]}
    assert {"outcome", "limit_m", "pack_version"} <= whats


def test_rules_in_force_by_place_and_district(nanjing, client, auth) -> None:  # noqa: ANN001
    h = auth("viewer")
    r = client.get("/v1/rules?district=450302", headers=h).json()
    ids = {x["rule_id"] if "rule_id" in x else x["id"] for x in r["rules"]}
    assert "food_stall.gate" in ids and "internet_cafe.school" in ids
    assert r["packs"][0] == "national" and r["pack_version"]
    beijing = client.get("/v1/rules?district=110101", headers=h).json()
    assert "food_stall.gate" not in {x["id"] for x in beijing["rules"]}
    nowhere = client.get("/v1/rules?lon=118.78&lat=32.04&crs=wgs84", headers=h).json()
    assert nowhere["flags"] == ["jurisdiction_unknown"]
    assert client.get("/v1/rules?lon=118.78&lat=32.04", headers=h).status_code == 422


@pytest.mark.parametrize(("district", "found"), [("450302", True), ("500103", False)])
def test_the_search_reaches_as_far_as_the_districts_own_rules(client, session, auth, district, found) -> None:  # noqa: ANN001
    """Food stalls: 100 m from a gate in Guilin, 50 m in Chongqing; campuses are searched within the largest
    limit + u + 300 m of the site's own district, whatever other packs say (a school 380 m away is the
    nearest in Guilin, and beyond the search in Chongqing)."""
    from geoalchemy2.shape import from_shape
    from shapely.geometry import MultiPolygon

    from storage.models import District
    from tests.factories import add_school, offset, square

    lon, lat = 110.30, 25.28
    outline = MultiPolygon([square(*offset(lon, lat, east_m=-3000, north_m=-3000), 6000)])
    session.add(District(adcode=district, name=district, level="county", parent_adcode=None,
                         geom=from_shape(outline, srid=4326)))  # fmt: skip
    gate = offset(lon, lat, east_m=380)
    add_school(session, name="远处小学", outline=square(*offset(lon, lat, east_m=380), 120), levels=["primary"],
               district=district, gates=[gate])  # fmt: skip
    session.commit()
    r = client.post(
        "/v1/checks",
        json={"category": "food_stall", "location": {"lon": lon, "lat": lat}, "crs": "wgs84"},
        headers=auth("market_supervision"),
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["district"] == district
    (rule,) = [x for x in answer["rules"] if x["rule_id"] == "food_stall.gate"]
    assert rule["outcome"] == "allowed" and rule["within"] == []
    if found:
        assert rule["nearest"]["school_name"] == "远处小学"
        assert rule["nearest"]["distance_m"] == pytest.approx(GEOD.inv(lon, lat, *gate)[2], abs=0.01)
    else:
        assert rule["nearest"] is None
