"""School register (CSV with coordinates), cameras and districts imported into PostGIS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyproj import Geod
from shapely.geometry import Point, box, mapping
from sqlalchemy import text

from geo.coords import point_from_wgs84
from service.importing import ImportOptions, ImportRejected, import_cameras, import_districts, import_schools
from storage.checks import district_at

GEOD = Geod(ellps="WGS84")
LON, LAT = 106.5516, 29.5630  # 渝中区


def _districts(tmp_path: Path) -> Path:
    feats = [
        {"type": "Feature", "properties": {"adcode": "500000", "name": "重庆市", "level": "province", "parent": None},
         "geometry": mapping(box(105.0, 28.0, 110.0, 32.0))},
        {"type": "Feature", "properties": {"adcode": "500103", "name": "渝中区", "level": "county", "parent": "500000"},
         "geometry": mapping(box(106.50, 29.52, 106.60, 29.58))},
    ]  # fmt: skip
    path = tmp_path / "districts.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False), encoding="utf-8")
    return path


def test_register_csv_in_gcj02_with_districts(session_factory, session, tmp_path: Path) -> None:  # noqa: ANN001
    import_districts(session_factory, _districts(tmp_path), ImportOptions())
    x, y = point_from_wgs84(LON, LAT, "gcj02")
    csv = (
        "学校标识码,学校名称,学段,校区,经度,纬度,坐标系,学生数,寄宿生数,教职工数,保安人数,门禁,到校时间,放学时间,开办日期,是否有证\n"
        f"3150000001,人和街小学,小学,主校区,{x},{y},gcj02,1200,0,80,2,是,07:50,16:30,1958-09-01,是\n"
        f"3150000002,枇杷山幼儿园,幼儿园,,{x + 0.003},{y},gcj02,90,0,12,1,否,08:00,17:00,2001-03-01,是\n"
        f"3150000003,小天使看护点,幼儿园,,{x + 0.006},{y},gcj02,30,0,3,0,否,08:00,17:00,2020-03-01,否\n"
    )
    path = tmp_path / "register.csv"
    path.write_bytes(csv.encode("gbk"))
    summary = import_schools(session_factory, path, ImportOptions())
    assert summary.added["schools"] == 3 and summary.added["campuses"] == 3
    rows = {
        r.name: r
        for r in session.execute(
            text(
                "SELECT s.name, s.levels, s.flags, s.guards, s.access_control, s.district_adcode, s.licensed, "
                "ST_X(c.geom) x, ST_Y(c.geom) y, c.point_only FROM schools s JOIN campuses c ON c.school_id = s.id"
            )
        )
    }
    school = rows["人和街小学"]
    assert school.levels == ["primary"] and school.district_adcode == "500103" and school.point_only
    assert GEOD.inv(school.x, school.y, LON, LAT)[2] < 0.05
    assert rows["枇杷山幼儿园"].access_control is False
    assert rows["小天使看护点"].licensed is False and "unlicensed" in rows["小天使看护点"].flags
    # the import assigned districts through the districts' pieces and left them in place for the pre-checks
    assert district_at(session, Point(LON, LAT)) == "500103"
    assert district_at(session, Point(107.5, 30.0)) == "500000"
    kept = session.execute(text("SELECT count(*) FROM public.district_parts WHERE adcode = '500103'")).scalar()
    assert kept >= 1


def test_register_with_a_bad_level_is_rejected(session_factory, session, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "register.csv"
    path.write_text(
        "school_id,name,level,lon,lat,crs\n1,某大学,university,106.55,29.56,wgs84\n2,某小学,primary,106.55,29.56,wgs84\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as info:
        import_schools(session_factory, path, ImportOptions())
    assert info.value.errors[0].row == 2 and info.value.errors[0].value == "university"
    assert session.execute(text("SELECT count(*) FROM schools")).scalar() == 0


def test_cameras(session_factory, session, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "cameras.csv"
    path.write_text(
        "camera_id,name,lon,lat,crs,direction_deg,fov_deg,range_m\n"
        f"C1,校门东侧,{LON},{LAT},wgs84,90,90,50\nC2,校门西侧,{LON + 0.0005},{LAT},wgs84,270,60,40\n",
        encoding="utf-8",
    )
    summary = import_cameras(session_factory, path, ImportOptions())
    assert summary.added == {"cameras": 2}
    assert import_cameras(session_factory, path, ImportOptions()).already_imported
    rows = session.execute(text("SELECT name, direction_deg, fov_deg, range_m FROM cameras ORDER BY name")).all()
    assert [tuple(r) for r in rows] == [("校门东侧", 90.0, 90.0, 50.0), ("校门西侧", 270.0, 60.0, 40.0)]
    bad = tmp_path / "bad.csv"
    bad.write_text("camera_id,name,lon,lat,crs,direction_deg,fov_deg,range_m\nC3,x,106.5,29.5,wgs84,400,60,40\n")
    with pytest.raises(ImportRejected) as info:
        import_cameras(session_factory, bad, ImportOptions())
    assert info.value.errors[0].column == "direction_deg"
