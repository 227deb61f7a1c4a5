"""OGC API – Features over HTTP: landing page, conformance, collections, items with bbox and paging, access."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

from shapely.geometry import Point, shape

from tests.factories import add_premises, add_school, offset, square

LON, LAT = 110.2906, 25.2736  # Guilin, 秀峰区
CONFORMANCE = {
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
}


def _city(session):  # noqa: ANN001, ANN202
    """A primary school (100 m square, gate mid-south) and premises east of it at 30, 150, 400 and 1,200 m."""
    gate = offset(LON, LAT, east_m=50)
    school = add_school(
        session, name="解放路小学", outline=square(LON, LAT, 100), levels=["primary"], district="450302",
        gates=[gate], accuracy_m=0.0,
    )  # fmt: skip
    east_edge = offset(LON, LAT, east_m=100, north_m=50)
    shops = {}
    for metres, name in ((30, "校边烟酒店"), (150, "星光网吧"), (400, "远处超市"), (1200, "城东彩票站")):
        lon, lat = offset(*east_edge, east_m=metres)
        shops[name] = add_premises(
            session, name=name, lon=lon, lat=lat, district="450302",
            permits=[{"category": "tobacco", "issued": dt.date(2024, 1, 1)}],
        )  # fmt: skip
    session.commit()
    return school, gate, shops


def _links(body: dict) -> dict[str, str]:
    return {link["rel"]: link["href"] for link in body["links"]}


def test_landing_conformance_and_collections(client, session, auth) -> None:  # noqa: ANN001
    _city(session)
    h = auth("admin")
    r = client.get("/ogc", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    links = _links(r.json())
    assert {"self", "service-desc", "conformance", "data"} <= set(links)
    assert urlsplit(links["service-desc"]).path == "/openapi.json"
    assert client.get(links["service-desc"]).status_code == 200
    assert set(client.get(links["conformance"], headers=h).json()["conformsTo"]) == CONFORMANCE

    body = client.get(links["data"], headers=h).json()
    by_id = {c["id"]: c for c in body["collections"]}
    assert set(by_id) == {"schools", "campuses", "gates", "premises", "zones", "findings"}
    for c in by_id.values():
        assert c["itemType"] == "feature" and c["crs"] == ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]
        assert _links(c)["items"].endswith(f"/ogc/collections/{c['id']}/items")
    # the school's square lies inside the schools extent; the zones reach beyond it
    x0, y0, x1, y1 = by_id["schools"]["extent"]["spatial"]["bbox"][0]
    assert x0 <= LON + 1e-9 and y0 <= LAT + 1e-9 and x1 > LON and y1 > LAT
    zx0, zy0, zx1, zy1 = by_id["zones"]["extent"]["spatial"]["bbox"][0]
    assert zx0 < x0 and zy0 < y0 and zx1 > x1 and zy1 > y1
    assert "OpenStreetMap" not in by_id["premises"]["description"]  # no OSM data in this database

    one = client.get("/ogc/collections/premises", headers=h)
    assert one.status_code == 200 and one.json()["id"] == "premises"


def test_access_needs_a_token_and_the_collection_permission(client, session, auth, make_token) -> None:  # noqa: ANN001
    _city(session)
    assert client.get("/ogc").status_code == 401
    assert client.get("/ogc/collections/schools/items").status_code == 401
    viewer = auth("viewer")
    names = {c["id"] for c in client.get("/ogc/collections", headers=viewer).json()["collections"]}
    assert names == {"schools", "campuses", "gates", "zones"}  # trader names are personal data
    r = client.get("/ogc/collections/premises/items", headers=viewer)
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/ogc/collections/findings", headers=viewer).status_code == 403
    assert client.get("/ogc/collections/nope/items", headers=viewer).status_code == 404
    # ?token= for clients that cannot send a header; every link keeps it
    token = make_token("market_supervision")
    r = client.get(f"/ogc/collections/premises/items?limit=1&token={token}")
    assert r.status_code == 200
    nxt = _links(r.json())["next"]
    assert parse_qs(urlsplit(nxt).query)["token"] == [token]
    assert client.get(nxt).status_code == 200


def test_items_bbox_paging_and_one_item(client, session, auth) -> None:  # noqa: ANN001
    _, _, shops = _city(session)
    h = auth("market_supervision")
    # a box around the school and 500 m east of it: every shop but the one 1,200 m away
    x0, y0 = offset(LON, LAT, east_m=-10, north_m=-10)
    x1, y1 = offset(LON, LAT, east_m=700, north_m=110)
    r = client.get(f"/ogc/collections/premises/items?bbox={x0},{y0},{x1},{y1}", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    body = r.json()
    assert {f["properties"]["name"] for f in body["features"]} == {"校边烟酒店", "星光网吧", "远处超市"}
    assert body["numberMatched"] == body["numberReturned"] == 3
    assert body["features"][0]["properties"]["categories"] == "tobacco"

    # pages of one: next links walk every premises exactly once, prev goes back
    seen, url, pages = [], "/ogc/collections/premises/items?limit=1", 0
    while url:
        page = client.get(url, headers=h).json()
        assert page["numberMatched"] == 4 and page["numberReturned"] == len(page["features"]) == 1
        seen += [f["properties"]["name"] for f in page["features"]]
        links = _links(page)
        assert ("prev" in links) == (pages > 0)
        url, pages = links.get("next"), pages + 1
    assert sorted(seen) == sorted(shops) and pages == 4
    prev = _links(client.get("/ogc/collections/premises/items?limit=2&offset=2", headers=h).json())["prev"]
    assert parse_qs(urlsplit(prev).query)["offset"] == ["0"]

    # a limit above the largest page is clamped, not refused (OGC Part 1)
    assert client.get("/ogc/collections/premises/items?limit=100000", headers=h).status_code == 200

    cafe = shops["星光网吧"]
    r = client.get(f"/ogc/collections/premises/items/{cafe.id}", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    assert r.json()["properties"]["name"] == "星光网吧" and r.json()["id"] == cafe.id
    assert client.get("/ogc/collections/premises/items/999999999", headers=h).status_code == 404
    assert client.get("/ogc/collections/premises/items/abc", headers=h).status_code == 404


def test_zones_are_the_rule_distances_around_the_school(client, session, auth) -> None:  # noqa: ANN001
    school, gate, _ = _city(session)
    h = auth("viewer")
    body = client.get("/ogc/collections/zones/items", headers=h).json()
    zones = {(f["properties"]["measure_from"], f["properties"]["distance_m"]): f for f in body["features"]}
    assert body["numberMatched"] == len(zones) >= 3
    assert all(f["properties"]["school_name"] == "解放路小学" for f in zones.values())
    # the tobacco zone: 50 m from the in-use gate (points 45 m and 56 m south of it)
    tobacco = shape(zones[("gates", 50.0)]["geometry"])
    assert "tobacco" in zones[("gates", 50.0)]["properties"]["rules"].split(",")
    assert tobacco.contains(Point(offset(*gate, north_m=-45)))
    assert not tobacco.contains(Point(offset(*gate, north_m=-56)))
    # the internet-café zone: 200 m from the boundary (190 m east of the east edge is in, 215 m out)
    cafe_zone = zones[("boundary", 200.0)]
    assert "internet_cafe.school" in cafe_zone["properties"]["rules"].split(",")
    east_edge = offset(LON, LAT, east_m=100, north_m=50)
    assert shape(cafe_zone["geometry"]).contains(Point(offset(*east_edge, east_m=190)))
    assert not shape(cafe_zone["geometry"]).contains(Point(offset(*east_edge, east_m=215)))

    one = client.get(f"/ogc/collections/zones/items/{cafe_zone['id']}", headers=h)
    assert one.status_code == 200 and one.json()["properties"]["distance_m"] == 200.0
    assert client.get(f"/ogc/collections/zones/items/{school.campuses[0].id}-boundary-7", headers=h).status_code == 404

    # a bbox 300 m east of the school touches the 200 m zones only if they reach it: none do
    x0, y0 = offset(LON, LAT, east_m=400)
    x1, y1 = offset(LON, LAT, east_m=500, north_m=100)
    far = client.get(f"/ogc/collections/zones/items?bbox={x0},{y0},{x1},{y1}", headers=h).json()
    assert far["numberMatched"] == 0
    x0, y0 = offset(LON, LAT, east_m=250)
    near = client.get(f"/ogc/collections/zones/items?bbox={x0},{y0},{x1},{y1}", headers=h).json()
    reaching = {f["properties"]["distance_m"] for f in near["features"]}
    assert reaching == {d for (_, d) in zones if d >= 150} and 200.0 in reaching  # 150 m east of the east edge
    assert near["numberMatched"] < body["numberMatched"]
