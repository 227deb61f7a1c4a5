"""Vector tiles and map pages against the real PostGIS (each test rolled back)."""

from __future__ import annotations

import json
import math
from urllib.parse import quote

import mapbox_vector_tile
import pytest

from geo.maps import external_urls
from tests.factories import add_premises, add_school, offset, square

# a quiet corner of Guilin, away from anything the other tests insert
LON, LAT = 110.3012, 25.2811


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def get_tile(client, headers, layer: str, lon: float, lat: float, z: int, **params):  # noqa: ANN001, ANN201
    x, y = tile_of(lon, lat, z)
    return client.get(f"/tiles/{layer}/{z}/{x}/{y}.pbf", headers=headers, params=params)


def features(resp, layer: str) -> list[dict]:  # noqa: ANN001
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    return mapbox_vector_tile.decode(resp.content)[layer]["features"]


@pytest.fixture
def school(session):  # noqa: ANN001, ANN201
    """A primary school, 100 m square, with its main gate in the middle of the south side."""
    gate = offset(LON, LAT, east_m=50)
    return add_school(session, name="漓江路小学", outline=square(LON, LAT, 100), levels=["primary"], gates=[gate])


def test_school_is_in_the_schools_layer_with_its_name_and_level(client, auth, school, session) -> None:
    session.commit()
    feats = features(get_tile(client, auth("viewer"), "schools", LON + 0.0005, LAT + 0.0005, 16), "schools")
    ours = [f for f in feats if f["properties"]["school_id"] == school.id]
    assert len(ours) == 1
    assert ours[0]["properties"]["name"] == "漓江路小学"
    assert ours[0]["properties"]["levels"] == "primary"
    assert ours[0]["geometry"]["type"] == "Polygon"
    gates = features(get_tile(client, auth("viewer"), "gates", LON + 0.0005, LAT, 16), "gates")
    assert any(g["properties"]["school_id"] == school.id and g["properties"]["kind"] == "main" for g in gates)


def test_low_zoom_premises_are_counts_per_cell_not_points(client, auth, session) -> None:
    # 40 tobacco shops within 60 m of each other: one or two cells at zoom 12, 40 points at zoom 16
    for i in range(40):
        lon, lat = offset(LON, LAT, east_m=(i % 8) * 7, north_m=(i // 8) * 7)
        add_premises(session, name=f"烟酒店{i}", lon=lon, lat=lat, categories=["tobacco"])
    session.commit()
    cells = features(get_tile(client, auth("admin"), "premises", LON, LAT, 12), "premises")
    assert 1 <= len(cells) <= 4
    assert sum(c["properties"]["count"] for c in cells) == 40
    assert sum(c["properties"]["tobacco"] for c in cells) == 40
    assert all(c["properties"]["unlicensed"] == c["properties"]["count"] for c in cells)  # no permit on record
    assert all(set(c["properties"]) == {"count", "unlicensed", "tobacco"} for c in cells)  # no names, no ids
    points = features(get_tile(client, auth("admin"), "premises", LON + 0.0002, LAT + 0.0001, 16), "premises")
    ours = [p for p in points if str(p["properties"].get("name", "")).startswith("烟酒店")]
    assert len(ours) == 40
    assert {p["properties"]["category"] for p in ours} == {"tobacco"}


def test_a_field_report_shows_in_the_low_zoom_tiles_at_once(client, auth, session) -> None:
    lon, lat = offset(LON, LAT, east_m=-900, north_m=-700)
    add_premises(session, name="老地方烧烤", lon=lon, lat=lat, categories=["food_stall"])
    session.commit()

    def food_stalls(z: int) -> tuple[int, int]:
        """(food stalls, premises with no active permit) in the zoom-z tile of the report's place."""
        props = [
            c["properties"] for c in features(get_tile(client, auth("viewer"), "premises", lon, lat, z), "premises")
        ]
        return sum(p.get("food_stall", 0) for p in props), sum(p["unlicensed"] for p in props)

    assert food_stalls(11) == (1, 1)
    report = {
        "lon": lon,
        "lat": lat,
        "crs": "wgs84",
        "category": "food_stall",
        "name": "烤肠摊",
        "note": "校门口流动摊点",
    }
    r = client.post("/v1/field-reports", json=report, headers=auth("urban_management"))
    assert r.status_code == 201, r.text
    assert food_stalls(11) == (2, 2)  # the reported stall: no permit on record
    assert food_stalls(13) == (2, 2)


def test_roles_without_read_premises_get_no_trader_names(client, auth, session) -> None:
    lon, lat = offset(LON, LAT, east_m=300, north_m=300)
    add_premises(session, name="星海网吧", lon=lon, lat=lat, categories=["internet_cafe"])
    session.commit()
    admin = features(get_tile(client, auth("market_supervision"), "premises", lon, lat, 17), "premises")
    assert [p["properties"]["name"] for p in admin] == ["星海网吧"]
    viewer = features(get_tile(client, auth("viewer"), "premises", lon, lat, 17), "premises")
    assert [p["properties"] for p in viewer] == [{"category": "internet_cafe"}]


def test_category_comes_from_the_permit_when_none_was_observed(client, auth, session) -> None:
    lon, lat = offset(LON, LAT, east_m=-400, north_m=250)
    add_premises(session, name="福彩站", lon=lon, lat=lat, permits=[{"category": "lottery"}])
    session.commit()
    feats = features(get_tile(client, auth("admin"), "premises", lon, lat, 17), "premises")
    assert [(p["properties"]["name"], p["properties"]["category"]) for p in feats] == [("福彩站", "lottery")]


def test_tiles_need_a_token_and_the_maps_permission(client, auth, school) -> None:
    x, y = tile_of(LON, LAT, 16)
    url = f"/tiles/schools/16/{x}/{y}.pbf"
    assert client.get(url).status_code == 401
    assert client.get(url, params={"token": "not-a-token"}).status_code == 401
    assert client.get(url, headers=auth("licensing_client")).status_code == 403
    token = auth("education")["Authorization"].removeprefix("Bearer ")
    resp = client.get(url, params={"token": token})  # what the page's tile requests send
    assert resp.status_code == 200
    assert "max-age" in resp.headers["cache-control"]


def test_empty_tile_is_204_and_bad_coordinates_422(client, auth) -> None:
    headers = auth("viewer")
    resp = client.get("/tiles/schools/16/0/0.pbf", headers=headers)  # the Pacific off Alaska
    assert resp.status_code == 204
    assert resp.content == b""
    assert client.get("/tiles/schools/3/8/1.pbf", headers=headers).status_code == 422
    assert client.get("/tiles/nothing/3/1/1.pbf", headers=headers).status_code == 422


def test_zones_layer_draws_one_zone_per_rule_distance(client, auth, school, session) -> None:
    session.commit()
    feats = features(get_tile(client, auth("viewer"), "zones", LON + 0.0005, LAT + 0.0005, 15), "zones")
    ours = [f["properties"] for f in feats if f["properties"]["campus_id"] == school.campuses[0].id]
    by_distance = {(p["distance_m"], p["measure_from"]): p["rules"].split(",") for p in ours}
    # national pack, primary school: 200 m from the outline for internet cafés, 50 m from gates for tobacco
    assert "internet_cafe.school" in by_distance[(200.0, "boundary")]
    assert "tobacco" in by_distance[(50.0, "gates")]
    assert all("kindergarten" not in r for rules in by_distance.values() for r in rules)


def test_zoom_12_premises_tile_is_aggregated_even_for_admins(client, auth, session) -> None:
    add_premises(session, name="某网吧", lon=LON, lat=LAT, categories=["internet_cafe"])
    session.commit()
    cells = features(get_tile(client, auth("admin"), "premises", LON, LAT, 12), "premises")
    assert all("name" not in c["properties"] for c in cells)


def page_config(html: str) -> dict:
    start = html.index('<script id="safezone-config" type="application/json">')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return json.loads(body)


def _token(auth, role: str) -> str:  # noqa: ANN001
    return auth(role)["Authorization"].removeprefix("Bearer ")


def test_city_page_loads_nothing_external_and_passes_the_token_to_its_tiles(client, auth, school) -> None:
    token = _token(auth, "urban_management")
    resp = client.get("/maps/city", params={"token": token})
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "no-store"
    html = resp.text
    assert external_urls(html) == []
    assert f"/tiles/premises/{{z}}/{{x}}/{{y}}.pbf?token={quote(token)}&lang=zh" in html
    for layer in ("streets", "schools", "gates", "premises", "zones", "districts", "assets"):
        assert f"/tiles/{layer}/" in html
    assert "/static/app/map.js" in html and "/static/app/map.css" in html
    cfg = page_config(html)
    assert cfg["token"] == token and cfg["names"] is True and cfg["page"] == "city"
    assert "网吧" in [item["label"] for item in cfg["legend"]]
    assert "tianditu" not in html
    english = client.get("/maps/city", params={"token": token, "lang": "en"}).text
    assert "Internet café" in [item["label"] for item in page_config(english)["legend"]] and "lang=en" in english
    assert client.get("/maps/city").status_code == 401
    assert client.get("/maps/city", headers=auth("licensing_client")).status_code == 403


def test_each_caller_gets_the_city_page_with_its_own_token(client, auth, school) -> None:
    """The page is rendered once per set of inputs; the token in it is always the caller's."""
    first, second = _token(auth, "urban_management"), _token(auth, "public_security")
    a = client.get("/maps/city", params={"token": first}).text
    b = client.get("/maps/city", params={"token": second}).text
    assert first in a and second not in a and page_config(a)["token"] == first
    assert second in b and first not in b and page_config(b)["token"] == second
    assert "TOKENSLOT" not in a + b
    assert a.replace(first, "") == b.replace(second, "")
    # a viewer may not read traders' names: another page, not the cached one
    viewer = client.get("/maps/city", params={"token": _token(auth, "viewer")}).text
    assert page_config(viewer)["names"] is False and page_config(a)["names"] is True


def test_tianditu_only_when_asked_and_configured(client, auth) -> None:
    from service.settings import Settings

    token = _token(auth, "viewer")
    assert client.get("/maps/city", params={"token": token, "basemap": "tianditu"}).status_code == 422
    client.app.state.settings = Settings(tianditu_key="k123")
    assert "tianditu" not in client.get("/maps/city", params={"token": token}).text
    html = client.get("/maps/city", params={"token": token, "basemap": "tianditu"}).text
    assert "tianditu.gov.cn/vec_w/wmts" in html and "tianditu.gov.cn/cva_w/wmts" in html and "tk=k123" in html


def test_school_page_measures_the_premises_around(client, auth, school, session) -> None:
    # a bar 60 m east of the campus (the 200 m bar zone); an internet café 260 m east (outside 200 m + 50 m)
    east = offset(LON, LAT, east_m=100)
    near = offset(*east, east_m=60, north_m=50)
    far = offset(*east, east_m=260, north_m=50)
    add_premises(session, name="蓝调酒吧", lon=near[0], lat=near[1], categories=["bar"])
    add_premises(session, name="远方网吧", lon=far[0], lat=far[1], categories=["internet_cafe"])
    session.commit()
    html = client.get(f"/maps/schools/{school.id}", headers=auth("culture_tourism")).text
    assert external_urls(html) == []
    assert "蓝调酒吧" in html and "远方网吧" not in html
    assert "距校园边界 60.0 米" in html
    assert "在区域内：bar" in html
    assert "internet_cafe.school：200 米（自校园边界）" in html
    assert "tobacco：50 米（自校门）" in html
    viewer = client.get(f"/maps/schools/{school.id}", headers=auth("viewer"), params={"lang": "en"}).text
    assert "蓝调酒吧" not in viewer and "60.0 m from the campus boundary" in viewer
    assert client.get("/maps/schools/999999999", headers=auth("viewer")).status_code == 404


def test_osm_attribution_shows_only_with_osm_data(client, auth, session) -> None:
    from storage.models import ImportBatch

    token = _token(auth, "viewer")
    assert "OpenStreetMap" not in client.get("/maps/city", params={"token": token}).text
    session.add(ImportBatch(kind="osm", source="x.osm", licence="ODbL"))
    session.commit()
    assert "OpenStreetMap\\u003c/a\\u003e contributors" in client.get("/maps/city", params={"token": token}).text


def test_findings_layer_shows_the_latest_scan_by_status(client, auth, school, session) -> None:
    import datetime as dt

    from geoalchemy2.shape import from_shape
    from shapely.geometry import Point

    from storage.models import Finding, Scan

    lon, lat = offset(LON, LAT, east_m=150, north_m=50)
    bar = add_premises(session, name="夜色酒吧", lon=lon, lat=lat, categories=["bar"])
    old = Scan(status="done", pack_version="v1", scan_date=dt.date(2024, 1, 1))
    new = Scan(status="done", pack_version="v1", scan_date=dt.date(2024, 6, 1))
    session.add_all([old, new])
    session.flush()
    here = from_shape(Point(lon, lat), srid=4326)
    for scan, status in ((old, "review"), (new, "violation")):
        session.add(
            Finding(
                scan_id=scan.id, premises_id=bar.id, premises_name="夜色酒吧", rule_id="bar", category="bar",
                status=status, school_id=school.id, school_name="漓江路小学", campus_id=school.campuses[0].id,
                distance_m=50.0, limit_m=200.0, u_m=5.0, margin_m=150.0, method="geodesic",
                lead_department="culture_tourism", geom=here, from_geom=here, to_geom=here,
            )
        )  # fmt: skip
    session.commit()
    admin = features(get_tile(client, auth("admin"), "findings", lon, lat, 17), "findings")
    assert [(f["properties"]["status"], f["properties"]["name"]) for f in admin] == [("violation", "夜色酒吧")]
    assert admin[0]["properties"]["distance_m"] == 50.0
    viewer = features(get_tile(client, auth("viewer"), "findings", lon, lat, 17), "findings")
    assert "name" not in viewer[0]["properties"] and viewer[0]["properties"]["school_name"] == "漓江路小学"
