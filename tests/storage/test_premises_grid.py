"""The low-zoom premises tiles (``premises_grid``) against a direct count of the premises in each tile.

Whatever changes the premises — rows written one by one, an import that adds, moves and re-licenses
premises — the counts per category a low-zoom tile shows must equal those of the premises inside it.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import mapbox_vector_tile
from sqlalchemy import text

from service.importing import ImportOptions, import_permits
from storage import premises_grid, tiles
from tests.factories import add_premises, offset

# a corner of Guilin no other test uses
LON, LAT = 110.2450, 25.2150
LOW_ZOOMS = range(premises_grid.COARSEST_ZOOM, premises_grid.FINEST_ZOOM + 1)
HEADER = ["permit_id", "category", "name", "address", "uscc", "lon", "lat", "crs", "issued", "expires", "status"]

_DIRECT = text(
    """
    SELECT COALESCE(p.categories[1], (SELECT pm.category FROM permits pm WHERE pm.premises_id = p.id
                                      ORDER BY pm.id LIMIT 1), 'other') AS category,
           count(*) AS n,
           count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM permits pm WHERE pm.premises_id = p.id
                                                                       AND pm.status = 'active')) AS unlicensed
    FROM premises p
    WHERE ST_Intersects(p.geom, ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326))
      AND (CAST(:district AS text) IS NULL OR p.district_adcode LIKE CAST(:district AS text))
    GROUP BY 1
    """
)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180.0) / 360.0 * n), int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)


def shown(session, z: int, x: int, y: int, district: str | None = None) -> tuple[dict[str, int], int, int]:  # noqa: ANN001
    """(count per category, premises, unlicensed) that the low-zoom premises tile (z, x, y) draws."""
    data = tiles.tile(session, "premises", z, x, y, names=True, district=district)
    feats = mapbox_vector_tile.decode(data)["premises"]["features"] if data else []
    per_category: dict[str, int] = {}
    for f in feats:
        assert 0 <= f["geometry"]["coordinates"][0] <= 4096 and 0 <= f["geometry"]["coordinates"][1] <= 4096
        for key, value in f["properties"].items():
            if key not in ("count", "unlicensed"):
                per_category[key] = per_category.get(key, 0) + value
    total = sum(f["properties"]["count"] for f in feats)
    assert total == sum(per_category.values())
    return per_category, total, sum(f["properties"]["unlicensed"] for f in feats)


def counted(session, z: int, x: int, y: int, district: str | None = None) -> tuple[dict[str, int], int, int]:  # noqa: ANN001
    """The same three numbers, counted directly over the premises inside the tile's envelope."""
    rows = session.execute(_DIRECT, {"z": z, "x": x, "y": y, "district": tiles.district_like(district)}).all()
    return {r.category: r.n for r in rows}, sum(r.n for r in rows), sum(r.unlicensed for r in rows)


def assert_tiles_agree(session, points: list[tuple[float, float]], district: str | None = None) -> None:  # noqa: ANN001
    """At every low zoom, every tile holding one of ``points`` shows what a direct count finds."""
    for z in LOW_ZOOMS:
        for x, y in sorted({tile_of(lon, lat, z) for lon, lat in points}):
            assert shown(session, z, x, y, district) == counted(session, z, x, y, district), (z, x, y, district)


def test_low_zoom_tiles_show_the_counts_per_category_of_the_premises_in_them(session) -> None:  # noqa: ANN001
    # a street of shops over ~2 km (several cells at zoom 13, one tile at zoom 8), two districts
    spots = []
    for i in range(12):
        lon, lat = offset(LON, LAT, east_m=i * 170.0, north_m=(i % 3) * 90.0)
        spots.append((lon, lat))
    cats = ["tobacco", "internet_cafe", "lottery", "bar"]
    for i, (lon, lat) in enumerate(spots):
        district = "450302" if i < 6 else "450303"
        add_premises(session, name=f"店{i}", lon=lon, lat=lat, categories=[cats[i % 4]], district=district)
    # a lottery outlet known only from its (active) permit, a tobacco shop whose permit was revoked
    add_premises(session, name="福彩站", lon=spots[0][0], lat=spots[0][1], district="450302",
                 permits=[{"category": "lottery", "status": "active"}])  # fmt: skip
    add_premises(session, name="老烟店", lon=spots[0][0], lat=spots[0][1], district="450303",
                 permits=[{"category": "tobacco", "status": "revoked"}])  # fmt: skip
    session.commit()

    x, y = tile_of(LON, LAT, 10)
    assert shown(session, 10, x, y) == (
        {"tobacco": 4, "internet_cafe": 3, "lottery": 4, "bar": 3},
        14,
        13,  # all but the outlet with an active permit
    )
    assert shown(session, 10, x, y, district="450302") == (
        {"tobacco": 2, "internet_cafe": 2, "lottery": 2, "bar": 1},
        7,
        6,
    )
    assert shown(session, 10, x, y, district="450300")[1] == 14  # a city includes its counties
    assert_tiles_agree(session, spots)
    assert_tiles_agree(session, spots, district="450303")

    # the first spot holds premises of both districts: one cell, drawn once, with both added up
    z13 = tile_of(*spots[0], 13)
    data = mapbox_vector_tile.decode(tiles.tile(session, "premises", 13, *z13))["premises"]["features"]
    first = [f["properties"] for f in data if f["properties"]["count"] == 3]
    assert first == [{"count": 3, "unlicensed": 2, "tobacco": 2, "lottery": 1}]


def test_a_premises_removed_or_recategorised_one_by_one_leaves_the_tile(session) -> None:  # noqa: ANN001
    bar = add_premises(session, name="夜色酒吧", lon=LON, lat=LAT, categories=["bar"])
    cafe = add_premises(session, name="星海网吧", lon=LON + 0.001, lat=LAT, categories=["internet_cafe"])
    session.commit()
    x, y = tile_of(LON, LAT, 12)
    assert shown(session, 12, x, y)[0] == {"bar": 1, "internet_cafe": 1}
    session.delete(bar)
    cafe.categories = ["entertainment"]
    session.commit()
    assert shown(session, 12, x, y)[0] == {"entertainment": 1}
    assert_tiles_agree(session, [(LON, LAT)])


def _permits_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([HEADER, *rows])
    return path


def _grid(session) -> list[tuple]:  # noqa: ANN001
    return session.execute(
        text(
            "SELECT zoom, cx, cy, district_adcode, premises, unlicensed, categories, round(x::numeric, 3),"
            " round(y::numeric, 3) FROM premises_grid ORDER BY zoom, cx, cy, district_adcode"
        )
    ).all()


def test_an_import_that_adds_moves_and_relicenses_premises_keeps_the_tiles_right(
    tmp_path: Path,
    session_factory,  # noqa: ANN001
    session,  # noqa: ANN001
) -> None:
    a = offset(LON, LAT, east_m=100, north_m=100)
    b = offset(LON, LAT, east_m=400, north_m=120)
    c = offset(LON, LAT, east_m=700, north_m=-200)
    d = offset(LON, LAT, east_m=1500, north_m=300)
    e = offset(LON, LAT, east_m=900, north_m=600)

    def row(pid: str, category: str, name: str, at: tuple[float, float], status: str = "active") -> list[str]:
        return [pid, category, name, f"{name}地址", "", f"{at[0]:.8f}", f"{at[1]:.8f}", "wgs84", "2020-01-01", "",
                status]  # fmt: skip

    first = [
        row("YC-1", "烟草制品零售", "甲烟酒店", a),
        row("WB-1", "互联网上网服务营业场所", "乙网吧", b),
        row("CP-1", "体育彩票", "丙彩票", c, status="revoked"),
        row("YC-2", "烟草制品零售", "丁烟店", d),
    ]
    summary = import_permits(session_factory, _permits_csv(tmp_path / "a.csv", first), ImportOptions())
    assert summary.added == {"premises": 4, "permits": 4}
    assert any("premises grid" in note for note in summary.notes)
    x, y = tile_of(LON, LAT, 12)
    assert shown(session, 12, x, y) == ({"tobacco": 2, "internet_cafe": 1, "lottery": 1}, 4, 1)
    assert_tiles_agree(session, [a, b, c, d, e])

    # the next registry: 丁烟店 moved to another city, 丙彩票's permit renewed, a new internet café
    far = (LON + 3.0, LAT + 1.0)
    second = [
        row("YC-1", "烟草制品零售", "甲烟酒店", a),
        row("WB-1", "互联网上网服务营业场所", "乙网吧", b),
        row("CP-1", "体育彩票", "丙彩票", c),
        row("YC-2", "烟草制品零售", "丁烟店", far),
        row("WB-2", "互联网上网服务营业场所", "戊网吧", e),
    ]
    summary = import_permits(session_factory, _permits_csv(tmp_path / "b.csv", second), ImportOptions())
    assert summary.added == {"premises": 1, "permits": 1}
    assert shown(session, 12, x, y) == ({"tobacco": 1, "internet_cafe": 2, "lottery": 1}, 4, 0)
    for z in LOW_ZOOMS:  # the moved shop counts in its new tile only
        assert shown(session, z, *tile_of(*far, z)) == ({"tobacco": 1}, 1, 0)
    assert_tiles_agree(session, [a, b, c, d, e, far])
    # cells recounted one by one give the same table as a rebuild from scratch
    recounted = _grid(session)
    assert len(recounted) >= 6 * 2
    premises_grid.refresh_all(session)
    assert _grid(session) == recounted
