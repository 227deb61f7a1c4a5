"""School levels and exclusions from Chinese school names and OSM tags."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geo.levels import chinese_numeral, classify_school, normalise_school_name

K, P, J, S, V, SP = "kindergarten", "primary", "junior", "senior", "vocational", "special"


@pytest.mark.parametrize(
    ("name", "levels"),
    [
        ("五老村幼儿园", {K}),
        ("南京市五老村小学", {P}),
        ("南京市第九初级中学", {J}),
        ("文昌初中", {J}),
        ("南京市第三高级中学", {S}),
        ("南京市第三高级中学文昌初中", {J}),  # the suffix names the campus: the junior part
        ("金陵中学", {J, S}),
        ("南京市第五中学", {J, S}),
        ("南京五中", {J, S}),
        ("南京三中金銮校区", {J, S}),
        ("第二十九中学", {J, S}),
        ("某某九年一贯制学校", {P, J}),
        ("某某完全中学", {J, S}),
        ("某某中等职业学校", {V}),
        ("某某职业高中", {V}),
        ("某某职校", {V}),
        ("某某中专", {V}),
        ("某某特殊教育学校", {SP}),
        ("某某培智学校", {SP}),
        ("某某聋哑学校", {SP}),
        ("某某盲校", {SP}),
        ("臺北市立某某國小", {P}),
        ("臺北市立某某國中", {J}),
        ("某某高中", {S}),
        ("某某幼兒園", {K}),
        ("某某高級中學", {S}),
        ("南京大学附属中学", {J, S}),
        ("南京师范大学附属小学", {P}),
        ("南师附中", {J, S}),
        ("东南大学附属幼儿园", {K}),
        ("某某中学附属小学", {P}),
    ],
)
def test_level_from_name(name: str, levels: set[str]) -> None:
    result = classify_school(name, {})
    assert result.excluded is None
    assert result.levels == levels
    assert "level_unknown" not in result.flags


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("秦淮区委党校", "party_school"),
        ("中共南京市委党校", "party_school"),
        ("秦淮区教师进修学校", "teacher_training"),
        ("南京幼儿高等师范学校", "teacher_training"),
        ("玄武区教师发展中心", "teacher_training"),
        ("南京大学", "university"),
        ("金陵协和神学院", "university"),
        ("南京某某高等专科学校", "university"),
        ("新东方英语培训学校", "tutoring"),
        ("学而思课外辅导", "tutoring"),
        ("某某补习班", "tutoring"),
        ("某某教育咨询有限公司", "tutoring"),
    ],
)
def test_not_protected_schools_are_excluded_with_reason(name: str, reason: str) -> None:
    result = classify_school(name, {"amenity": "school"})
    assert result.excluded == reason
    assert result.levels == frozenset()


@pytest.mark.parametrize(
    "name", ["南京大学附属中学", "南京师范大学附属小学", "南京师范大学附属幼儿园", "南师附中", "北大附小"]
)
def test_university_affiliated_schools_are_schools(name: str) -> None:
    result = classify_school(name, {"amenity": "school"})
    assert result.excluded is None
    assert result.levels
    assert "affiliated" in result.flags


def test_unknown_level_is_flagged_not_excluded() -> None:
    result = classify_school("南京外国语学校国际部", {"amenity": "school"})
    assert result.excluded is None
    assert result.levels == frozenset()
    assert result.flags == ("level_unknown",)
    assert classify_school(None, {"amenity": "school"}).flags == ("level_unknown",)


@pytest.mark.parametrize(
    ("tags", "levels"),
    [
        ({"amenity": "kindergarten"}, {K}),
        ({"amenity": "school", "isced:level": "1;2"}, {P, J}),
        ({"amenity": "school", "isced:level": "1-3"}, {P, J, S}),
        ({"amenity": "school", "school:level": "primary"}, {P}),
        ({"amenity": "school", "school": "secondary"}, {J, S}),
        ({"amenity": "school", "name:zh": "长江路小学"}, {P}),
    ],
)
def test_level_from_tags(tags: dict[str, str], levels: set[str]) -> None:
    assert classify_school(tags.get("name"), tags).levels == levels


def test_tag_and_name_levels_combine() -> None:
    assert classify_school("某某小学", {"isced:level": "2"}).levels == {P, J}


def test_university_tag_is_excluded() -> None:
    assert classify_school("Some Institute", {"amenity": "university"}).excluded == "university"
    assert classify_school("某某托管中心", {"amenity": "school"}).excluded == "tutoring"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("南京市第五中学", "南京五中"),
        ("南京市第二十九中学", "南京29中"),
        ("江苏省南京市第一中学", "南京一中"),
    ],
)
def test_normalised_names_match(a: str, b: str) -> None:
    assert normalise_school_name(a) == normalise_school_name(b)


def test_normalised_names_keep_different_schools_apart() -> None:
    assert normalise_school_name("南京五中") != normalise_school_name("南京九中")
    assert normalise_school_name("南京市第五中学") != normalise_school_name("南京市第五十中学")


@pytest.mark.parametrize(
    ("text", "value"),
    [("五", 5), ("十", 10), ("十二", 12), ("二十", 20), ("二十九", 29), ("一百零一", 101), ("二九", 29)],
)
def test_chinese_numeral(text: str, value: int) -> None:
    assert chinese_numeral(text) == value


def test_chinese_numeral_rejects_other_text() -> None:
    with pytest.raises(ValueError, match="学"):
        chinese_numeral("五学")


_DIGITS = "零一二三四五六七八九"


def _to_chinese(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    tens, ones = divmod(rest, 10)
    out = f"{_DIGITS[hundreds]}百" if hundreds else ""
    if tens:
        out += ("" if tens == 1 and not hundreds else _DIGITS[tens]) + "十"
    elif hundreds and ones:
        out += "零"
    if ones:
        out += _DIGITS[ones]
    return out


@given(st.integers(min_value=1, max_value=999))
def test_chinese_numeral_round_trip(n: int) -> None:
    assert chinese_numeral(_to_chinese(n)) == n


# Characters that form no level or exclusion keyword on their own or with the suffixes below.
_PLAIN = st.text(alphabet="东西南北山水湖路街阳光明新华金陵长江红花", min_size=1, max_size=8)


@given(_PLAIN)
def test_affiliated_school_of_any_university_is_a_school(prefix: str) -> None:
    result = classify_school(f"{prefix}大学附属中学", {})
    assert result.excluded is None
    assert result.levels == {J, S}


@given(_PLAIN, st.sampled_from(["幼儿园", "小学", "初级中学", "高级中学", "特殊教育学校"]))
def test_suffix_decides_level_for_any_prefix(prefix: str, suffix: str) -> None:
    expected = {"幼儿园": {K}, "小学": {P}, "初级中学": {J}, "高级中学": {S}, "特殊教育学校": {SP}}[suffix]
    assert classify_school(prefix + suffix, {}).levels == expected


@given(st.text(max_size=30))
def test_classify_never_fails_and_is_consistent(name: str) -> None:
    result = classify_school(name, {"amenity": "school"})
    assert (result.excluded is None) or not result.levels
    assert ("level_unknown" in result.flags) == (result.excluded is None and not result.levels)
