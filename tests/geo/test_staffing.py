"""Staffing: guards per school under the Guilin bands (五(七)) and Chongqing's minimum (十一)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geo.errors import InvalidInput
from geo.rules import RuleRegistry, StaffingRule
from geo.staffing import required_guards


@pytest.fixture(scope="module")
def guilin() -> StaffingRule:
    (rule,) = RuleRegistry.load().in_force("450303").staffing
    assert rule.kind == "guilin_bands"
    return rule


@pytest.fixture(scope="module")
def chongqing() -> StaffingRule:
    (rule,) = RuleRegistry.load().in_force("500103").staffing
    assert rule.kind == "per_school_minimum"
    return rule


def _day(rule: StaffingRule, students: int, staff: int = 0) -> int:
    return required_guards(rule, students=students, staff=staff, boarders=0, boarding=False)


@pytest.mark.parametrize(
    ("students", "staff", "guards"),
    [
        (90, 9, 1),  # head-count 99: 少于100人 → 1
        (90, 10, 2),  # 100: 100人以上 (inclusive) → 2
        (900, 100, 2),  # 1,000: 1000人以下 (inclusive) → 2
        (1001, 0, 2),  # 1,001: 超过1000人, but no whole 500 more students yet
        (1499, 0, 2),
        (1500, 0, 3),  # 每增加500名学生增配1名
        (1999, 80, 3),
        (2000, 80, 4),
        (950, 100, 2),  # over 1,000 only through staff: never below the 2 of the band
    ],
)
def test_guilin_day_school_bands(guilin: StaffingRule, students: int, staff: int, guards: int) -> None:
    assert _day(guilin, students, staff) == guards


@pytest.mark.parametrize(("boarders", "extra"), [(0, 0), (299, 0), (300, 1), (301, 1), (599, 1), (600, 2)])
def test_guilin_boarding_adds_one_per_300_boarders(guilin: StaffingRule, boarders: int, extra: int) -> None:
    # 寄宿制学校至少配备2名, 在上述标准的基础上每增加300名寄宿生增配1名
    small = required_guards(guilin, students=700, staff=10, boarders=boarders, boarding=True)
    assert small == 2 + extra
    large = required_guards(guilin, students=2600, staff=150, boarders=boarders, boarding=True)
    assert large == 2 + 3 + extra  # 1,600 students over 1,000 → +3


def test_small_boarding_school_has_at_least_two(guilin: StaffingRule) -> None:
    assert _day(guilin, 40, 5) == 1
    assert required_guards(guilin, students=40, staff=5, boarders=20, boarding=True) == 2


def test_numbers_come_from_the_pack(guilin: StaffingRule) -> None:
    params = dict(guilin.params, students_step=250)
    stricter = guilin.model_copy(update={"params": params})
    assert _day(guilin, 1500) == 3
    assert _day(stricter, 1500) == 4


@pytest.mark.parametrize("students", [0, 50, 1000, 5000])
def test_chongqing_at_least_one_per_school(chongqing: StaffingRule, students: int) -> None:
    assert required_guards(chongqing, students=students, staff=10, boarders=0, boarding=False) == 1
    assert "至少有1名" in chongqing.legal_basis.text


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"students": -1, "staff": 0, "boarders": 0}, "students"),
        ({"students": 10, "staff": 1.5, "boarders": 0}, "staff"),
        ({"students": 10, "staff": 0, "boarders": 11}, "boarders"),
    ],
)
def test_bad_counts_are_refused(guilin: StaffingRule, kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        required_guards(guilin, boarding=True, **kwargs)
    assert info.value.field == field
    assert str(kwargs[field]) in info.value.message_en


@given(
    students=st.integers(0, 20_000),
    staff=st.integers(0, 2_000),
    more=st.integers(0, 3_000),
    boarders=st.integers(0, 20_000),
)
def test_more_people_never_need_fewer_guards(
    guilin: StaffingRule, students: int, staff: int, more: int, boarders: int
) -> None:
    boarders = min(boarders, students)
    for boarding in (False, True):
        base = required_guards(guilin, students=students, staff=staff, boarders=boarders, boarding=boarding)
        bigger = required_guards(guilin, students=students + more, staff=staff, boarders=boarders, boarding=boarding)
        assert bigger >= base >= 1
    day = required_guards(guilin, students=students, staff=staff, boarders=boarders, boarding=False)
    assert required_guards(guilin, students=students, staff=staff, boarders=boarders, boarding=True) >= day
