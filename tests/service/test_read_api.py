"""The read API on rows the tests insert: filters by bbox, district, level, category; paging by `next`."""

from __future__ import annotations

from shapely.geometry import shape

from geo.coords import point_from_wgs84
from tests.factories import add_premises, add_school, offset, square

GEOJSON = "application/json"
LON, LAT = 110.2906, 25.2736  # Guilin


def _city(session):  # noqa: ANN001, ANN202
    a = add_school(
        session,
        name="解放路小学",
        outline=square(LON, LAT, 100),
        levels=["primary"],
        district="450302",
        gates=[offset(LON, LAT, east_m=50)],
    )
    b_lon, b_lat = offset(LON, LAT, east_m=2000)
    b = add_school(
        session,
        name="漓江幼儿园",
        outline=square(b_lon, b_lat, 60),
        levels=["kindergarten"],
        district="450303",
    )
    c_lon, c_lat = 106.5516, 29.5630  # Chongqing
    c = add_school(
        session,
        name="渝中区第一中学",
        outline=square(c_lon, c_lat, 150),
        levels=["junior", "senior"],
        district="500103",
    )
    p1 = add_premises(
        session,
        name="星海网吧",
        lon=LON + 0.001,
        lat=LAT + 0.0005,
        district="450302",
        permits=[{"category": "internet_cafe", "status": "active"}],
    )
    p2 = add_premises(
        session,
        name="便民烟酒店",
        lon=LON + 0.002,
        lat=LAT,
        district="450302",
        permits=[{"category": "tobacco"}, {"category": "alcohol"}, {"category": "lottery"}],
    )
    p3 = add_premises(
        session, name="夜色KTV", lon=c_lon, lat=c_lat + 0.003, district="500103", categories=["entertainment"]
    )
    session.commit()
    return a, b, c, p1, p2, p3


def test_schools_filters(client, session, auth) -> None:  # noqa: ANN001
    a, b, c, *_ = _city(session)
    h = auth("viewer")
    names = lambda r: sorted(f["properties"]["name"] for f in r.json()["features"])  # noqa: E731
    r = client.get("/v1/schools", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith(GEOJSON)
    assert names(r) == sorted([a.name, b.name, c.name])
    assert names(client.get("/v1/schools?district=450302", headers=h)) == [a.name]
    assert names(client.get("/v1/schools?district=450300", headers=h)) == sorted([a.name, b.name])
    assert names(client.get("/v1/schools?district=500000", headers=h)) == [c.name]
    assert names(client.get("/v1/schools?level=kindergarten", headers=h)) == [b.name]
    assert names(client.get("/v1/schools?level=senior", headers=h)) == [c.name]
    bbox = f"{LON - 0.01},{LAT - 0.01},{LON + 0.01},{LAT + 0.01}"
    assert names(client.get(f"/v1/schools?bbox={bbox}", headers=h)) == [a.name]


def test_school_detail_has_campuses_and_gates(client, session, auth) -> None:  # noqa: ANN001
    a, *_ = _city(session)
    r = client.get(f"/v1/schools/{a.id}", headers=auth("education"))
    assert r.status_code == 200
    body = r.json()
    assert body["properties"]["name"] == "解放路小学"
    (campus,) = body["properties"]["campuses"]
    assert campus["geometry"]["type"] == "Polygon"
    (gate,) = campus["gates"]
    assert gate["kind"] == "main"
    assert abs(shape(gate["geometry"]).x - offset(LON, LAT, east_m=50)[0]) < 1e-9  # 0.1 mm


def test_missing_school_is_404_problem(client, auth) -> None:  # noqa: ANN001
    r = client.get("/v1/schools/987654321", headers=auth())
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["value"] == 987654321


def test_paging_follows_next_links(client, session, auth) -> None:  # noqa: ANN001
    schools = _city(session)[:3]
    h = auth("viewer")
    seen: list[str] = []
    url = "/v1/schools?limit=1"
    while url:
        body = client.get(url, headers=h).json()
        assert body["numberReturned"] <= 1
        seen += [f["properties"]["name"] for f in body["features"]]
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        url = nxt[0] if nxt else None
    assert sorted(seen) == sorted(s.name for s in schools)


def test_premises_filters_by_category_and_permits(client, session, auth) -> None:  # noqa: ANN001
    *_, p1, p2, p3 = _city(session)
    h = auth("market_supervision")
    names = lambda r: sorted(f["properties"]["name"] for f in r.json()["features"])  # noqa: E731
    assert names(client.get("/v1/premises?category=internet_cafe", headers=h)) == ["星海网吧"]
    assert names(client.get("/v1/premises?category=lottery", headers=h)) == ["便民烟酒店"]
    assert names(client.get("/v1/premises?category=entertainment", headers=h)) == ["夜色KTV"]
    body = client.get("/v1/premises?category=tobacco", headers=h).json()
    (store,) = body["features"]
    assert store["properties"]["categories"] == ["alcohol", "lottery", "tobacco"]
    assert store["properties"]["licensed"] is True
    ktv = client.get("/v1/premises?category=entertainment", headers=h).json()["features"][0]
    assert ktv["properties"]["licensed"] is False
    assert names(client.get("/v1/premises?district=500103", headers=h)) == ["夜色KTV"]


def test_out_crs_converts_coordinates(client, session, auth) -> None:  # noqa: ANN001
    *_, p1, _p2, _p3 = _city(session)
    h = auth("admin")
    wgs = client.get("/v1/premises?category=internet_cafe", headers=h).json()["features"][0]["geometry"]
    gcj = client.get("/v1/premises?category=internet_cafe&out_crs=gcj02", headers=h).json()["features"][0]["geometry"]
    expect = point_from_wgs84(*wgs["coordinates"], "gcj02")
    assert abs(gcj["coordinates"][0] - expect[0]) < 1e-12 and abs(gcj["coordinates"][1] - expect[1]) < 1e-12
    assert abs(gcj["coordinates"][0] - wgs["coordinates"][0]) > 1e-3  # hundreds of metres apart


def test_bad_filters_are_422_naming_the_field(client, auth) -> None:  # noqa: ANN001
    h = auth()
    r = client.get("/v1/schools?bbox=120,30,110", headers=h)
    assert r.status_code == 422 and r.json()["field"] == "bbox"
    r = client.get("/v1/schools?district=45", headers=h)
    assert r.status_code == 422 and r.json()["field"] == "district" and r.json()["value"] == "45"
    r = client.get("/v1/schools?level=university", headers=h)
    assert r.status_code == 422 and r.json()["field"] == "level" and r.json()["value"] == "university"
    r = client.get("/v1/premises?out_crs=epsg3857", headers=h)
    assert r.status_code == 422 and r.json()["field"] == "out_crs"


def test_health_reports_database_and_migrations(client) -> None:  # noqa: ANN001
    body = client.get("/health").json()
    assert body["database"]["reachable"] is True
    assert body["database"]["postgis"].startswith("3.")
    assert body["database"]["migrations"]["at_head"] is True
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["rule_packs"] is True
