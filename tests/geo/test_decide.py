"""Decisions: classify at its boundaries, fallbacks, and evaluate() on tiny hand-made campuses."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon, box
from shapely.ops import transform

from geo.decide import (
    CampusInfo,
    DecisionSettings,
    GateInfo,
    Site,
    classify,
    evaluate,
    uncertainty,
    worst,
)
from geo.errors import CoordinateError, GeometryError, InvalidInput
from geo.network import WalkingNetwork
from geo.rules import DEFAULT_DIRECTORY, RuleRegistry

ON = date(2025, 3, 1)
# Xinjiekou, Nanjing: a local azimuthal equidistant frame in metres (x east, y north)
LON0, LAT0 = 118.7788, 32.0415
_TO_LONLAT = Transformer.from_crs(
    f"+proj=aeqd +lat_0={LAT0} +lon_0={LON0} +ellps=WGS84 +units=m", "EPSG:4326", always_xy=True
)
EXACT = DecisionSettings(default_school_accuracy_m=0.0)


def ll(geom):
    """Local metres → WGS84 lon/lat."""
    return transform(_TO_LONLAT.transform, geom)


def pt(x: float, y: float) -> Point:
    return ll(Point(x, y))


def campus(
    levels: set[str],
    *,
    name: str = "游府西街小学",
    gates: tuple[GateInfo, ...] = (),
    accuracy_m: float | None = 0.0,
    outline=None,
) -> CampusInfo:
    """A 100 m × 100 m campus centred on the frame origin: its east edge is x = 50, south edge y = -50."""
    return CampusInfo(
        school_id=1,
        school_name=name,
        campus_id=f"{name}-main",
        levels=frozenset(levels),
        outline=ll(box(-50, -50, 50, 50)) if outline is None else outline,
        point_only=outline is not None and outline.geom_type == "Point",
        accuracy_m=accuracy_m,
        gates=gates,
    )


def site(x: float, y: float, category: str, application: str = "new", **kw) -> Site:
    return Site(geometry=pt(x, y), category=category, application=application, on=ON, **kw)


@pytest.fixture(scope="module")
def registry() -> RuleRegistry:
    return RuleRegistry.load()


@pytest.fixture(scope="module")
def nanjing(registry: RuleRegistry):
    return registry.in_force("320102", on=ON)  # 玄武区: national rules


@pytest.fixture(scope="module")
def guangdong(registry: RuleRegistry):
    return registry.in_force("440106", on=ON)


def rule_result(result, rule_id: str):
    return next(r for r in result.rules if r.rule.id == rule_id)


# --- classify ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "expected"),
    [(49.999, "prohibited"), (50.0, "prohibited"), (50.0 + 2e-10, "prohibited"), (50.00001, "allowed")]
    + [(50.001, "allowed")],
)
def test_classify_is_inclusive_at_u_zero(d: float, expected: str) -> None:
    assert classify(d, 50, 0) == expected


@pytest.mark.parametrize(
    ("d", "expected"),
    [(44.0, "prohibited"), (45.0, "prohibited"), (46.0, "review"), (54.0, "review"), (55.0, "review")]
    + [(56.0, "allowed")],
)
def test_classify_review_band_of_u(d: float, expected: str) -> None:
    assert classify(d, 50, 5) == expected  # band (45, 55]


@pytest.mark.parametrize(("d", "expected"), [(0.0, "review"), (44.0, "review"), (55.0, "review"), (56.0, "allowed")])
def test_underestimating_fallback_only_confirms_allowed(d: float, expected: str) -> None:
    assert classify(d, 50, 5, underestimate=True) == expected


@pytest.mark.parametrize(
    ("d", "expected"),
    [(44.0, "prohibited"), (45.0, "prohibited"), (56.0, "review"), (155.0, "review")] + [(156.0, "allowed")],
)
def test_point_only_school_needs_its_radius_to_be_allowed(d: float, expected: str) -> None:
    assert classify(d, 50, 5, point_only_radius_m=100) == expected


def test_classify_refuses_nonsense() -> None:
    with pytest.raises(InvalidInput, match="nan"):
        classify(float("nan"), 50, 0)
    with pytest.raises(InvalidInput, match="-1"):
        classify(10, 50, -1)


@given(
    d=st.floats(0, 1000),
    more=st.floats(0, 500),
    D=st.floats(1, 500),
    u=st.floats(0, 20),
    under=st.booleans(),
    radius=st.one_of(st.none(), st.floats(0, 200)),
)
def test_a_larger_distance_never_flags_more(d, more, D, u, under, radius) -> None:  # noqa: N803
    sev = {"allowed": 0, "review": 1, "prohibited": 2}
    near = classify(d, D, u, underestimate=under, point_only_radius_m=radius)
    far = classify(d + more, D, u, underestimate=under, point_only_radius_m=radius)
    assert sev[far] <= sev[near]
    # a larger zone never flags fewer
    assert sev[classify(d, D + more, u, underestimate=under, point_only_radius_m=radius)] >= sev[near]
    if under:
        assert near != "prohibited"


def test_worst() -> None:
    assert worst([]) == "allowed"
    assert worst(["allowed", "review"]) == "review"
    assert worst(["review", "prohibited", "allowed"]) == "prohibited"


def test_uncertainty_adds_the_cgcs2000_metre() -> None:
    assert uncertainty(site_accuracy_m=3, school_accuracy_m=5, crs="wgs84") == 8
    assert uncertainty(site_accuracy_m=3, school_accuracy_m=5, crs="cgcs2000") == 9
    with pytest.raises(CoordinateError, match="'epsg3857'") as info:
        uncertainty(site_accuracy_m=0, school_accuracy_m=5, crs="epsg3857")
    assert info.value.field == "crs"


# --- evaluate: hand-made campuses ----------------------------------------------------------------------


@pytest.mark.parametrize(("gap", "expected"), [(199.0, "prohibited"), (201.0, "allowed")])
def test_internet_cafe_199_vs_201_m_from_a_primary_outline(nanjing, gap: float, expected: str) -> None:
    result = evaluate(site(50 + gap, 0, "internet_cafe"), nanjing, [campus({"primary"})], settings=EXACT)
    assert result.outcome == expected
    rr = rule_result(result, "internet_cafe.school")
    assert rr.limit_m == 200 and "第九条" in rr.rule.legal_basis.citation
    assert rr.nearest is not None
    assert rr.nearest.school_name == "游府西街小学"
    assert rr.nearest.method == "boundary"
    assert rr.nearest.distance_m == pytest.approx(gap, abs=0.05)
    assert rr.nearest.margin_m == pytest.approx(gap - 200, abs=0.05)
    assert rr.nearest.from_point.distance(pt(50, 0)) < 1e-6  # the east edge, opposite the café
    assert [c.campus_id for c in rr.within] == (["游府西街小学-main"] if expected == "prohibited" else [])
    # the kindergarten rule does not protect a primary school
    kg = rule_result(result, "internet_cafe.kindergarten")
    assert kg.nearest is None and kg.outcome == "allowed"


def test_school_accuracy_opens_a_review_band(nanjing) -> None:
    # accuracy None → the 5 m default: 199 m lies in (195, 205]
    result = evaluate(
        site(50 + 199, 0, "internet_cafe"),
        nanjing,
        [campus({"primary"}, accuracy_m=None)],
        settings=DecisionSettings(),
    )
    rr = rule_result(result, "internet_cafe.school")
    assert (result.outcome, rr.u, rr.nearest.u_m) == ("review", 5.0, 5.0)
    cgcs = evaluate(
        site(50 + 205.5, 0, "internet_cafe", crs="cgcs2000"),
        nanjing,
        [campus({"primary"}, accuracy_m=None)],
        settings=DecisionSettings(),
    )
    assert cgcs.outcome == "review"  # 205.5 ≤ 200 + 5 + 1


def test_internet_cafe_renewal_is_not_blocked(nanjing) -> None:
    result = evaluate(site(60, 0, "internet_cafe", "renewal"), nanjing, [campus({"primary"})], settings=EXACT)
    assert (result.outcome, result.rules, result.flags) == ("allowed", [], ["no_applicable_rule"])


def _gated(levels={"primary"}, in_use=True) -> CampusInfo:  # noqa: B006
    return campus(levels, gates=(GateInfo("south", pt(0, -50), in_use=in_use),))


@pytest.mark.parametrize(("gap", "expected"), [(49.0, "prohibited"), (51.0, "allowed")])
def test_tobacco_measured_from_the_only_gate(nanjing, gap: float, expected: str) -> None:
    result = evaluate(site(0, -50 - gap, "tobacco"), nanjing, [_gated()], settings=EXACT)
    rr = rule_result(result, "tobacco")
    assert result.outcome == expected
    assert (rr.nearest.method, rr.nearest.gate_id) == ("gates", "south")
    assert rr.nearest.distance_m == pytest.approx(gap, abs=0.05)


def test_tobacco_beside_the_fence_but_far_from_the_gate_is_allowed(nanjing) -> None:
    # 10 m north of the north fence, ~110 m from the south gate
    result = evaluate(site(0, 60, "tobacco"), nanjing, [_gated()], settings=EXACT)
    assert result.outcome == "allowed"
    assert rule_result(result, "tobacco").nearest.distance_m == pytest.approx(110, abs=0.05)


def test_tobacco_with_no_gate_in_use_falls_back_to_the_fence(nanjing) -> None:
    result = evaluate(site(0, 60, "tobacco"), nanjing, [_gated(in_use=False)], settings=EXACT)
    rr = rule_result(result, "tobacco")
    assert result.outcome == "review"  # 10 m to the fence underestimates: never prohibited
    assert (rr.nearest.method, rr.nearest.flags) == ("boundary", ["gate_unknown"])
    assert rr.nearest.distance_m == pytest.approx(10, abs=0.05)
    far = evaluate(site(0, 120, "tobacco"), nanjing, [_gated(in_use=False)], settings=EXACT)
    assert far.outcome == "allowed"  # 70 m even to the fence: surely > 50 m from any gate


def test_unknown_level_school_is_protected_by_the_kindergarten_rule(nanjing) -> None:
    result = evaluate(site(50 + 90, 0, "internet_cafe"), nanjing, [campus(set(), name="无名学校")], settings=EXACT)
    kg = rule_result(result, "internet_cafe.kindergarten")
    assert kg.outcome == "prohibited"
    assert [c.school_name for c in kg.within] == ["无名学校"]
    assert "level_unknown" in kg.flags and "level_unknown" in result.flags
    assert rule_result(result, "internet_cafe.school").outcome == "prohibited"


def test_kindergarten_is_not_protected_by_the_school_rule(nanjing) -> None:
    kindergarten = campus({"kindergarten"}, name="鼓楼幼儿园")
    at_150 = evaluate(site(50 + 150, 0, "internet_cafe"), nanjing, [kindergarten], settings=EXACT)
    assert at_150.outcome == "allowed"  # 150 m: outside 100 m, and the 200 m rule is for schools
    school_rule = rule_result(at_150, "internet_cafe.school")
    assert (school_rule.nearest, school_rule.within) == (None, [])
    at_90 = evaluate(site(50 + 90, 0, "internet_cafe"), nanjing, [kindergarten], settings=EXACT)
    assert at_90.outcome == "prohibited"
    assert rule_result(at_90, "internet_cafe.kindergarten").within[0].school_name == "鼓楼幼儿园"


def test_nine_year_school_is_protected_as_primary_and_junior(nanjing) -> None:
    nine = campus({"nine_year"}, name="九年制学校")
    assert nine.levels == {"primary", "junior"}
    result = evaluate(site(50 + 150, 0, "internet_cafe"), nanjing, [nine], settings=EXACT)
    assert result.outcome == "prohibited"


def test_nearest_and_within_over_several_campuses(nanjing) -> None:
    near = campus({"senior"}, name="金陵中学")
    far_outline = ll(box(300, -50, 400, 50))
    far = CampusInfo(2, "人民中学", "人民中学-main", frozenset({"junior"}), far_outline, False, 0.0)
    result = evaluate(site(200, 0, "bar"), nanjing, [far, near], settings=EXACT)
    rr = rule_result(result, "bar")
    assert rr.nearest.school_name == "人民中学"  # 100 m vs 150 m
    assert [c.school_name for c in rr.within] == ["人民中学", "金陵中学"]


def test_point_only_school(nanjing) -> None:
    point_school = campus({"primary"}, outline=pt(0, 0))
    settings = DecisionSettings(default_school_accuracy_m=0.0, campus_radius_m={"primary": 80.0, "unknown": 150})
    inside = evaluate(site(190, 0, "internet_cafe"), nanjing, [point_school], settings=settings)
    assert inside.outcome == "prohibited"
    band = evaluate(site(270, 0, "internet_cafe"), nanjing, [point_school], settings=settings)
    assert band.outcome == "review"  # 270 ≤ 200 + 80
    assert "school_point_only" in rule_result(band, "internet_cafe.school").flags
    clear = evaluate(site(281, 0, "internet_cafe"), nanjing, [point_school], settings=settings)
    assert clear.outcome == "allowed"


def test_polluter_uses_its_own_protection_distance(nanjing) -> None:
    with pytest.raises(InvalidInput, match="protection_distance_m") as info:
        evaluate(site(50 + 250, 0, "polluter"), nanjing, [campus({"primary"})], settings=EXACT)
    assert info.value.field == "protection_distance_m"
    near = site(50 + 250, 0, "polluter", protection_distance_m=300)
    result = evaluate(near, nanjing, [campus({"primary"})], settings=EXACT)
    rr = rule_result(result, "polluter")
    assert (result.outcome, rr.limit_m) == ("prohibited", 300)
    ok = evaluate(
        site(50 + 250, 0, "polluter", protection_distance_m=200),
        nanjing,
        [campus({"primary"})],
        settings=EXACT,
    )
    assert ok.outcome == "allowed"


def test_guilin_food_stall_is_measured_to_the_vending_area_edge(registry: RuleRegistry) -> None:
    guilin = registry.in_force("450302", on=ON)
    # a vending area 60 m × 60 m whose near edge is 95 m south of the gate; its centre is 125 m away
    area = ll(box(-30, -50 - 155, 30, -50 - 95))
    stall = Site(geometry=area, category="food_stall", application="new", on=ON)
    result = evaluate(stall, guilin, [_gated()], settings=EXACT)
    rr = rule_result(result, "food_stall.gate")
    assert result.outcome == "prohibited"
    assert rr.nearest.distance_m == pytest.approx(95, abs=0.05)
    assert rr.rule.existing == "prohibited"


# --- walking (Guangdong) -------------------------------------------------------------------------------


def _l_shaped_network() -> WalkingNetwork:
    """From the south gate 100 m south, then 100 m east: the only way to the café."""
    return WalkingNetwork.from_edges(
        [
            (1, 2, LineString([pt(0, -50), pt(0, -150)])),
            (2, 3, LineString([pt(0, -150), pt(100, -150)])),
        ]
    )


def test_walking_door_to_door(guangdong) -> None:
    kindergarten = campus({"kindergarten"}, name="东山幼儿园", gates=(GateInfo("south", pt(0, -50)),))
    cafe = site(100, -150, "internet_cafe")  # ~141 m straight from the gate, 200 m on foot
    result = evaluate(cafe, guangdong, [kindergarten], network=_l_shaped_network(), settings=EXACT)
    rr = rule_result(result, "internet_cafe.kindergarten")
    assert rr.nearest.method == "walking"
    assert rr.nearest.distance_m == pytest.approx(200, abs=0.5)
    assert rr.nearest.path is not None
    assert result.outcome == "allowed"


def test_walking_without_network_measures_straight_and_flags(guangdong) -> None:
    kindergarten = campus({"kindergarten"}, name="东山幼儿园", gates=(GateInfo("south", pt(0, -50)),))
    near = evaluate(site(0, -50 - 80, "internet_cafe"), guangdong, [kindergarten], settings=EXACT)
    rr = rule_result(near, "internet_cafe.kindergarten")
    assert (near.outcome, rr.nearest.method) == ("review", "gates")  # 80 m straight: cannot prohibit
    assert "network_unavailable" in rr.flags
    far = evaluate(site(0, -50 - 101, "internet_cafe"), guangdong, [kindergarten], settings=EXACT)
    assert far.outcome == "allowed"


# --- rules are data ------------------------------------------------------------------------------------


def test_changing_a_yaml_value_changes_the_answer(tmp_path: Path) -> None:
    packs = tmp_path / "rules"
    shutil.copytree(DEFAULT_DIRECTORY, packs)
    shop = site(0, -50 - 40, "tobacco")  # 40 m from the gate
    before = evaluate(shop, RuleRegistry.load(packs).in_force("320102", on=ON), [_gated()], settings=EXACT)
    assert before.outcome == "prohibited"
    path = packs / "national.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    next(r for r in data["rules"] if r["id"] == "tobacco")["distance_m"] = 30
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    after_reg = RuleRegistry.load(packs)
    after = evaluate(shop, after_reg.in_force("320102", on=ON), [_gated()], settings=EXACT)
    assert after.outcome == "allowed"
    assert rule_result(after, "tobacco").limit_m == 30
    assert after_reg.version != RuleRegistry.load().version


def test_jurisdiction_unknown_flag_is_carried(registry: RuleRegistry) -> None:
    result = evaluate(site(300, 0, "bar"), registry.in_force(None, on=ON), [campus({"primary"})], settings=EXACT)
    assert result.outcome == "allowed"
    assert "jurisdiction_unknown" in result.flags


# --- input checks --------------------------------------------------------------------------------------


def test_bad_sites_are_refused() -> None:
    with pytest.raises(InvalidInput, match="'karaoke'") as info:
        site(0, 0, "karaoke")
    assert info.value.field == "category"
    with pytest.raises(InvalidInput, match="'opening'"):
        site(0, 0, "bar", "opening")
    with pytest.raises(CoordinateError, match="32.04"):
        Site(geometry=Point(32.04, 118.78), category="bar", application="new", on=ON)
    with pytest.raises(GeometryError):
        Site(geometry=LineString([(0, 0), (1, 1)]), category="bar", application="new", on=ON)
    bowtie = Polygon([(118.0, 32.0), (118.001, 32.001), (118.001, 32.0), (118.0, 32.001)])
    with pytest.raises(GeometryError, match="POLYGON"):
        Site(geometry=bowtie, category="bar", application="new", on=ON)
    with pytest.raises(InvalidInput, match="'university'"):
        campus({"university"})


def test_walking_with_an_unreachable_site_falls_back_to_straight(guangdong) -> None:
    kindergarten = campus({"kindergarten"}, name="东山幼儿园", gates=(GateInfo("south", pt(0, -50)),))
    island = WalkingNetwork.from_edges(
        [
            (1, 2, LineString([pt(0, -50), pt(0, -60)])),
            (3, 4, LineString([pt(20, -130), pt(100, -130)])),  # the café's street, not connected
        ]
    )
    result = evaluate(site(0, -50 - 80, "internet_cafe"), guangdong, [kindergarten], network=island, settings=EXACT)
    rr = rule_result(result, "internet_cafe.kindergarten")
    assert result.outcome == "review"
    assert (rr.nearest.method, rr.nearest.gate_id) == ("gates", "south")
    assert rr.nearest.distance_m == pytest.approx(80, abs=0.05)
    assert "network_unavailable" in rr.flags
