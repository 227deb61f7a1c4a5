"""Exports of zones and findings (GeoPackage, GeoJSON, CSV, XLSX), read back with pyogrio and openpyxl."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3

import pyogrio
import shapely.wkt
from openpyxl import load_workbook
from shapely.geometry import Point, shape
from sqlalchemy import text

from geo.rules import RuleRegistry
from service.importing import ImportOptions, import_osm
from service.scanning import run_scan
from service.settings import Settings
from tests.factories import add_premises, add_school, offset, square

LON, LAT = 110.2906, 25.2736  # Guilin, 秀峰区


def _registry() -> RuleRegistry:
    settings = Settings()
    return RuleRegistry.load(settings.resolved_rules_dir, default_adcode=settings.default_adcode)


def _scanned_city(session, session_factory) -> int:  # noqa: ANN001
    gate = offset(LON, LAT, east_m=50)
    add_school(
        session, name="解放路小学", outline=square(LON, LAT, 100), levels=["primary"], district="450302",
        gates=[gate], accuracy_m=0.0,
    )  # fmt: skip
    at = offset(*gate, north_m=-30)
    add_premises(
        session, name="便民烟酒店", lon=at[0], lat=at[1], district="450302",
        permits=[{"category": "tobacco", "issued": dt.date(2024, 1, 1)}],
    )  # fmt: skip
    add_premises(session, name="黑网吧", lon=at[0], lat=at[1], district="450302", categories=["internet_cafe"])
    far = offset(LON, LAT, east_m=2000)
    add_premises(session, name="远处网吧", lon=far[0], lat=far[1], district="450302", categories=["internet_cafe"])
    session.commit()
    return run_scan(session_factory, _registry())["scan_id"]


def test_findings_export_in_every_format(client, session, session_factory, auth, tmp_path) -> None:  # noqa: ANN001
    scan_id = _scanned_city(session, session_factory)
    h = auth("market_supervision")
    expected = client.get("/v1/findings", headers=h).json()["features"]
    names = sorted(f["properties"]["premises_name"] for f in expected)
    assert set(names) == {"便民烟酒店", "黑网吧"}  # the far internet café is outside every zone

    r = client.get("/v1/exports/findings?format=gpkg", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/geopackage+sqlite3"
    assert f'filename="findings-{scan_id}.gpkg"' in r.headers["content-disposition"]
    path = tmp_path / "findings.gpkg"
    path.write_bytes(r.content)
    assert [name for name, _ in pyogrio.list_layers(path)] == ["findings"]
    frame = pyogrio.read_dataframe(path)
    assert sorted(frame["premises_name"]) == names and frame.crs.to_epsg() == 4326
    cafe = frame[frame["premises_name"] == "黑网吧"].iloc[0]
    assert cafe["status"] == "unlicensed" and cafe["school_name"] == "解放路小学" and cafe["distance_m"] < 200
    assert "attribution" not in frame.columns  # no OSM data in this database

    geo = client.get("/v1/exports/findings?format=geojson", headers=h)
    assert geo.headers["content-type"] == "application/geo+json"
    body = json.loads(geo.content)
    assert body["type"] == "FeatureCollection" and "attribution" not in body
    assert sorted(f["properties"]["premises_name"] for f in body["features"]) == names

    rows = list(
        csv.reader(io.StringIO(client.get("/v1/exports/findings?format=csv", headers=h).content.decode("utf-8-sig")))
    )
    assert len(rows) == 1 + len(names) and rows[0][0] == "编号 finding id"
    book = load_workbook(io.BytesIO(client.get("/v1/exports/findings?format=xlsx", headers=h).content))
    assert book.active.max_row == 1 + len(names)

    assert client.get("/v1/exports/findings?format=gpkg", headers=auth("viewer")).status_code == 403
    assert client.get("/v1/exports/findings?format=shp", headers=h).status_code == 422
    other = client.get("/v1/exports/findings?format=geojson&district=450100", headers=h)
    assert json.loads(other.content)["features"] == []


def test_zones_export_with_osm_attribution(client, session_factory, auth, nanjing_osm, tmp_path) -> None:  # noqa: ANN001
    import_osm(session_factory, nanjing_osm, ImportOptions())
    registry = _registry()
    with session_factory() as s:
        campuses = s.execute(
            text(
                "SELECT c.district_adcode, s.levels, EXISTS (SELECT 1 FROM gates g WHERE g.campus_id = c.id"
                " AND g.in_use) FROM campuses c JOIN schools s ON s.id = c.school_id"
            )
        ).all()
        school = s.execute(
            text(
                "SELECT s.name, ST_X(ST_PointOnSurface(c.geom)), ST_Y(ST_PointOnSurface(c.geom))"
                " FROM campuses c JOIN schools s ON s.id = c.school_id ORDER BY c.id LIMIT 1"
            )
        ).one()
    expected = 0
    for district, levels, gated in campuses:
        rules = [r for r in registry.in_force(district).rules if r.distance_m is not None]
        protecting = [r for r in rules if not levels or set(levels) & set(r.levels)]
        expected += len({(r.distance_m, r.measure_from if gated else "boundary") for r in protecting})
    assert expected > len(campuses) >= 10
    h = auth("education")

    r = client.get("/v1/exports/zones?format=gpkg", headers=h)
    assert r.status_code == 200
    path = tmp_path / "zones.gpkg"
    path.write_bytes(r.content)
    frame = pyogrio.read_dataframe(path)
    assert len(frame) == expected
    assert set(frame["attribution"]) == {"© OpenStreetMap contributors"}
    info = pyogrio.read_info(path)
    assert info["geometry_type"] == "MultiPolygon"
    assert info["layer_metadata"]["attribution"] == "© OpenStreetMap contributors"
    with sqlite3.connect(path) as db:  # the layer description QGIS shows
        assert "© OpenStreetMap contributors" in db.execute("SELECT description FROM gpkg_contents").fetchone()[0]
    # the first campus's widest zone holds a point 150 m from it
    mine = frame[frame["school_name"] == school[0]]
    widest = mine.loc[mine["distance_m"].idxmax()]
    lon, lat = offset(school[1], school[2], east_m=150)
    assert widest["distance_m"] >= 200 and widest.geometry.contains(Point(lon, lat))

    body = json.loads(client.get("/v1/exports/zones?format=geojson", headers=h).content)
    assert body["attribution"] == "© OpenStreetMap contributors" and len(body["features"]) == expected
    assert all(shape(f["geometry"]).is_valid for f in body["features"])
    table = list(
        csv.reader(io.StringIO(client.get("/v1/exports/zones?format=csv", headers=h).content.decode("utf-8-sig")))
    )
    assert len(table) == 1 + expected and table[0][-1] == "wkt"
    # a gates zone of gates far apart is in pieces: every row's WKT is a valid polygon or multipolygon
    zones = [shapely.wkt.loads(row[-1]) for row in table[1:]]
    assert all(z.geom_type in {"Polygon", "MultiPolygon"} and z.is_valid for z in zones)
    book = load_workbook(io.BytesIO(client.get("/v1/exports/zones?format=xlsx", headers=h).content))
    assert book.active.max_row == 1 + expected
    # a district with no campus: an empty but valid GeoPackage
    empty = tmp_path / "empty.gpkg"
    empty.write_bytes(client.get("/v1/exports/zones?format=gpkg&district=450302", headers=h).content)
    assert len(pyogrio.read_dataframe(empty)) == 0
