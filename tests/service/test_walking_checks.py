"""Walking rules (Guangdong, 粤文旅规〔2023〕1号): door to door along the stored street network."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyproj import Geod
from shapely import wkb
from shapely.geometry import Point, shape
from sqlalchemy import text

from geo.network import WalkingNetwork
from service.demo import load_demo

GEOD = Geod(ellps="WGS84")


@pytest.fixture
def city(session_factory, session, tmp_path: Path):  # noqa: ANN001, ANN201
    load_demo(session_factory, workdir=tmp_path / "demo", schools=40, premises=200, seed=11)
    return session


def test_entertainment_in_guangdong_is_measured_on_foot(city, client, auth) -> None:  # noqa: ANN001
    rows = city.execute(
        text(
            """SELECT s.name, c.id, ST_X(g.geom), ST_Y(g.geom), ST_X(ST_Centroid(c.geom)), ST_Y(ST_Centroid(c.geom))
               FROM schools s JOIN campuses c ON c.school_id = s.id JOIN gates g ON g.campus_id = c.id
               WHERE s.district_adcode LIKE '44%' AND g.in_use AND 'primary' = ANY(s.levels) ORDER BY s.id"""
        )
    ).all()
    assert rows, "the demo city has a primary school with a gate in Guangdong"
    name, _cid, gx, gy, cx, cy = rows[0]
    az, _, _ = GEOD.inv(cx, cy, gx, gy)
    lon, lat, _ = GEOD.fwd(gx, gy, az, 150.0)
    site = Point(lon, lat)
    r = client.post(
        "/v1/checks",
        json={"category": "entertainment", "location": {"lon": lon, "lat": lat}, "crs": "wgs84"},
        headers=auth("culture_tourism"),
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert "440000" in answer["packs"]
    (rule,) = [x for x in answer["rules"] if x["rule_id"] == "entertainment.school"]
    assert rule["metric"] == "walking" and rule["measure_from"] == "gates"
    near = [c for c in [rule["nearest"], *rule["within"]] if c and c["school_name"] == name]
    assert near, rule
    walk = near[0]
    assert walk["method"] == "walking" and "network_unavailable" not in walk["flags"]
    straight = GEOD.inv(walk["from"]["coordinates"][0], walk["from"]["coordinates"][1], lon, lat)[2]
    assert walk["distance_m"] >= straight - 1e-6
    path = shape(walk["path"])
    assert GEOD.geometry_length(path) == pytest.approx(walk["distance_m"], abs=0.01)
    # the same walk on the whole stored network (not just the part near the site)
    edges = [
        (u, v, wkb.loads(bytes(g)))
        for u, v, g in city.execute(text("SELECT u, v, ST_AsBinary(geom) FROM street_edges"))
    ]
    whole = WalkingNetwork.from_edges(edges).distance(Point(walk["from"]["coordinates"]), site)
    assert whole is not None and whole.distance_m == pytest.approx(walk["distance_m"], abs=0.01)
