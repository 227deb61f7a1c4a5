"""The risk ledger (台账): the closed loop a case runs, its deadlines, escalation and staffing shortfalls.

Chongqing 渝府办发〔2017〕193号 (七) asks for a closed loop — 预警、排查、登记、评估、报告、监控、治理、验收、
销号 — with responsibility, measures, funds, deadline and plan fixed for every hazard (五落实). This module
holds the loop as data (:data:`TRANSITIONS`), the deadline arithmetic (calendar days, or working days on
the Chinese holiday calendar of the ``chinese-calendar`` package), the overdue test and the staffing and
access-control shortfalls (Guilin 2019 五(六), 五(七); Chongqing 193号 十一). Pure: no database, no HTTP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import chinese_calendar

from geo.errors import Conflict, Forbidden, InvalidInput
from geo.rules import StaffingRule
from geo.staffing import required_guards

__all__ = [
    "CLOSED_STATES",
    "DEADLINES",
    "LEDGER_ROLES",
    "STATES",
    "TRANSITIONS",
    "DeadlineRule",
    "IllegalTransition",
    "SchoolStaffing",
    "Shortfall",
    "add_working_days",
    "allowed_next",
    "check_transition",
    "deadline_for",
    "is_overdue",
    "staffing_shortfalls",
    "transition_table_markdown",
]

#: The states of a case, in loop order, with their Chinese names.
STATES: dict[str, str] = {
    "warning": "预警",
    "inspection": "排查",
    "registered": "登记",
    "assessed": "评估",
    "reported": "报告",
    "monitored": "监控",
    "remediation": "治理",
    "acceptance": "验收",
    "closed": "销号",
    "reopened": "重新打开",
    "dismissed": "撤销",
}
#: States in which a case is no longer open (no deadline runs, never overdue).
CLOSED_STATES: frozenset[str] = frozenset({"closed", "dismissed"})

#: Roles that work cases (the departments that lead or cooperate on the rules, and admins).
LEDGER_ROLES: frozenset[str] = frozenset(
    {"admin", "education", "market_supervision", "culture_tourism", "tobacco", "urban_management", "public_security"}
)
#: Roles that may dismiss a case or reopen a closed or dismissed one by hand: the ledger's keeper.
_KEEPERS: frozenset[str] = frozenset({"admin", "education"})

#: from state → {next state: roles that may move it there}. ``system`` is the scan and the clock.
TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
    "warning": {"inspection": LEDGER_ROLES, "dismissed": _KEEPERS},
    "inspection": {"registered": LEDGER_ROLES, "dismissed": _KEEPERS},
    "registered": {"assessed": LEDGER_ROLES, "dismissed": _KEEPERS},
    "assessed": {"reported": LEDGER_ROLES, "dismissed": _KEEPERS},
    "reported": {"monitored": LEDGER_ROLES, "remediation": LEDGER_ROLES, "dismissed": _KEEPERS},
    "monitored": {"remediation": LEDGER_ROLES, "dismissed": _KEEPERS},
    "remediation": {"acceptance": LEDGER_ROLES, "dismissed": _KEEPERS},
    "acceptance": {"closed": LEDGER_ROLES, "remediation": LEDGER_ROLES},
    "closed": {"reopened": _KEEPERS | {"system"}},
    "reopened": {"inspection": LEDGER_ROLES, "remediation": LEDGER_ROLES, "dismissed": _KEEPERS},
    "dismissed": {"reopened": _KEEPERS},
}

#: Transitions that need a reason (``why``).
REASON_REQUIRED: frozenset[str] = frozenset({"dismissed", "reopened"})


class IllegalTransition(Conflict):
    """A transition the table does not allow; names the allowed next states (HTTP 409)."""

    title = "Transition not allowed"

    def __init__(self, message_en: str, *, allowed: list[str], **kw: Any) -> None:
        super().__init__(message_en, **kw)
        self.allowed = allowed

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["allowed"] = self.allowed
        return out


def allowed_next(state: str, role: str | None = None) -> list[str]:
    """The states that may follow ``state`` (for ``role`` when given), in loop order."""
    nxt = TRANSITIONS.get(state, {})
    order = list(STATES)
    return sorted((s for s, roles in nxt.items() if role is None or role in roles), key=order.index)


def check_transition(
    state: str,
    to: str,
    *,
    role: str,
    actor: str,
    reason: str | None = None,
    remediation_by: str | None = None,
) -> None:
    """Refuse a move the table does not allow, or that the rules of the loop forbid.

    Raises
    ------
    InvalidInput
        ``to`` is not a state, or a reason is missing where one is required.
    IllegalTransition
        ``to`` may not follow ``state``; the error lists the allowed next states.
    Forbidden
        ``role`` may not make this move, or the acceptance would be by the person who recorded the
        remediation.
    """
    if to not in STATES:
        msg = f"unknown state {to!r}; states are {list(STATES)}"
        raise InvalidInput(msg, field="to", value=to, message_zh=f"未知状态 {to!r}")
    nxt = TRANSITIONS.get(state, {})
    if to not in nxt:
        allowed = allowed_next(state)
        msg = f"a case in state {state!r} cannot move to {to!r}; allowed next states: {allowed}"
        raise IllegalTransition(
            msg,
            allowed=allowed,
            field="to",
            value=to,
            message_zh=f"案件当前为「{STATES.get(state, state)}」，不能转为「{STATES[to]}」；可转为：{allowed}",
        )
    if role not in nxt[to]:
        msg = f"role {role!r} may not move a case from {state!r} to {to!r} (roles: {sorted(nxt[to])})"
        raise Forbidden(msg, field="to", value=to, message_zh=f"角色 {role!r} 无权将案件转为「{STATES[to]}」")
    if to in REASON_REQUIRED and not (reason or "").strip():
        msg = f"moving a case to {to!r} needs a reason"
        raise InvalidInput(msg, field="reason", message_zh=f"转为「{STATES[to]}」须说明理由")
    if state == "acceptance" and to == "closed" and remediation_by is not None and actor == remediation_by:
        msg = f"acceptance must be by someone other than {actor!r}, who recorded the remediation"
        raise Forbidden(
            msg, field="actor", value=actor, message_zh=f"验收人不得为整改登记人（{actor}），须由他人验收销号"
        )


def transition_table_markdown() -> str:
    """The transition table as the README prints it."""
    lines = ["| from | to | roles |", "|---|---|---|"]
    for state, nxt in TRANSITIONS.items():
        for to in allowed_next(state):
            roles = ", ".join(sorted(nxt[to]))
            lines.append(f"| {state} {STATES[state]} | {to} {STATES[to]} | {roles} |")
    return "\n".join(lines)


# --- deadlines ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadlineRule:
    """How long a case of a category may stay open: ``days`` calendar or working days."""

    days: int
    unit: Literal["calendar", "working"] = "calendar"


#: Deadlines per case category (common local choices; a deploying authority sets its own). Working days
#: skip weekends and public holidays and count the adjusted working weekends (调休) of the State
#: Council's holiday notices.
DEADLINES: dict[str, DeadlineRule] = {
    "internet_cafe": DeadlineRule(15, "working"),
    "entertainment": DeadlineRule(15, "working"),
    "bar": DeadlineRule(30),
    "lottery": DeadlineRule(30),
    "tobacco": DeadlineRule(30),
    "alcohol": DeadlineRule(30),
    "food_stall": DeadlineRule(5, "working"),
    "polluter": DeadlineRule(90),
    "hazardous": DeadlineRule(10, "working"),
    "staffing": DeadlineRule(30),
    "access_control": DeadlineRule(20, "working"),
    "other": DeadlineRule(30),
}


def _is_workday(day: dt.date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # a year the holiday notices do not cover yet: weekdays only
        return day.weekday() < 5


def add_working_days(start: dt.date, days: int) -> dt.date:
    """The ``days``-th working day after ``start`` (China's calendar: holidays off, 调休 weekends on)."""
    if days < 0:
        msg = f"days must be >= 0, got {days}"
        raise InvalidInput(msg, field="days", value=days)
    day, left = start, days
    while left:
        day += dt.timedelta(days=1)
        if _is_workday(day):
            left -= 1
    return day


def deadline_for(
    category: str,
    opened_on: dt.date,
    *,
    due_date: dt.date | None = None,
    rules: Mapping[str, DeadlineRule] | None = None,
) -> tuple[dt.date, str]:
    """A case's deadline and where it comes from (``due_date`` | ``calendar`` | ``working``).

    A nonconforming premises carries its own due date (its permit's expiry): the case comes due then.
    """
    if due_date is not None:
        return due_date, "due_date"
    rule = (rules or DEADLINES).get(category) or (rules or DEADLINES)["other"]
    if rule.unit == "working":
        return add_working_days(opened_on, rule.days), "working"
    return opened_on + dt.timedelta(days=rule.days), "calendar"


def is_overdue(state: str, deadline: dt.date | None, today: dt.date) -> bool:
    """Open, with a deadline, and ``today`` is past it (the deadline day itself is still in time)."""
    return state not in CLOSED_STATES and deadline is not None and today > deadline


# --- staffing and access control ---------------------------------------------------------------


@dataclass(frozen=True)
class SchoolStaffing:
    """What the register holds about a school's people, guards and access control."""

    school_id: int
    levels: tuple[str, ...]
    students: int | None
    staff: int | None
    boarders: int | None
    guards: int | None
    access_control: bool | None


@dataclass(frozen=True)
class Shortfall:
    """A school short of what a rule asks: ``kind`` ``guards`` or ``access_control``."""

    school_id: int
    rule_id: str
    kind: str
    required: int
    on_record: int
    lead_department: str
    cooperating_departments: tuple[str, ...]
    basis: str
    notes: tuple[str, ...] = field(default=())


ACCESS_CONTROL_RULE = "access_control.kindergarten"
_ACCESS_BASIS = "桂林市2019年学校安全风险防控方案 五(六)：幼儿园必须建立门禁系统或实行接送卡制度"


def staffing_shortfalls(schools: Iterable[SchoolStaffing], rules: Iterable[StaffingRule]) -> list[Shortfall]:
    """Schools with fewer guards on record than the packs' staffing rules ask, and kindergartens
    without access control (门禁 / 接送卡) on record.

    Guards not on record count as 0. A head-count rule cannot be judged without the student count: such
    a school is listed with the note ``headcount_unknown`` and the rule's minimum for the smallest band.
    """
    rules = tuple(rules)
    out: list[Shortfall] = []
    for s in schools:
        guards = s.guards or 0
        for rule in rules:
            notes: tuple[str, ...] = ()
            if rule.kind != "per_school_minimum" and s.students is None:
                need, notes = rule.params["small_guards"], ("headcount_unknown",)
            else:
                students = s.students or 0
                need = required_guards(
                    rule,
                    students=students,
                    staff=s.staff or 0,
                    boarders=min(s.boarders or 0, students),
                    boarding=bool(s.boarders),
                )
            if guards < need:
                out.append(
                    Shortfall(
                        school_id=s.school_id,
                        rule_id=rule.id,
                        kind="guards",
                        required=need,
                        on_record=guards,
                        lead_department=rule.lead_department,
                        cooperating_departments=rule.cooperating_departments,
                        basis=f"{rule.legal_basis.citation}",
                        notes=notes,
                    )
                )
        if "kindergarten" in s.levels and s.access_control is not True:
            out.append(
                Shortfall(
                    school_id=s.school_id,
                    rule_id=ACCESS_CONTROL_RULE,
                    kind="access_control",
                    required=1,
                    on_record=0,
                    lead_department="education",
                    cooperating_departments=("public_security",),
                    basis=_ACCESS_BASIS,
                )
            )
    return out
