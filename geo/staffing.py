"""Staffing: how many security guards (专职保安员 / 安全管理人员) a school must have.

The numbers live in the rule packs (``staffing:`` entries, :class:`geo.rules.StaffingRule`); this
module only knows the shape of each kind of rule.
"""

from __future__ import annotations

from geo.errors import InvalidInput
from geo.rules import StaffingRule

__all__ = ["required_guards"]


def _count(value: int, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"{name} must be a whole number >= 0, got {value!r}"
        raise InvalidInput(msg, message_zh=f"{name} 须为不小于0的整数，收到 {value!r}", field=name, value=value)
    return value


def required_guards(rule: StaffingRule, *, students: int, staff: int, boarders: int, boarding: bool) -> int:
    """The minimum number of guards a school needs under ``rule``.

    Parameters
    ----------
    rule
        A staffing rule in force at the school.
    students, staff, boarders
        Head-counts on record (师生员工 = students + staff; boarders 寄宿生).
    boarding
        Whether the school is a boarding school (寄宿制学校).

    Returns
    -------
    int

    Notes
    -----
    ``guilin_bands`` (Guilin 2019 plan 五(七)): "师生员工人数少于100人的学校，至少配备1名专职保安员；
    100人以上1000人以下的学校，至少配备2名专职保安员；超过1000人的学校，每增加500名学生增配1名专职保安员。
    寄宿制学校至少配备2名专职保安员，在上述标准的基础上每增加300名寄宿生增配1名专职保安员。"

    Reading (以上/以下 include the number itself, as in Chinese law, 《民法典》第一千二百五十九条;
    少于/超过 exclude it):

    * head-count < 100 → 1; 100 ≤ head-count ≤ 1,000 → 2;
    * head-count > 1,000 → 2 + ⌊(students − 1,000) / 500⌋ — the increment counts *students* (每增加500名
      学生) beyond 1,000 and only whole steps of 500; it never goes below 0 (a school over 1,000 because
      of its staff, with fewer than 1,000 students, keeps 2);
    * boarding: max(that, 2) + ⌊boarders / 300⌋ — "在上述标准的基础上" adds one per whole 300 boarders.

    ``per_school_minimum`` (Chongqing 193号 十一): "原则上每所学校至少有1名专兼职安全管理人员" — the
    minimum, whatever the size.
    """
    students = _count(students, name="students")
    staff = _count(staff, name="staff")
    boarders = _count(boarders, name="boarders")
    if boarders > students:
        msg = f"boarders ({boarders}) cannot exceed students ({students})"
        raise InvalidInput(
            msg,
            message_zh=f"寄宿生人数（{boarders}）不能超过学生人数（{students}）",
            field="boarders",
            value=boarders,
        )
    p = rule.params
    if rule.kind == "per_school_minimum":
        return p["minimum"]
    headcount = students + staff
    if headcount < p["small_headcount_below"]:
        guards = p["small_guards"]
    elif headcount <= p["medium_headcount_max"]:
        guards = p["medium_guards"]
    else:
        guards = p["medium_guards"] + max(0, (students - p["students_base"]) // p["students_step"])
    if boarding:
        guards = max(guards, p["boarding_min_guards"]) + boarders // p["boarders_step"]
    return guards
