"""The city-wide scan on the real Nanjing extract: the truth table row by row, thresholds, parity with geo/."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from geoalchemy2.shape import from_shape, to_shape
from pyproj import Geod
from shapely.geometry import MultiPoint, Point, Polygon
from sqlalchemy import func, select, text, update

from geo.decide import CampusInfo, DecisionSettings, GateInfo, Site, evaluate
from geo.measure import distance_to_gates, distance_to_outline
from geo.rules import RuleRegistry
from service.importing import ImportOptions, import_osm
from service.scanning import run_scan
from storage import scan as store
from storage.models import Campus, Finding, Gate, Premises, School
from tests.factories import add_premises

GEOD = Geod(ellps="WGS84")
ON = dt.date(2026, 6, 1)
NANJING = "320106"  # 鼓楼区: no Jiangsu pack, national rules apply
RULES = RuleRegistry.load()


@pytest.fixture
def city(session_factory, session, nanjing_osm):  # noqa: ANN001, ANN201
    import_osm(session_factory, nanjing_osm, ImportOptions(created_by="test"))
    return session


def _campus(session, school_name: str) -> dict[str, Any]:  # noqa: ANN001
    campus = session.execute(select(Campus).join(School).where(School.name == school_name)).scalar_one()
    gates = session.scalars(select(Gate).where(Gate.campus_id == campus.id, Gate.in_use).order_by(Gate.id)).all()
    return {
        "id": campus.id,
        "school_id": campus.school_id,
        "outline": to_shape(campus.geom),
        "gates": [to_shape(g.geom) for g in gates],
    }


def _exact(session, campus_id: int, accuracy: float = 0.0) -> None:  # noqa: ANN001
    session.execute(update(Campus).where(Campus.id == campus_id).values(accuracy_m=accuracy))


def _outward_from_gate(campus: dict[str, Any], gate: int, metres: float) -> tuple[float, float]:
    g, c = campus["gates"][gate], campus["outline"].centroid
    az, _, _ = GEOD.inv(c.x, c.y, g.x, g.y)
    _, back, _ = GEOD.inv(g.x, g.y, c.x, c.y)
    lon, lat, _ = GEOD.fwd(g.x, g.y, back + 180.0, metres)
    return lon, lat


def _south_of_outline(campus: dict[str, Any], metres: float) -> tuple[float, float]:
    """``metres`` due south of the outline's southernmost vertex: that vertex is the nearest point."""
    x, y = min(campus["outline"].exterior.coords, key=lambda xy: xy[1])
    lon, lat, _ = GEOD.fwd(x, y, 180.0, metres)
    return lon, lat


def _scan(factory, **kw: Any) -> dict[str, Any]:  # noqa: ANN001
    return run_scan(factory, RULES, on=ON, **kw)


def _findings(session, scan_id: int, premises_id: int) -> list[Finding]:  # noqa: ANN001
    stmt = select(Finding).where(Finding.scan_id == scan_id, Finding.premises_id == premises_id).order_by(Finding.id)
    return list(session.scalars(stmt))


def _one(session, scan_id: int, premises_id: int, campus_id: int, rule: str) -> Finding | None:  # noqa: ANN001
    hits = [f for f in _findings(session, scan_id, premises_id) if f.campus_id == campus_id and f.rule_id == rule]
    assert len(hits) <= 1
    return hits[0] if hits else None


def test_truth_table_row_by_row(city, session_factory) -> None:  # noqa: ANN001
    s = city
    jl = _campus(s, "金陵中学")  # junior + senior, three gates
    at = _outward_from_gate(jl, 0, 30)
    far = _south_of_outline(jl, 320)

    def shop(name: str, permits: list[dict[str, Any]] | None = None, where=at, **kw: Any) -> int:  # noqa: ANN001
        return add_premises(s, name=name, lon=where[0], lat=where[1], district=NANJING, permits=permits, **kw).id

    new = shop("新烟店", [{"category": "tobacco", "issued": dt.date(2022, 3, 1), "expires": dt.date(2028, 1, 1)}])
    old = shop("老烟店", [{"category": "tobacco", "issued": dt.date(2019, 5, 1), "expires": dt.date(2027, 12, 31)}])
    cafe = shop("老网吧", [{"category": "internet_cafe", "issued": dt.date(2001, 1, 1)}])
    haz = shop("烟花爆竹店", [{"category": "hazardous", "issued": dt.date(2001, 1, 1)}])
    undated = shop("无日期烟店", [{"category": "tobacco", "issued": None}])
    black = shop("黑网吧", None, categories=["internet_cafe"])
    expired = shop(
        "过期烟店",
        [{"category": "tobacco", "issued": dt.date(2015, 1, 1), "expires": dt.date(2024, 1, 1)}],
    )
    revoked = shop("吊销烟店", [{"category": "tobacco", "issued": dt.date(2022, 1, 1), "status": "revoked"}])
    outside = shop("远处烟店", [{"category": "tobacco", "issued": dt.date(2022, 3, 1)}], where=far)
    store3 = shop(
        "便利店",
        [{"category": c, "issued": dt.date(2023, 1, 1)} for c in ("tobacco", "alcohol", "lottery")],
    )
    s.commit()
    scan_id = _scan(session_factory)["scan_id"]

    f = _one(s, scan_id, new, jl["id"], "tobacco")
    assert (f.status, f.due_date, f.method) == ("violation", None, "gates")
    assert f.distance_m == pytest.approx(30, abs=0.01) and f.limit_m == 50 and f.lead_department
    f = _one(s, scan_id, old, jl["id"], "tobacco")
    assert (f.status, f.due_date) == ("nonconforming", dt.date(2027, 12, 31))  # not_renewed: goes at expiry
    f = _one(s, scan_id, cafe, jl["id"], "internet_cafe.school")
    assert (f.status, f.due_date, f.method) == ("nonconforming", None, "boundary")  # indefinite
    assert _one(s, scan_id, haz, jl["id"], "hazardous").status == "violation"  # existing: prohibited
    f = _one(s, scan_id, undated, jl["id"], "tobacco")
    assert f.status == "review" and "issue_date_unknown" in f.flags
    f = _one(s, scan_id, black, jl["id"], "internet_cafe.school")
    assert (f.status, f.permit_id) == ("unlicensed", None) and "no_permit" in f.flags
    assert _one(s, scan_id, expired, jl["id"], "tobacco").status == "unlicensed"
    assert _one(s, scan_id, revoked, jl["id"], "tobacco").status == "unlicensed"
    assert [f for f in _findings(s, scan_id, outside) if f.campus_id == jl["id"]] == []
    assert {f.rule_id: f.status for f in _findings(s, scan_id, store3) if f.campus_id == jl["id"]} == {
        "tobacco": "violation",
        "alcohol": "violation",
        "lottery": "violation",
    }


def test_zone_starts_when_the_school_opens(city, session_factory) -> None:  # noqa: ANN001
    s = city
    jl3 = _campus(s, "南京三中金銮校区")
    s.execute(update(School).where(School.id == jl3["school_id"]).values(opened=dt.date(2023, 9, 1)))
    at = _outward_from_gate(jl3, 0, 20)
    before = add_premises(
        s, name="开学前烟店", lon=at[0], lat=at[1], district=NANJING,
        permits=[{"category": "tobacco", "issued": dt.date(2022, 3, 1), "expires": dt.date(2029, 3, 1)}],
    ).id  # fmt: skip
    after = add_premises(
        s, name="开学后烟店", lon=at[0], lat=at[1], district=NANJING,
        permits=[{"category": "tobacco", "issued": dt.date(2024, 3, 1)}],
    ).id  # fmt: skip
    s.commit()
    scan_id = _scan(session_factory)["scan_id"]
    f = _one(s, scan_id, before, jl3["id"], "tobacco")
    assert (f.status, f.due_date) == ("nonconforming", dt.date(2029, 3, 1))
    assert _one(s, scan_id, after, jl3["id"], "tobacco").status == "violation"


@pytest.mark.parametrize(
    ("gate_m", "outline_m", "expected"),
    [(49, 99, "violation"), (50, 100, "violation"), (51, 101, None)],
)
def test_thresholds_with_u_zero(city, session_factory, gate_m, outline_m, expected) -> None:  # noqa: ANN001
    """u = 0 (campus accuracy 0, site accuracy 0): 50 m and 100 m are in, 51 m and 101 m are out."""
    s = city
    jl = _campus(s, "金陵中学")
    _exact(s, jl["id"], 0.0)
    g = _outward_from_gate(jl, 0, gate_m)
    o = _south_of_outline(jl, outline_m)
    tob = add_premises(s, name="烟店", lon=g[0], lat=g[1], district=NANJING,
                       permits=[{"category": "tobacco", "issued": dt.date(2024, 1, 1)}]).id  # fmt: skip
    haz = add_premises(s, name="危化品", lon=o[0], lat=o[1], district=NANJING,
                       permits=[{"category": "hazardous", "issued": dt.date(2024, 1, 1)}]).id  # fmt: skip
    s.commit()
    scan_id = _scan(session_factory)["scan_id"]
    for pid, rule, metres in ((tob, "tobacco", gate_m), (haz, "hazardous", outline_m)):
        f = _one(s, scan_id, pid, jl["id"], rule)
        assert (f.status if f else None) == expected, (rule, metres)
        if f:
            assert f.u_m == 0 and f.distance_m == pytest.approx(metres, abs=0.01)
            assert f.margin_m == pytest.approx(metres - f.limit_m, abs=0.01)


@pytest.mark.parametrize(("metres", "expected"), [(44, "violation"), (46, "review"), (54, "review"), (56, None)])
def test_review_band_with_u_five(city, session_factory, metres, expected) -> None:  # noqa: ANN001
    """u = 5 (campus accuracy 5 m): 1 m inside and outside the band around D − u = 45 and D + u = 55."""
    s = city
    jl = _campus(s, "金陵中学")
    _exact(s, jl["id"], 5.0)
    g = _outward_from_gate(jl, 0, metres)
    pid = add_premises(s, name="烟店", lon=g[0], lat=g[1], district=NANJING,
                       permits=[{"category": "tobacco", "issued": dt.date(2024, 1, 1)}]).id  # fmt: skip
    s.commit()
    f = _one(s, _scan(session_factory)["scan_id"], pid, jl["id"], "tobacco")
    assert (f.status if f else None) == expected
    if f:
        assert f.u_m == 5


def test_premises_paired_apart(city, session_factory) -> None:  # noqa: ANN001
    """Premises beyond the common search box are still judged: a poor position (accuracy 150 m), a protection
    distance of its own (500 m), a point far from its footprint; and the same places with none of that are not."""
    s = city
    jl = _campus(s, "金陵中学")
    _exact(s, jl["id"], 0.0)
    issued = [{"category": "hazardous", "issued": dt.date(2024, 1, 1)}]
    at220, at400 = _south_of_outline(jl, 220), _south_of_outline(jl, 400)
    vague = add_premises(s, name="位置不准的危化品", lon=at220[0], lat=at220[1], district=NANJING, permits=issued,
                         accuracy_m=150.0).id  # fmt: skip
    sharp = add_premises(s, name="位置准确的危化品", lon=at220[0], lat=at220[1], district=NANJING,
                         permits=[dict(issued[0])]).id  # fmt: skip
    works = add_premises(s, name="化工厂", lon=at400[0], lat=at400[1], district=NANJING, protection_distance_m=500.0,
                         permits=[{"category": "polluter", "issued": dt.date(2024, 1, 1)}]).id  # fmt: skip
    near = _south_of_outline(jl, 60)
    lon, lat, _ = GEOD.fwd(near[0], near[1], 180.0, 30)  # a 30 m square, its north edge 60 m from the outline
    square = Polygon(
        [(near[0] - 2e-4, lat), (near[0] + 2e-4, lat), (near[0] + 2e-4, near[1]), (near[0] - 2e-4, near[1])]
    )
    far = _south_of_outline(jl, 1500)
    yard = add_premises(s, name="远处登记的仓库", lon=far[0], lat=far[1], district=NANJING,
                        permits=[dict(issued[0])], footprint=from_shape(square, srid=4326)).id  # fmt: skip
    s.commit()
    scan_id = _scan(session_factory)["scan_id"]

    f = _one(s, scan_id, vague, jl["id"], "hazardous")
    assert (f.status, f.u_m) == ("review", 150) and f.distance_m == pytest.approx(220, abs=0.01)
    assert _one(s, scan_id, sharp, jl["id"], "hazardous") is None  # 220 m > 100 m, u = 0
    f = _one(s, scan_id, works, jl["id"], "polluter")
    assert (f.status, f.limit_m) == ("violation", 500) and f.distance_m == pytest.approx(400, abs=0.01)
    f = _one(s, scan_id, yard, jl["id"], "hazardous")
    assert f.status == "violation" and f.distance_m == pytest.approx(60, abs=0.5)  # to the footprint, not the point


def test_rules_of_the_premises_district(city, session_factory) -> None:  # noqa: ANN001
    """Guilin (450302) adds food_stall.gate 100 m; a Beijing district (110105) has national rules only."""
    s = city
    jl = _campus(s, "金陵中学")
    _exact(s, jl["id"], 0.0)
    at = _outward_from_gate(jl, 0, 99)
    near = _outward_from_gate(jl, 0, 30)
    stall = [{"category": "food_stall", "issued": dt.date(2024, 1, 1)}]
    guilin = add_premises(s, name="桂林摊区", lon=at[0], lat=at[1], district="450302", permits=list(stall)).id
    beijing = add_premises(s, name="北京摊区", lon=at[0], lat=at[1], district="110105", permits=list(stall)).id
    tob = add_premises(s, name="北京烟店", lon=near[0], lat=near[1], district="110105",
                       permits=[{"category": "tobacco", "issued": dt.date(2024, 1, 1)}]).id  # fmt: skip
    nowhere = add_premises(s, name="无区烟店", lon=near[0], lat=near[1], district=None,
                           permits=[{"category": "tobacco", "issued": dt.date(2024, 1, 1)}]).id  # fmt: skip
    s.commit()
    scan_id = _scan(session_factory)["scan_id"]
    f = _one(s, scan_id, guilin, jl["id"], "food_stall.gate")
    assert (f.status, f.limit_m, f.lead_department) == ("violation", 100, "campus_environment_group")
    assert f.distance_m == pytest.approx(99, abs=0.01) and f.district_adcode == "450302"
    assert _findings(s, scan_id, beijing) == []
    f = _one(s, scan_id, tob, jl["id"], "tobacco")
    assert f.status == "violation" and "jurisdiction_unknown" not in f.flags
    assert "jurisdiction_unknown" in _one(s, scan_id, nowhere, jl["id"], "tobacco").flags


def test_walking_rule_measured_straight_is_only_review(city, session_factory) -> None:  # noqa: ANN001
    """Guangdong measures entertainment door to door on foot; straight in SQL underestimates → review."""
    s = city
    jl = _campus(s, "金陵中学")
    at = _outward_from_gate(jl, 0, 30)
    pid = add_premises(s, name="广州KTV", lon=at[0], lat=at[1], district="440104",
                       permits=[{"category": "entertainment", "issued": dt.date(2024, 1, 1)}]).id  # fmt: skip
    s.commit()
    f = _one(s, _scan(session_factory)["scan_id"], pid, jl["id"], "entertainment.school")
    assert f.status == "review" and "network_unavailable" in f.flags and f.method == "gates"


def test_diff_and_warnings_after_moving_a_premises(city, session_factory) -> None:  # noqa: ANN001
    s = city
    jl = _campus(s, "金陵中学")
    near, far = _outward_from_gate(jl, 0, 30), _outward_from_gate(jl, 0, 400)
    moved = add_premises(s, name="搬走的烟店", lon=near[0], lat=near[1], district=NANJING,
                         permits=[{"category": "tobacco", "issued": dt.date(2024, 1, 1)}]).id  # fmt: skip
    s.commit()
    first = _scan(session_factory)["scan_id"]
    # the first scan warns the school of every finding in its zone
    in_zone = set(s.scalars(select(Finding.id).where(Finding.scan_id == first, Finding.school_id == jl["school_id"])))
    first_warned = [w for w in store.school_warnings(s, jl["school_id"]) if w["scan_id"] == first]
    assert moved in {w["finding"]["properties"]["premises_id"] for w in first_warned}
    assert {w["finding"]["id"] for w in first_warned} == in_zone
    s.execute(update(Premises).where(Premises.id == moved).values(geom=func.ST_SetSRID(func.ST_MakePoint(*far), 4326)))
    arrived = add_premises(s, name="新来的网吧", lon=near[0], lat=near[1], district=NANJING,
                           categories=["internet_cafe"]).id  # fmt: skip
    s.commit()
    second = _scan(session_factory)
    diff = store.scan_diff(s, second["scan_id"])
    assert diff["previous_scan"] == first
    assert {(f["properties"]["premises_id"], f["properties"]["rule_id"]) for f in diff["appeared"]} == {
        (arrived, "internet_cafe.school")
    }
    assert (moved, "tobacco") in {
        (f["properties"]["premises_id"], f["properties"]["rule_id"]) for f in diff["disappeared"]
    }
    warned = store.school_warnings(s, jl["school_id"])
    assert [w["finding"]["properties"]["premises_id"] for w in warned if w["scan_id"] == second["scan_id"]] == [arrived]
    assert warned[0]["finding"]["properties"]["premises_name"] == "新来的网吧"


def _campus_infos(session) -> list[CampusInfo]:  # noqa: ANN001
    out = []
    for campus, school in session.execute(select(Campus, School).join(School)).all():
        gates = session.scalars(select(Gate).where(Gate.campus_id == campus.id)).all()
        out.append(
            CampusInfo(
                school_id=school.id,
                school_name=school.name,
                campus_id=campus.id,
                levels=frozenset(school.levels),
                outline=to_shape(campus.geom),
                point_only=campus.point_only,
                accuracy_m=campus.accuracy_m if campus.accuracy_m is not None else school.accuracy_m,
                gates=tuple(GateInfo(g.id, to_shape(g.geom), g.in_use) for g in gates),
                opened=school.opened,
            )
        )
    return out


def test_parity_with_the_pure_geo_path(city, session_factory) -> None:  # noqa: ANN001
    """Every premises × rule × campus: SQL distance = geo.measure to 0.01 m; outcome = geo.decide.classify."""
    s = city
    jl, jl3 = _campus(s, "金陵中学"), _campus(s, "南京三中金銮校区")
    _exact(s, jl["id"], 0.0)
    cats = ("tobacco", "lottery", "internet_cafe", "hazardous", "bar", "entertainment", "food_stall")
    k = 0
    for campus in (jl, jl3):
        for gate in range(len(campus["gates"])):
            for metres in (3, 25, 48, 52, 95, 104, 150, 199, 203, 260):
                lon, lat = _outward_from_gate(campus, gate, metres)
                cat = cats[k % len(cats)]
                district = ("450302", NANJING, "440104", None)[k % 4]
                add_premises(s, name=f"p{k}", lon=lon, lat=lat, district=district, accuracy_m=float(k % 3),
                             permits=[{"category": cat, "issued": dt.date(2024, 1, 1)}])  # fmt: skip
                k += 1
    for metres in (0.5, 60, 99.5, 100.5, 180, 240):
        lon, lat = _south_of_outline(jl, metres)
        add_premises(s, name=f"o{metres}", lon=lon, lat=lat, district=NANJING, categories=["hazardous", "bar"])
    s.commit()
    scan_id = _scan(session_factory)["scan_id"]
    settings = DecisionSettings()
    campuses = _campus_infos(s)
    by_id = {c.campus_id: c for c in campuses}
    found = {
        (f.premises_id, f.rule_id, f.campus_id): f for f in s.scalars(select(Finding).where(Finding.scan_id == scan_id))
    }
    expected: set[tuple[int, str, int]] = set()
    checked = 0
    for p in s.scalars(select(Premises)).all():
        point = to_shape(p.geom)
        footprint = to_shape(p.footprint) if p.footprint is not None else None
        for cat in sorted(set(p.categories) | {pm.category for pm in p.permits}):
            in_force = RULES.in_force(p.district_adcode, on=ON)
            by_shape = {
                shape_kind: evaluate(
                    Site(geom, cat, "new", ON, accuracy_m=p.accuracy_m or 0.0), in_force, campuses, settings=settings
                )
                for shape_kind, geom in (("location", point), ("footprint", footprint or point))
            }
            for rr in by_shape["location"].rules:
                rr = next(r for r in by_shape[rr.rule.measure_to].rules if r.rule.id == rr.rule.id)  # noqa: PLW2901
                for cr in rr.within:
                    key = (p.id, rr.rule.id, cr.campus_id)
                    expected.add(key)
                    f = found.get(key)
                    assert f is not None, (p.name, key, cr.distance_m, cr.outcome)
                    assert f.distance_m == pytest.approx(cr.distance_m, abs=0.01), key
                    assert f.u_m == pytest.approx(cr.u_m) and f.method == cr.method
                    assert (f.status == "review") == (cr.outcome == "review" or "issue_date_unknown" in f.flags), key
                    target = footprint if rr.rule.measure_to == "footprint" and footprint is not None else point
                    campus = by_id[cr.campus_id]
                    gates = [g.point for g in campus.gates if g.in_use]
                    ref = (
                        distance_to_gates(target, gates)[1]
                        if f.method == "gates"
                        else distance_to_outline(target, campus.outline)
                    )
                    assert f.distance_m == pytest.approx(ref.distance_m, abs=0.01), key
                    checked += 1
    assert set(found) == expected
    assert checked >= 40


def _around(lon: float, lat: float, half_x: float, half_y: float) -> Polygon:
    """A rectangle ``2·half_x`` by ``2·half_y`` metres centred on (lon, lat)."""
    corners = []
    for east, north in ((-half_x, -half_y), (half_x, -half_y), (half_x, half_y), (-half_x, half_y)):
        x, y, _ = GEOD.fwd(lon, lat, 90.0, east)
        x, y, _ = GEOD.fwd(x, y, 0.0, north)
        corners.append((x, y))
    return Polygon(corners)


@pytest.mark.parametrize("lat", [18.2, 25.3, 31.9, 39.9, 45.0])
def test_far_pairs_in_the_midlatitude_plane(session, lat) -> None:  # noqa: ANN001
    """Far pairs (400 m – 3 km) are reported from the mid-latitude plane: within 5 mm of geo.measure."""
    lon = 110.3
    outline = _around(lon, lat, 180.0, 120.0)
    gates = [Point(GEOD.fwd(lon, lat, 180.0, 120.0)[:2]), Point(GEOD.fwd(lon, lat, 90.0, 180.0)[:2])]
    sql = text(f"SELECT {store.MIDLATITUDE_DISTANCE} FROM (SELECT ST_GeomFromText(:src, 4326) AS src, "
               "ST_GeomFromText(:dst, 4326) AS dst) x")  # fmt: skip
    worst = 0.0
    for metres in (400.0, 900.0, 1800.0, 2990.0):
        for bearing in (0.0, 37.0, 90.0, 151.0, 200.0, 300.0):
            x, y, _ = GEOD.fwd(lon, lat, bearing, metres)
            for site in (Point(x, y), _around(x, y, 15.0, 10.0)):
                for src, ref in (
                    (outline, distance_to_outline(site, outline).distance_m),
                    (MultiPoint(gates), distance_to_gates(site, gates)[1].distance_m),
                ):
                    got = session.execute(sql, {"src": src.wkt, "dst": site.wkt}).scalar_one()
                    assert got == pytest.approx(ref, abs=0.005), (metres, bearing, site.geom_type, src.geom_type)
                    worst = max(worst, abs(got - ref))
    assert worst > 0.0  # the plane is an approximation: the comparison measured something
