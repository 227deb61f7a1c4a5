"""The ledger's pure rules: the transition table, deadlines on the Chinese calendar, staffing shortfalls."""

from __future__ import annotations

import datetime as dt

import pytest

from geo.errors import Forbidden, InvalidInput
from geo.ledger import (
    DEADLINES,
    STATES,
    TRANSITIONS,
    IllegalTransition,
    SchoolStaffing,
    add_working_days,
    allowed_next,
    check_transition,
    deadline_for,
    is_overdue,
    staffing_shortfalls,
    transition_table_markdown,
)
from geo.rules import RuleRegistry


def test_the_loop_runs_in_the_documents_order() -> None:
    loop = ["warning", "inspection", "registered", "assessed", "reported", "monitored", "remediation", "acceptance",
            "closed"]  # fmt: skip
    for here, nxt in zip(loop, loop[1:], strict=False):
        assert nxt in TRANSITIONS[here], (here, nxt)
    assert set(TRANSITIONS) == set(STATES)
    for nxt in TRANSITIONS.values():
        assert set(nxt) <= set(STATES)


def test_skipping_a_step_is_refused_naming_the_allowed_states() -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition("warning", "closed", role="admin", actor="张三")
    assert info.value.allowed == ["inspection", "dismissed"]
    assert info.value.to_dict()["allowed"] == ["inspection", "dismissed"]
    assert "inspection" in info.value.message_en


def test_only_the_keepers_dismiss_and_a_reason_is_required() -> None:
    with pytest.raises(Forbidden):
        check_transition("registered", "dismissed", role="tobacco", actor="李四", reason="重复")
    with pytest.raises(InvalidInput, match="reason"):
        check_transition("registered", "dismissed", role="education", actor="王五", reason="  ")
    check_transition("registered", "dismissed", role="education", actor="王五", reason="重复登记")


def test_acceptance_by_the_person_who_recorded_the_remediation_is_refused() -> None:
    with pytest.raises(Forbidden, match="someone other"):
        check_transition("acceptance", "closed", role="market_supervision", actor="赵六", remediation_by="赵六")
    check_transition("acceptance", "closed", role="market_supervision", actor="钱七", remediation_by="赵六")


def test_allowed_next_per_role() -> None:
    assert allowed_next("closed") == ["reopened"]
    assert allowed_next("closed", "tobacco") == []
    assert allowed_next("remediation", "urban_management") == ["acceptance"]


def test_readme_table_lists_every_transition() -> None:
    table = transition_table_markdown()
    rows = [line for line in table.splitlines()[2:]]
    assert len(rows) == sum(len(v) for v in TRANSITIONS.values())
    assert "| acceptance 验收 | closed 销号 |" in table


def test_working_days_skip_the_national_day_week_and_count_the_makeup_saturday() -> None:
    # 2025: 1-8 October off; Sunday 28 September and Saturday 11 October are working days (国办发明电〔2024〕12号)
    assert add_working_days(dt.date(2025, 9, 30), 1) == dt.date(2025, 10, 9)
    assert add_working_days(dt.date(2025, 9, 30), 3) == dt.date(2025, 10, 11)
    assert add_working_days(dt.date(2025, 9, 30), 5) == dt.date(2025, 10, 14)
    assert add_working_days(dt.date(2025, 9, 26), 1) == dt.date(2025, 9, 28)


def test_category_deadlines_calendar_and_working() -> None:
    assert DEADLINES["food_stall"].unit == "working"
    assert deadline_for("food_stall", dt.date(2025, 9, 30)) == (dt.date(2025, 10, 14), "working")
    assert deadline_for("bar", dt.date(2025, 9, 30)) == (dt.date(2025, 10, 30), "calendar")
    # a nonconforming premises carries its due date (its permit's expiry)
    assert deadline_for("tobacco", dt.date(2025, 9, 30), due_date=dt.date(2026, 3, 31)) == (
        dt.date(2026, 3, 31),
        "due_date",
    )


def test_overdue_from_the_day_after_the_deadline_and_never_when_closed() -> None:
    d = dt.date(2025, 10, 14)
    assert not is_overdue("remediation", d, d)
    assert is_overdue("remediation", d, d + dt.timedelta(days=1))
    assert not is_overdue("closed", d, d + dt.timedelta(days=30))
    assert not is_overdue("dismissed", d, d + dt.timedelta(days=30))
    assert not is_overdue("warning", None, d)


REGISTRY = RuleRegistry.load()
GUILIN = REGISTRY.in_force("450302", on=dt.date(2025, 6, 1)).staffing
CHONGQING = REGISTRY.in_force("500103", on=dt.date(2025, 6, 1)).staffing


def _school(students: int, staff: int, guards: int, boarders: int = 0, levels: tuple[str, ...] = ("primary",)):  # noqa: ANN202
    return SchoolStaffing(1, levels, students, staff, boarders, guards, None)


@pytest.mark.parametrize(
    ("students", "staff", "boarders", "required"),
    [
        (90, 9, 0, 1),  # head-count 99: under 100
        (90, 10, 0, 2),  # 100 以上
        (900, 100, 0, 2),  # 1,000 以下
        (950, 51, 0, 2),  # 1,001: over 1,000 but only 950 students, no whole 500 beyond 1,000
        (1499, 60, 0, 2),  # students 1,499
        (1500, 60, 0, 3),  # students 1,500: one whole step of 500
        (600, 60, 299, 2),  # boarders 299
        (600, 60, 300, 3),  # boarders 300
        (600, 60, 301, 3),  # boarders 301
    ],
)
def test_guilin_staffing_shortfall_boundaries(students: int, staff: int, boarders: int, required: int) -> None:
    short = staffing_shortfalls([_school(students, staff, required - 1, boarders)], GUILIN)
    assert [(s.rule_id, s.required, s.on_record) for s in short] == [
        ("staffing.security_guards", required, required - 1)
    ]
    assert "五（七）" in short[0].basis
    assert staffing_shortfalls([_school(students, staff, required, boarders)], GUILIN) == []


@pytest.mark.parametrize("students", [10, 3000])
def test_chongqing_one_per_school(students: int) -> None:
    short = staffing_shortfalls([_school(students, 20, 0)], CHONGQING)
    assert [(s.required, s.on_record, s.lead_department) for s in short] == [(1, 0, "education")]
    assert "十一" in short[0].basis
    assert staffing_shortfalls([_school(students, 20, 1)], CHONGQING) == []


def test_kindergarten_without_access_control_on_record() -> None:
    kg = SchoolStaffing(7, ("kindergarten",), 120, 20, 0, 5, None)
    short = staffing_shortfalls([kg], CHONGQING)
    assert [(s.kind, s.rule_id) for s in short] == [("access_control", "access_control.kindergarten")]
    with_card = SchoolStaffing(7, ("kindergarten",), 120, 20, 0, 5, True)
    assert staffing_shortfalls([with_card], CHONGQING) == []
