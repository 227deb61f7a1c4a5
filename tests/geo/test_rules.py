"""Rule packs: loading, validation messages, layering, statutory floors, version."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from geo.errors import InvalidInput, RulePackError
from geo.rules import LEVELS, RuleRegistry

ON = date(2025, 1, 1)
NATIONAL_TABLE = {
    # id: (distance, from, to, metric, applies_to, existing)
    "internet_cafe.school": (200, "boundary", "location", "straight", {"new", "relocation"}, "indefinite"),
    "internet_cafe.kindergarten": (
        100,
        "boundary",
        "location",
        "straight",
        {"new", "relocation"},
        "not_renewed",
    ),
    "entertainment.school": (200, "boundary", "location", "straight", {"new", "relocation"}, "indefinite"),
    "entertainment.kindergarten": (
        100,
        "boundary",
        "location",
        "straight",
        {"new", "relocation"},
        "not_renewed",
    ),
    "bar": (200, "boundary", "location", "straight", {"new", "relocation"}, "not_renewed"),
    "tobacco": (50, "gates", "location", "straight", {"new", "relocation", "renewal"}, "not_renewed"),
    "alcohol": (50, "gates", "location", "straight", {"new", "relocation"}, "not_renewed"),
    "lottery": (200, "gates", "location", "straight", {"new", "relocation", "renewal"}, "not_renewed"),
    "polluter": (None, "boundary", "footprint", "straight", {"new", "expansion", "relocation"}, "indefinite"),
    "hazardous": (
        100,
        "boundary",
        "footprint",
        "straight",
        {"new", "relocation", "expansion", "renewal"},
        "prohibited",
    ),
}


@pytest.fixture(scope="module")
def registry() -> RuleRegistry:
    return RuleRegistry.load()


@pytest.fixture
def packs_dir(tmp_path: Path) -> Path:
    """A writable copy of the shipped packs."""
    target = tmp_path / "rules"
    shutil.copytree(RuleRegistry.load.__globals__["DEFAULT_DIRECTORY"], target)
    return target


def _edit(path: Path, edit) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _rule(data: dict, rule_id: str) -> dict:
    return next(r for r in data["rules"] if r["id"] == rule_id)


def _by_id(rules) -> dict:
    return {r.id: r for r in rules}


# --- the shipped packs ------------------------------------------------------------------------------


def test_national_pack_matches_design_table(registry: RuleRegistry) -> None:
    national = _by_id(registry.in_force("110101", on=ON).rules)
    assert set(national) == set(NATIONAL_TABLE)
    for rule_id, (dist, frm, to, metric, applies, existing) in NATIONAL_TABLE.items():
        rule = national[rule_id]
        assert (rule.distance_m, rule.measure_from, rule.measure_to, rule.metric) == (dist, frm, to, metric)
        assert set(rule.applies_to) == applies, rule_id
        assert rule.existing == existing, rule_id
        assert rule.jurisdiction == "national"
        assert rule.confirmed is False
        assert rule.legal_basis.citation and rule.legal_basis.text
    assert national["polluter"].distance_source == "business"
    assert national["internet_cafe.school"].statutory_min_m == 200
    assert "第九条" in national["internet_cafe.school"].legal_basis.citation
    assert set(national["internet_cafe.school"].levels) == LEVELS - {"kindergarten"}
    assert set(national["internet_cafe.kindergarten"].levels) == {"kindergarten"}
    assert set(national["bar"].levels) == LEVELS


def test_every_department_has_a_chinese_name(registry: RuleRegistry) -> None:
    names = registry.departments
    for pack in registry.packs:
        for item in (*pack.rules, *pack.staffing):
            for dept in (item.lead_department, *item.cooperating_departments):
                assert re.search(r"[\u4e00-\u9fff]", names[dept]), dept


def test_guilin_county_gets_food_stall_100m_and_national_rules(registry: RuleRegistry) -> None:
    force = registry.in_force("450302", on=ON)  # 秀峰区, no pack of its own
    assert force.packs == ("national", "450300")
    assert force.flags == ()
    rules = _by_id(force.rules)
    stall = rules["food_stall.gate"]
    assert (stall.distance_m, stall.measure_from, stall.measure_to, stall.existing) == (
        100,
        "gates",
        "footprint",
        "prohibited",
    )
    assert set(stall.applies_to) == {"new", "relocation", "expansion", "renewal"}
    assert "100米" in stall.legal_basis.text and "五（三）" in stall.legal_basis.citation
    assert rules["entertainment.school"].measure_to == "footprint"  # venue's outer edge
    assert rules["entertainment.school"].jurisdiction == "450300"
    assert rules["tobacco"].jurisdiction == "national"
    assert set(NATIONAL_TABLE) <= set(rules)
    assert [s.kind for s in force.staffing] == ["guilin_bands"]


@pytest.mark.parametrize("adcode", ["500103", "500230", "500000"])
def test_chongqing_districts_and_counties_get_50m(registry: RuleRegistry, adcode: str) -> None:
    force = registry.in_force(adcode, on=ON)
    assert force.packs[:2] == ("national", "500000")
    rules = registry.rules_for_category(adcode, "food_stall", on=ON)
    assert [(r.id, r.distance_m, r.jurisdiction) for r in rules] == [("food_stall.gate", 50, "500000")]
    assert "第二十八条" in rules[0].legal_basis.citation
    assert [(s.kind, s.params) for s in force.staffing] == [("per_school_minimum", {"minimum": 1})]


def test_beijing_gets_national_only_and_is_not_unknown(registry: RuleRegistry) -> None:
    force = registry.in_force("110101", on=ON)
    assert force.packs == ("national",)
    assert force.flags == ()
    assert registry.rules_for_category("110101", "food_stall", on=ON) == ()


def test_no_district_is_judged_nationally_and_flagged(registry: RuleRegistry) -> None:
    force = registry.in_force(None, on=ON)
    assert force.flags == ("jurisdiction_unknown",)
    assert force.packs == ("national",)
    assert {r.jurisdiction for r in force.rules} == {"national"}


def test_default_adcode_applies_its_packs_but_keeps_the_flag() -> None:
    reg = RuleRegistry.load(default_adcode="450300")
    force = reg.in_force(None, on=ON)
    assert force.flags == ("jurisdiction_unknown",)
    assert "food_stall.gate" in _by_id(force.rules)


def test_guangdong_walking_rules_keep_the_statutory_internet_cafe_rule(registry: RuleRegistry) -> None:
    rules = _by_id(registry.in_force("440106", on=ON).rules)
    kg = rules["internet_cafe.kindergarten"]
    assert (kg.distance_m, kg.metric, kg.measure_from, kg.measure_to) == (100, "walking", "gates", "location")
    assert (rules["entertainment.school"].distance_m, rules["entertainment.school"].metric) == (
        200,
        "walking",
    )
    school = rules["internet_cafe.school"]
    assert (school.jurisdiction, school.metric, school.measure_from) == ("national", "straight", "boundary")


def test_rules_not_yet_effective_are_not_in_force(registry: RuleRegistry) -> None:
    before = _by_id(registry.in_force("450302", on=date(2019, 11, 13)).rules)
    after = _by_id(registry.in_force("450302", on=date(2019, 11, 14)).rules)
    assert "food_stall.gate" not in before
    assert after["food_stall.gate"].distance_m == 100
    # a local replacement not yet in force leaves the wider rule in force
    assert before["entertainment.school"].jurisdiction == "national"
    assert "internet_cafe.kindergarten" not in before  # national rule effective 2021-06-01


def test_max_distance_and_ids(registry: RuleRegistry) -> None:
    every = [r.distance_m for p in registry.packs for r in p.rules if r.distance_m is not None]
    assert registry.max_distance_m() == max(every) == 200
    assert registry.all_rule_ids() == set(NATIONAL_TABLE) | {"food_stall.gate"}


def test_bad_adcode_is_refused(registry: RuleRegistry) -> None:
    with pytest.raises(InvalidInput, match="'4503'") as info:
        registry.in_force("4503")
    assert info.value.field == "adcode"


# --- layering edits ---------------------------------------------------------------------------------


def _write_pack(directory: Path, name: str, body: dict) -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(body, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _beijing_rule(packs_dir: Path, rule_id: str, **changes) -> dict:
    national = yaml.safe_load((packs_dir / "national.yaml").read_text(encoding="utf-8"))
    rule = dict(_rule(national, rule_id))
    rule.update(jurisdiction="110000", **changes)
    return rule


def test_disabled_removes_an_inherited_rule(packs_dir: Path) -> None:
    _write_pack(
        packs_dir,
        "beijing-110000.yaml",
        {"jurisdiction": "110000", "name": "北京市", "rules": [{"id": "alcohol", "disabled": True}]},
    )
    reg = RuleRegistry.load(packs_dir)
    assert "alcohol" not in _by_id(reg.in_force("110105", on=ON).rules)
    assert "alcohol" in _by_id(reg.in_force("120101", on=ON).rules)


def test_local_rule_below_statutory_floor_is_refused(packs_dir: Path) -> None:
    rule = _beijing_rule(packs_dir, "internet_cafe.school", distance_m=150)
    rule.pop("statutory_min_m")
    _write_pack(packs_dir, "beijing-110000.yaml", {"jurisdiction": "110000", "name": "北京市", "rules": [rule]})
    with pytest.raises(RulePackError) as info:
        RuleRegistry.load(packs_dir)
    msg = str(info.value)
    assert "beijing-110000.yaml" in msg and "'internet_cafe.school'" in msg and "'distance_m'" in msg
    assert "150" in msg and "200" in msg
    assert info.value.field == "distance_m" and info.value.value == 150


def test_statutory_rule_may_not_be_measured_longer(packs_dir: Path) -> None:
    rule = _beijing_rule(packs_dir, "internet_cafe.school", metric="walking")
    _write_pack(packs_dir, "beijing-110000.yaml", {"jurisdiction": "110000", "name": "北京市", "rules": [rule]})
    with pytest.raises(RulePackError, match="'metric'.*'walking'"):
        RuleRegistry.load(packs_dir)


def test_statutory_rule_may_not_be_disabled(packs_dir: Path) -> None:
    _write_pack(
        packs_dir,
        "beijing-110000.yaml",
        {
            "jurisdiction": "110000",
            "name": "北京市",
            "rules": [{"id": "internet_cafe.school", "disabled": True}],
        },
    )
    with pytest.raises(RulePackError, match="beijing-110000.yaml: rule 'internet_cafe.school'"):
        RuleRegistry.load(packs_dir)


def test_local_rule_may_be_stricter_than_the_floor(packs_dir: Path) -> None:
    rule = _beijing_rule(packs_dir, "internet_cafe.school", distance_m=300)
    _write_pack(packs_dir, "beijing-110000.yaml", {"jurisdiction": "110000", "name": "北京市", "rules": [rule]})
    reg = RuleRegistry.load(packs_dir)
    assert _by_id(reg.in_force("110105", on=ON).rules)["internet_cafe.school"].distance_m == 300
    assert reg.max_distance_m() == 300


# --- bad packs name file, rule and field --------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "field", "shown"),
    [
        (lambda r: r.update(distance_m=-5), "distance_m", "-5"),
        (lambda r: r.update(distanse_m=100), "distanse_m", "100"),
        (lambda r: r.update(levels=["primary", "college"]), "levels", "college"),
        (lambda r: r.update(applies_to=["new", "opening"]), "applies_to", "opening"),
        (lambda r: r.update(category="snack_bar"), "category", "snack_bar"),
        (lambda r: r.update(measure_from="fence"), "measure_from", "fence"),
        (lambda r: r.update(effective_from="someday"), "effective_from", "someday"),
        (lambda r: r["legal_basis"].pop("citation"), "legal_basis.citation", "Field required"),
        (lambda r: r.update(lead_department="snack_police"), "lead_department", "snack_police"),
    ],
)
def test_bad_rule_names_file_rule_and_field(packs_dir: Path, edit, field: str, shown: str) -> None:
    path = packs_dir / "guilin-450300.yaml"
    _edit(path, lambda d: edit(_rule(d, "food_stall.gate")))
    with pytest.raises(RulePackError) as info:
        RuleRegistry.load(packs_dir)
    msg = str(info.value)
    assert msg.startswith(f"{path}: rule 'food_stall.gate': field '{field}': "), msg
    assert shown in msg
    assert info.value.field == field
    assert "规则包" in info.value.message_zh and "food_stall.gate" in info.value.message_zh


def test_shipped_packs_are_named_relative_to_the_repo(packs_dir: Path) -> None:
    from geo.rules import _display  # the message form for data/rules/*.yaml

    repo = Path(__file__).resolve().parents[2]
    assert _display(repo / "data" / "rules" / "guilin-450300.yaml") == "data/rules/guilin-450300.yaml"


def test_duplicate_ids_in_one_pack_are_refused(packs_dir: Path) -> None:
    _edit(packs_dir / "guilin-450300.yaml", lambda d: d["rules"].append(dict(_rule(d, "food_stall.gate"))))
    with pytest.raises(RulePackError, match=r"guilin-450300.yaml: rule 'food_stall.gate': field 'id': duplicate"):
        RuleRegistry.load(packs_dir)


def test_unknown_pack_key_is_refused(packs_dir: Path) -> None:
    _edit(packs_dir / "chongqing-500000.yaml", lambda d: d.update(rulez=[]))
    with pytest.raises(RulePackError, match=r"chongqing-500000.yaml: field 'rulez'"):
        RuleRegistry.load(packs_dir)


def test_bad_staffing_params_are_refused(packs_dir: Path) -> None:
    _edit(packs_dir / "guilin-450300.yaml", lambda d: d["staffing"][0]["params"].update(students_step=0))
    with pytest.raises(RulePackError, match=r"rule 'staffing.security_guards': field 'params'"):
        RuleRegistry.load(packs_dir)


def test_rule_jurisdiction_must_match_its_pack(packs_dir: Path) -> None:
    _edit(packs_dir / "guilin-450300.yaml", lambda d: _rule(d, "food_stall.gate").update(jurisdiction="450100"))
    with pytest.raises(RulePackError, match=r"field 'jurisdiction'.*'450100'"):
        RuleRegistry.load(packs_dir)


# --- version -------------------------------------------------------------------------------------------


def test_version_follows_content_not_formatting(packs_dir: Path) -> None:
    v0 = RuleRegistry.load(packs_dir).version
    assert re.fullmatch(r"[0-9a-f]{16}", v0)
    assert RuleRegistry.load().version == v0  # same content as the shipped packs
    path = packs_dir / "national.yaml"
    path.write_text("# a comment changes nothing\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    assert RuleRegistry.load(packs_dir).version == v0
    _edit(path, lambda d: _rule(d, "tobacco").update(distance_m=60))
    v1 = RuleRegistry.load(packs_dir).version
    assert v1 != v0
    _edit(path, lambda d: _rule(d, "tobacco").update(distance_m=50))
    assert RuleRegistry.load(packs_dir).version == v0


def test_unquoted_adcodes_are_read_as_strings(packs_dir: Path) -> None:
    path = packs_dir / "guilin-450300.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('"450300"', "450300"), encoding="utf-8")
    reg = RuleRegistry.load(packs_dir)
    assert reg.rules_for_category("450302", "food_stall", on=ON)[0].jurisdiction == "450300"
