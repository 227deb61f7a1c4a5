"""The OSM category mapping: data-driven, with the real-world traps."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from geo.categories import DEFAULT_MAPPING_PATH, CategoryMapping, load_mapping
from geo.errors import MappingError

_DEFAULT = load_mapping()


@pytest.fixture(scope="module")
def mapping() -> CategoryMapping:
    return _DEFAULT


@pytest.mark.parametrize(
    ("tags", "name", "expected"),
    [
        # traps
        ({"shop": "wine", "building": "yes"}, "七天连锁酒店", ()),
        ({"amenity": "bar"}, "Party时代KTV", ("entertainment",)),
        ({"amenity": "bar"}, "欢乐歌厅", ("entertainment",)),
        ({"shop": "beverages"}, "一点点奶茶", ()),
        ({"tourism": "hotel"}, "金陵饭店", ()),
        ({}, "锦江之星酒店", ()),
        ({"building": "yes"}, "江苏省烟草专卖局", ()),
        ({"amenity": "restaurant"}, "四川酒家", ()),
        # tags
        ({"amenity": "bar"}, "Beer Hero", ("bar",)),
        ({"amenity": "pub"}, None, ("bar",)),
        ({"amenity": "internet_cafe"}, None, ("internet_cafe",)),
        ({"shop": "lottery"}, None, ("lottery",)),
        ({"shop": "tobacco"}, None, ("tobacco",)),
        ({"shop": "e-cigarette"}, None, ("tobacco",)),
        ({"shop": "alcohol"}, None, ("alcohol",)),
        ({"shop": "wine"}, "名酒行", ("alcohol",)),
        ({"leisure": "amusement_arcade"}, None, ("entertainment",)),
        ({"amenity": "marketplace"}, "香铺营集贸市场", ("food_stall",)),
        # name keywords
        ({}, "星空网吧", ("internet_cafe",)),
        ({}, "极速网咖", ("internet_cafe",)),
        ({}, "中国福利彩票", ("lottery",)),
        ({}, "中国体育彩票", ("lottery",)),
        ({"shop": "convenience"}, "好运烟酒店", ("alcohol", "tobacco")),
        ({}, "悦刻电子烟", ("tobacco",)),
        ({}, "金曲ktv", ("entertainment",)),
        ({}, "欢乐歌舞厅", ("entertainment",)),
        ({}, "动感游戏厅", ("entertainment",)),
        ({}, "大玩家电玩城", ("entertainment",)),
        ({}, "老街清吧", ("bar",)),
        # nothing
        ({"shop": "convenience"}, "便利蜂", ()),
        ({"amenity": "cafe"}, "Ananas Dessert Bar", ()),
        ({}, None, ()),
    ],
)
def test_classify(mapping: CategoryMapping, tags: dict[str, str], name: str | None, expected: tuple) -> None:
    assert mapping.classify(tags, name) == expected


def test_name_is_read_from_tags_when_not_given(mapping: CategoryMapping) -> None:
    assert mapping.classify({"amenity": "bar", "name": "Party时代KTV"}) == ("entertainment",)
    assert mapping.classify({"name:zh": "星空网吧"}) == ("internet_cafe",)


def test_result_is_sorted_and_multi_category(mapping: CategoryMapping) -> None:
    result = mapping.classify({"shop": "tobacco"}, "福彩烟酒超市")
    assert result == ("alcohol", "lottery", "tobacco")


def test_default_path_is_the_repository_file(mapping: CategoryMapping) -> None:
    assert DEFAULT_MAPPING_PATH.name == "osm_categories.yaml"
    assert DEFAULT_MAPPING_PATH.parent.name == "mappings"
    assert mapping.path == str(DEFAULT_MAPPING_PATH)
    assert "internet_cafe" in mapping.categories


def _copy(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(DEFAULT_MAPPING_PATH.read_text(encoding="utf-8"))
    edit(raw)
    out = tmp_path / "osm_categories.yaml"
    out.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


def test_editing_the_yaml_changes_categories_without_code(tmp_path: Path) -> None:
    default = load_mapping()
    assert default.classify({}, "老王棋牌室") == ()
    assert default.classify({"shop": "wine"}, "七天连锁酒店") == ()

    def edit(raw: dict) -> None:
        for rule in raw["rules"]:
            if rule["id"] == "entertainment_name":
                rule["name_any"].append("棋牌")
        raw["rules"] = [r for r in raw["rules"] if r["id"] != "hotel_is_not_alcohol"]

    edited = load_mapping(_copy(tmp_path, edit))
    assert edited.classify({}, "老王棋牌室") == ("entertainment",)
    # without the hotel trap rule the shop=wine hotel would be an alcohol shop
    assert edited.classify({"shop": "wine"}, "七天连锁酒店") == ("alcohol",)


def test_unknown_category_names_file_and_rule(tmp_path: Path) -> None:
    def edit(raw: dict) -> None:
        raw["rules"][3]["add"] = ["casino_royale"]

    path = _copy(tmp_path, edit)
    rule_id = yaml.safe_load(path.read_text(encoding="utf-8"))["rules"][3]["id"]
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    err = info.value
    assert str(path) in err.message_en
    assert rule_id in err.message_en
    assert "casino_royale" in err.message_en
    assert "类别映射文件" in err.message_zh


def test_bad_field_names_entry(tmp_path: Path) -> None:
    def edit(raw: dict) -> None:
        raw["rules"][1]["final"] = "sometimes"

    path = _copy(tmp_path, edit)
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    assert info.value.field is not None and info.value.field.startswith("rules[1]")
    assert "final" in info.value.field
    assert info.value.value == "sometimes"
    assert "sometimes" in info.value.message_en and "sometimes" in info.value.message_zh


def test_rule_without_condition_is_refused(tmp_path: Path) -> None:
    def edit(raw: dict) -> None:
        raw["rules"].append({"id": "everything", "add": ["bar"]})

    with pytest.raises(MappingError, match="everything"):
        load_mapping(_copy(tmp_path, edit))


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    def edit(raw: dict) -> None:
        raw["rules"][0]["name_anyy"] = ["KTV"]

    with pytest.raises(MappingError, match="name_anyy"):
        load_mapping(_copy(tmp_path, edit))


def test_missing_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="nope.yaml") as info:
        load_mapping(tmp_path / "nope.yaml")
    assert "无法读取" in info.value.message_zh
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [unclosed\n", encoding="utf-8")
    with pytest.raises(MappingError, match="bad.yaml"):
        load_mapping(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(MappingError, match="list"):
        load_mapping(listing)


_PLAIN = st.text(alphabet="七天锦江之星如家汉庭新街口金陵大", min_size=0, max_size=6)


@given(
    _PLAIN,
    st.sampled_from(["酒店", "大酒店", "连锁酒店", "宾馆"]),
    st.sampled_from(["wine", "alcohol", "yes"]),
)
def test_a_hotel_name_is_never_an_alcohol_shop(prefix: str, suffix: str, shop: str) -> None:
    assert "alcohol" not in _DEFAULT.classify({"shop": shop}, prefix + suffix)


@given(st.sampled_from(["KTV", "ktv", "歌厅", "量贩KTV"]), _PLAIN)
def test_a_ktv_tagged_as_bar_is_never_a_bar(keyword: str, prefix: str) -> None:
    assert _DEFAULT.classify({"amenity": "bar"}, prefix + keyword) == ("entertainment",)
