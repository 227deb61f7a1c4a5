"""School levels from OpenStreetMap tags and Chinese school names.

A protected school has one or more levels (``kindergarten``, ``primary``, ``junior``, ``senior``,
``vocational``, ``special``). The level comes from the tags (``isced:level``, ``school:level``,
``school``, ``amenity=kindergarten``) and from the name, whose *suffix* names the kind of school in
Chinese (``…小学``, ``…初级中学``, ``…幼儿园``). Universities, Party schools, teacher-training colleges
and tutoring centres are not protected schools: they are ``excluded`` with a short reason id — but the
schools attached to a university (``大学附属中学``, ``附中``, ``附小``, ``附幼``) are schools.

The keyword lists below are stable facts of the Chinese language, kept in code; the business-category
mapping, which is policy, lives in YAML (see :mod:`geo.categories`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

LEVELS = ("kindergarten", "primary", "junior", "senior", "vocational", "special")

#: Name keyword -> levels. The keyword that ends last in the name wins (the suffix names the school);
#: at the same end position the longest keyword wins (初级中学 over 中学).
_NAME_LEVELS: dict[str, frozenset[str]] = {
    "幼儿园": frozenset({"kindergarten"}),
    "附属幼儿园": frozenset({"kindergarten"}),
    "附幼": frozenset({"kindergarten"}),
    "小学": frozenset({"primary"}),
    "附属小学": frozenset({"primary"}),
    "附小": frozenset({"primary"}),
    "國小": frozenset({"primary"}),
    "国民小学": frozenset({"primary"}),
    "初中": frozenset({"junior"}),
    "初级中学": frozenset({"junior"}),
    "國中": frozenset({"junior"}),
    "国民中学": frozenset({"junior"}),
    "高中": frozenset({"senior"}),
    "高级中学": frozenset({"senior"}),
    "中学": frozenset({"junior", "senior"}),
    "附属中学": frozenset({"junior", "senior"}),
    "附中": frozenset({"junior", "senior"}),
    "完全中学": frozenset({"junior", "senior"}),
    "九年一贯制": frozenset({"primary", "junior"}),
    "九年制": frozenset({"primary", "junior"}),
    "中等职业": frozenset({"vocational"}),
    "职业高中": frozenset({"vocational"}),
    "职业高级中学": frozenset({"vocational"}),
    "职业中学": frozenset({"vocational"}),
    "职业学校": frozenset({"vocational"}),
    "职业技术学校": frozenset({"vocational"}),
    "职校": frozenset({"vocational"}),
    "职高": frozenset({"vocational"}),
    "中专": frozenset({"vocational"}),
    "技工学校": frozenset({"vocational"}),
    "特殊教育": frozenset({"special"}),
    "特教": frozenset({"special"}),
    "培智": frozenset({"special"}),
    "聋哑": frozenset({"special"}),
    "聋校": frozenset({"special"}),
    "盲校": frozenset({"special"}),
    "盲人学校": frozenset({"special"}),
}

#: A name containing one of these is a school even if it also names a university.
_AFFILIATED = ("附属中学", "附属小学", "附属幼儿园", "附属初级中学", "附属高级中学", "附中", "附小", "附幼")

#: Exclusion keywords, checked in this order (a Party school is not reported as a "university").
_EXCLUDED_NAMES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("party_school", ("党校",)),
    (
        "teacher_training",
        ("进修学校", "进修学院", "高等师范学校", "教师发展中心", "教师培训中心", "教育学院"),
    ),
    ("tutoring", ("培训", "辅导", "补习", "教育咨询", "家教", "托管中心")),
    ("university", ("大学", "学院", "高等专科", "高专", "university", "college")),
)

_EXCLUDED_AMENITIES = {
    "university": "university",
    "college": "university",
    "prep_school": "tutoring",
    "language_school": "tutoring",
    "music_school": "tutoring",
    "dancing_school": "tutoring",
    "driving_school": "tutoring",
}

#: OSM ``isced:level`` (UNESCO ISCED 2011) -> level.
_ISCED = {"0": "kindergarten", "1": "primary", "2": "junior", "3": "senior"}

#: OSM ``school:level`` / ``school`` values -> levels.
_TAG_LEVELS: dict[str, frozenset[str]] = {
    "kindergarten": frozenset({"kindergarten"}),
    "preschool": frozenset({"kindergarten"}),
    "nursery": frozenset({"kindergarten"}),
    "primary": frozenset({"primary"}),
    "elementary": frozenset({"primary"}),
    "middle": frozenset({"junior"}),
    "junior": frozenset({"junior"}),
    "junior_high": frozenset({"junior"}),
    "lower_secondary": frozenset({"junior"}),
    "secondary": frozenset({"junior", "senior"}),
    "high": frozenset({"senior"}),
    "senior": frozenset({"senior"}),
    "senior_high": frozenset({"senior"}),
    "upper_secondary": frozenset({"senior"}),
    "nine_year": frozenset({"primary", "junior"}),
    "complete": frozenset({"junior", "senior"}),
    "vocational": frozenset({"vocational"}),
    "special": frozenset({"special"}),
    "special_education": frozenset({"special"}),
}

#: Traditional characters that occur in school names -> simplified (國 is kept: 國小/國中 are keywords).
_TRADITIONAL = str.maketrans(
    {
        "學": "学",
        "園": "园",
        "兒": "儿",
        "級": "级",
        "職": "职",
        "業": "业",
        "專": "专",
        "聾": "聋",
        "啞": "哑",
        "黨": "党",
        "導": "导",
        "輔": "辅",
        "補": "补",
        "習": "习",
        "訓": "训",
        "諮": "咨",
        "詢": "询",
        "師": "师",
        "範": "范",
        "進": "进",
        "貫": "贯",
        "屬": "属",
        "製": "制",
        "術": "术",
    }
)

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_NUMERAL = re.compile("[零〇一二两三四五六七八九十百]+")
#: "五中", "29中", "南京三中金銮校区": a numeral followed by 中 that is not 中学/中心/中专/中等.
_NUMBERED_ZHONG = re.compile("(?:[零〇一二两三四五六七八九十百]+|[0-9]+)中(?![学心专等])")


@dataclass(frozen=True)
class SchoolClass:
    """The classification of one OSM school feature.

    Attributes
    ----------
    levels
        The protected levels; empty when none was recognised (then ``flags`` has ``level_unknown``).
    excluded
        ``None`` for a protected school, else the reason it is not one: ``university``,
        ``party_school``, ``teacher_training`` or ``tutoring``.
    flags
        ``level_unknown`` when no level was recognised; ``affiliated`` for a university's school.
    """

    levels: frozenset[str]
    excluded: str | None
    flags: tuple[str, ...]


def classify_school(name: str | None, tags: Mapping[str, str]) -> SchoolClass:
    """Classify a school feature by its tags and name.

    Parameters
    ----------
    name
        The feature's name (usually ``tags["name"]``); ``name`` and ``name:zh`` from ``tags`` are read
        too.
    tags
        The OSM tags.

    Returns
    -------
    SchoolClass
        Its levels, or the reason it is not a protected school.
    """
    texts = _name_texts(name, tags)
    affiliated = any(key in text for text in texts for key in _AFFILIATED)
    if not affiliated:
        reason = _excluded_reason(texts, tags)
        if reason is not None:
            return SchoolClass(levels=frozenset(), excluded=reason, flags=())
    levels = _tag_levels(tags) | _name_levels(texts)
    flags: list[str] = []
    if affiliated:
        flags.append("affiliated")
    if not levels:
        flags.append("level_unknown")
    return SchoolClass(levels=frozenset(levels), excluded=None, flags=tuple(flags))


def normalise_school_name(name: str) -> str:
    """Reduce a Chinese school name to a key for matching two records of one school.

    Drops a province prefix (``江苏省``), every ``第``, ``市``, space and bracket, maps Chinese numerals
    to digits and ``中学`` to ``中``, so ``南京市第五中学`` and ``南京五中`` both become ``南京5中``
    (the city name itself stays: both records carry it or one contains the other).

    Parameters
    ----------
    name
        A school name.

    Returns
    -------
    str
        The matching key (lower-case for Latin letters).
    """
    text = name.translate(_TRADITIONAL).strip().lower()
    text = re.sub(r"^[\u4e00-\u9fff]{2,3}?省", "", text)
    text = re.sub(r"[\s()（）·\-_]", "", text)
    text = text.replace("第", "").replace("市", "")
    text = _CN_NUMERAL.sub(lambda m: str(chinese_numeral(m.group(0))), text)
    return text.replace("中学", "中")


def chinese_numeral(text: str) -> int:
    """Parse a Chinese numeral below 1000 (``五`` 5, ``十二`` 12, ``二十`` 20, ``一百零一`` 101).

    Parameters
    ----------
    text
        Chinese numeral characters (零〇一二两三四五六七八九十百). A plain digit string like ``二九``
        is read digit by digit (29).

    Returns
    -------
    int
        The value.
    """
    if not text or any(ch not in _CN_DIGITS and ch not in "十百" for ch in text):
        msg = f"not a Chinese numeral: {text!r}"
        raise ValueError(msg)
    if "十" not in text and "百" not in text:
        return int("".join(str(_CN_DIGITS[ch]) for ch in text))
    total = 0
    digit = 0
    for ch in text:
        if ch == "百":
            total += (digit or 1) * 100
            digit = 0
        elif ch == "十":
            total += (digit or 1) * 10
            digit = 0
        else:
            digit = _CN_DIGITS[ch]
    return total + digit


def _name_texts(name: str | None, tags: Mapping[str, str]) -> list[str]:
    texts = []
    for text in (name, tags.get("name"), tags.get("name:zh"), tags.get("name:zh-Hans")):
        if text and text.strip():
            norm = text.translate(_TRADITIONAL).strip()
            if norm not in texts:
                texts.append(norm)
    return texts


def _excluded_reason(texts: list[str], tags: Mapping[str, str]) -> str | None:
    for reason, keywords in _EXCLUDED_NAMES:
        for text in texts:
            low = text.lower()
            if any(key in low for key in keywords):
                return reason
    return _EXCLUDED_AMENITIES.get(tags.get("amenity", ""))


def _tag_levels(tags: Mapping[str, str]) -> set[str]:
    levels: set[str] = set()
    if tags.get("amenity") == "kindergarten":
        levels.add("kindergarten")
    for value in _split(tags.get("isced:level")):
        span = value.split("-")
        if len(span) == 2 and span[0].isdigit() and span[1].isdigit():
            levels.update(_ISCED[str(i)] for i in range(int(span[0]), int(span[1]) + 1) if str(i) in _ISCED)
        elif value in _ISCED:
            levels.add(_ISCED[value])
    for key in ("school:level", "school"):
        for value in _split(tags.get(key)):
            levels.update(_TAG_LEVELS.get(value.lower(), ()))
    return levels


def _name_levels(texts: list[str]) -> set[str]:
    levels: set[str] = set()
    for text in texts:
        best: tuple[int, int] | None = None
        found: frozenset[str] = frozenset()
        for keyword, kw_levels in _NAME_LEVELS.items():
            pos = text.rfind(keyword)
            if pos >= 0:
                rank = (pos + len(keyword), len(keyword))
                if best is None or rank > best:
                    best, found = rank, kw_levels
        for match in _NUMBERED_ZHONG.finditer(text):
            rank = (match.end(), 2)
            if best is None or rank > best:
                best, found = rank, frozenset({"junior", "senior"})
        levels |= found
    return levels


def _split(value: str | None) -> list[str]:
    if not value:
        return []
    return [part.strip() for part in value.replace(",", ";").split(";") if part.strip()]
