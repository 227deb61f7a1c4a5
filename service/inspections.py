"""Inspections on a daily/weekly/monthly rhythm (日周月), campaigns and the cases their violations open, the
district risk and responsibility lists (Chongqing 193号 七: 区域性学校安全风险清单、防控责任清单) and the
ledger overview page.

The period arithmetic is pure (dates in, dates out): a daily plan is due on every working day of the
State Council's holiday calendar (``chinese-calendar``; 调休 weekends are working days), a weekly plan by
the last working day of its ISO week, a monthly plan by the last working day of its month.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import chinese_calendar
from sqlalchemy.orm import Session

from geo.errors import Forbidden, InvalidInput
from geo.ledger import STATES
from geo.rules import LEVELS, Rule, RuleRegistry, StaffingRule
from storage import inspections as store
from storage import ledger as ledger_store

Rhythm = Literal["daily", "weekly", "monthly"]
RHYTHMS: dict[str, str] = {"daily": "日", "weekly": "周", "monthly": "月"}
#: How loud a finding is in the risk list (cases without a finding — staffing, hand-made — weigh 2).
SEVERITY = {"violation": 4, "unlicensed": 3, "nonconforming": 2, "review": 1}
_DEFAULT_SEVERITY = 2
#: How far back the due list looks for undone periods by default (days).
LOOKBACK_DAYS = 31
#: The longest window the due list accepts (days).
MAX_WINDOW_DAYS = 366


def is_workday(day: dt.date) -> bool:
    """A working day on China's calendar; a year the holiday notices do not cover yet: weekdays."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def _last_workday(first: dt.date, last: dt.date) -> dt.date | None:
    day = last
    while day >= first:
        if is_workday(day):
            return day
        day -= dt.timedelta(days=1)
    return None


@dataclass(frozen=True)
class Period:
    """One occurrence of a plan: it starts on ``start`` and must be done by ``due_by``."""

    start: dt.date
    due_by: dt.date


def _check_day(day: dt.date, field: str) -> None:
    if not 1900 <= day.year <= 2100:
        msg = f"{field} must be in the years 1900–2100, got {day.isoformat()}"
        raise InvalidInput(msg, field=field, value=day.isoformat(), message_zh="日期须在1900—2100年之间")


def due_window(on: dt.date, since: dt.date | None) -> dt.date:
    """The first day the due list looks at: ``since`` (at most a year before ``on``), else
    :data:`LOOKBACK_DAYS` before it."""
    _check_day(on, "date")
    since = since or on - dt.timedelta(days=LOOKBACK_DAYS)
    _check_day(since, "since")
    if not on - dt.timedelta(days=MAX_WINDOW_DAYS) <= since <= on:
        msg = f"since ({since}) must be on or before date ({on}) and at most {MAX_WINDOW_DAYS} days before it"
        raise InvalidInput(msg, field="since", value=since.isoformat(), message_zh="起始日期须在查询日期之前一年内")
    return since


def period_of(rhythm: str, day: dt.date) -> Period | None:
    """The period of ``rhythm`` containing ``day`` (daily: None on a day off)."""
    _check_day(day, "period_start")
    if rhythm == "daily":
        return Period(day, day) if is_workday(day) else None
    if rhythm == "weekly":
        first = day - dt.timedelta(days=day.weekday())
        last = first + dt.timedelta(days=6)
    elif rhythm == "monthly":
        first = day.replace(day=1)
        last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    else:
        msg = f"rhythm must be one of {list(RHYTHMS)}, got {rhythm!r}"
        raise InvalidInput(msg, field="rhythm", value=rhythm, message_zh=f"巡查频次须为 日/周/月：{rhythm!r}")
    due = _last_workday(first, last)
    return Period(first, due) if due is not None else None


def periods(rhythm: str, since: dt.date, until: dt.date) -> Iterator[Period]:
    """The periods of ``rhythm`` that start on or before ``until`` and end on or after ``since``."""
    day, seen = since, set()
    while day <= until:
        p = period_of(rhythm, day)
        if p is not None and p.start not in seen and p.start <= until:
            seen.add(p.start)
            yield p
        day += dt.timedelta(days=1)


def due_items(
    plans: Sequence[dict[str, Any]], *, on: dt.date, since: dt.date | None = None, include_done: bool = False
) -> list[dict[str, Any]]:
    """What is due on ``on`` or overdue (not done by its day) since ``since``, plan by plan.

    A plan starts with the day it was created. ``status`` is ``overdue`` (its last day has passed), ``due``
    (the period runs today) or, with ``include_done``, ``done`` (with who did it and when).
    """
    since = since or on - dt.timedelta(days=LOOKBACK_DAYS)
    out = []
    for plan in plans:
        start = max(since, ledger_store.local_date(dt.datetime.fromisoformat(plan["created_at"])))
        for p in periods(plan["rhythm"], start, on):
            record = plan["records"].get(p.start.isoformat())
            if record is not None and not include_done:
                continue
            status = "done" if record else "overdue" if p.due_by < on else "due"
            out.append(
                {
                    "plan_id": plan["id"], "school_id": plan["school_id"], "school_name": plan["school_name"],
                    "district": plan["district"], "department": plan["department"], "rhythm": plan["rhythm"],
                    "items": plan["items"], "period_start": p.start.isoformat(), "due_by": p.due_by.isoformat(),
                    "status": status, "done_by": record["done_by"] if record else None,
                    "done_at": record["done_at"] if record else None,
                }
            )  # fmt: skip
    order = {"overdue": 0, "due": 1, "done": 2}
    return sorted(out, key=lambda d: (order[d["status"]], d["due_by"], d["plan_id"]))


def record_period(rhythm: str, day: dt.date, period_start: dt.date | None) -> dt.date:
    """The start of the period an inspection is recorded for: ``period_start`` if it starts a period,
    else the period containing ``day`` (daily plans on a day off: the last working day)."""
    if period_start is not None:
        p = period_of(rhythm, period_start)
        if p is None or p.start != period_start:
            msg = f"{period_start} does not start a {rhythm} period (starts: {p.start if p else 'none — a day off'})"
            raise InvalidInput(
                msg, field="period_start", value=period_start.isoformat(), message_zh="该日期不是巡查周期的起始日"
            )
        return period_start
    while (p := period_of(rhythm, day)) is None:
        day -= dt.timedelta(days=1)
    return p.start


def acting_department(own: str | None, requested: str | None, *, fallback: str) -> str:
    """The department a plan or campaign belongs to: a department user's own (asking for another is
    refused); an admin's choice, else ``fallback``."""
    if own is None:
        return requested or fallback
    if requested is not None and requested != own:
        msg = f"a {own} user cannot act for {requested}"
        raise Forbidden(msg, field="department", value=requested, message_zh=f"无权代 {requested} 部门登记")
    return own


def campaign_defaults(
    registry: RuleRegistry, categories: Sequence[str], district: str | None, *, on: dt.date
) -> tuple[float | None, str | None]:
    """The zone radius (the largest fixed distance of the rules in force for ``categories``) and the lead
    department of the first such rule — a campaign's defaults."""
    rules = [r for c in categories for r in registry.rules_for_category(district, c, on=on) if r.distance_m]
    if not rules:
        return None, None
    return max(r.distance_m or 0.0 for r in rules), rules[0].lead_department


# --- campaign checks → cases --------------------------------------------------------------------

_LEVEL_ALIASES = {"nine_year": ("primary", "junior"), "complete": ("junior", "senior")}


def campaign_rule(
    registry: RuleRegistry,
    *,
    categories: Sequence[str],
    district: str | None,
    school_levels: Sequence[str],
    distance_m: float,
    on: dt.date,
) -> Rule | None:
    """The rule in force at the premises' district that its check breaks: the first rule of its
    ``categories`` (in the campaign's order) protecting a level of the school (a school of unknown level
    is protected by every rule) whose distance reaches the premises; None when no rule does."""
    levels = {lv for level in school_levels for lv in _LEVEL_ALIASES.get(level, (level,))} & LEVELS
    for category in categories:
        for rule in registry.rules_for_category(district, category, on=on):
            if levels and not levels & set(rule.levels):
                continue
            if rule.distance_m is None or distance_m <= rule.distance_m:
                return rule
    return None


def record_check(
    session: Session,
    registry: RuleRegistry,
    campaign_id: int,
    check: dict[str, Any],
    *,
    who: ledger_store.Actor,
    department: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """Record a campaign check; a violation goes into the ledger by itself (``case_id``, ``case_action``).

    The case names the campaign as its source, the premises, the school whose zone it is in, the rule in
    force there and its lead department (cooperating: the rule's, the campaign's and the checking
    department), due by the category's deadline (working days where set). A second violation of the same
    premises while its case is open adds to that case (as does a check naming an open ``case_id``).
    """
    today = ledger_store.local_date(now)
    premises_id, result, case_id = check["premises_id"], check["result"], check.get("case_id")
    scope = store.check_scope(
        session, campaign_id, premises_id, result=result, case_id=case_id, today=today, department=department
    )
    action = None
    if result == "violation":
        fields = _case_fields(registry, scope, note=check.get("note"), who=who, department=department, today=today)
        ledger_store.lock_subject(session, fields["subject"])
        previous = case_id if case_id is not None else store.check_case_id(session, campaign_id, premises_id)
        case_id, action = ledger_store.case_from_check(
            session, **fields, previous_case_id=previous, who=who, department=department, now=now
        )
    out = store.save_check(
        session, campaign_id, premises_id, result=result, note=check.get("note"), case_id=case_id,
        checked_by=who.name, now=now,
    )  # fmt: skip
    return {**out, "case_action": action}


def _case_fields(
    registry: RuleRegistry,
    scope: dict[str, Any],
    *,
    note: str | None,
    who: ledger_store.Actor,
    department: str | None,
    today: dt.date,
) -> dict[str, Any]:
    campaign = scope["campaign"]
    categories = [c for c in campaign["categories"] if c in set(scope["categories"] or ())] or campaign["categories"]
    rule = campaign_rule(
        registry, categories=categories, district=scope["district"], school_levels=scope["school_levels"] or (),
        distance_m=scope["distance_m"], on=today,
    )  # fmt: skip
    if rule is not None:
        rule_id, category, lead = rule.id, rule.category, rule.lead_department
        coop = {*rule.cooperating_departments, campaign["lead_department"]}
    else:
        rule_id, category, lead, coop = f"campaign.{categories[0]}", categories[0], campaign["lead_department"], set()
    if department is not None:
        coop.add(department)
    reason = f"campaign {campaign['id']} {campaign['name']}: violation recorded by {who.name}"
    return {
        "subject": f"premises:{scope['premises_id']}",
        "rule_id": rule_id,
        "category": category,
        "title": f"{scope['name']} · {rule_id} · {scope['school_name']}（{campaign['name']}）",
        "lead_department": lead,
        "cooperating_departments": sorted(coop - {lead}),
        "point": (scope["lon"], scope["lat"]),
        "reason": f"{reason}; {note}" if note else reason,
        "details": {
            "campaign_id": campaign["id"], "campaign": campaign["name"], "checked_by": who.name, "note": note,
            "school_name": scope["school_name"], "distance_m": round(scope["distance_m"], 1),
        },
        "premises_id": scope["premises_id"],
        "school_id": scope["school_id"],
        "campus_id": scope["campus_id"],
        "district_adcode": scope["district"],
    }  # fmt: skip


# --- risk and responsibility lists ---------------------------------------------------------------


def risk_list(cases: Sequence[dict[str, Any]], *, today: dt.date) -> list[dict[str, Any]]:
    """Open cases per school, schools ranked by overdue cases, then the worst severity, then open cases;
    within a school, overdue first (longest overdue first), then severity, then the nearest deadline.
    Cases with no school come last, under ``school_id`` None."""
    schools: dict[int | None, dict[str, Any]] = {}
    for c in cases:
        sev = SEVERITY.get(c["finding_status"] or "", _DEFAULT_SEVERITY)
        days = (today - c["deadline"]).days if c["overdue"] else 0
        item = {
            "id": c["id"], "title": c["title"], "state": c["state"], "state_zh": STATES.get(c["state"]),
            "category": c["category"], "rule_id": c["rule_id"], "finding_status": c["finding_status"],
            "severity": sev, "deadline": c["deadline"].isoformat() if c["deadline"] else None,
            "overdue": bool(c["overdue"]), "days_overdue": days, "lead_department": c["lead_department"],
            "cooperating_departments": list(c["cooperating_departments"] or []),
        }  # fmt: skip
        s = schools.setdefault(
            c["school_id"],
            {"school_id": c["school_id"], "school_name": c["school_name"], "district": c["district"], "cases": []},
        )
        s["cases"].append(item)
    for s in schools.values():
        s["cases"].sort(key=lambda i: (-i["days_overdue"], -i["severity"], i["deadline"] or "9999", i["id"]))
        s["open"] = len(s["cases"])
        s["overdue"] = sum(i["overdue"] for i in s["cases"])
        s["max_severity"] = max(i["severity"] for i in s["cases"])
    ranked = sorted(
        schools.values(),
        key=lambda s: (s["school_id"] is None, -s["overdue"], -s["max_severity"], -s["open"], s["school_name"] or ""),
    )
    for rank, s in enumerate(ranked, 1):
        s["rank"] = rank
    return ranked


def responsibility_list(
    registry: RuleRegistry, district: str, by_department: Sequence[dict[str, Any]], *, on: dt.date
) -> list[dict[str, Any]]:
    """Per department: the rules it leads and those it cooperates on in ``district`` (from the packs in
    force), and its open and overdue cases there (lead department)."""
    in_force = registry.in_force(district, on=on)
    names = registry.departments
    rows: dict[str, dict[str, Any]] = {}

    def row(dept: str) -> dict[str, Any]:
        return rows.setdefault(
            dept,
            {"department": dept, "department_zh": names.get(dept), "leads": [], "cooperates": [], "open": 0,
             "overdue": 0},
        )  # fmt: skip

    every: list[Rule | StaffingRule] = [*in_force.rules, *in_force.staffing]
    for rule in every:
        entry = {
            "rule_id": rule.id, "category": getattr(rule, "category", "staffing"),
            "distance_m": getattr(rule, "distance_m", None), "basis": rule.legal_basis.citation,
        }  # fmt: skip
        row(rule.lead_department)["leads"].append(entry)
        for dept in rule.cooperating_departments:
            row(dept)["cooperates"].append(entry)
    for r in by_department:
        d = row(r["key"])
        d["open"], d["overdue"] = r["open"], r["overdue"]
    return sorted(rows.values(), key=lambda d: (-len(d["leads"]), d["department"]))


def district_lists(
    session: Session, registry: RuleRegistry, *, district: str, department: str | None, today: dt.date
) -> dict[str, Any]:
    """The risk list and the responsibility list of one district."""
    cases = store.open_cases_by_school(session, department=department, district=district, today=today)
    by_dept, _ = ledger_store.report(
        session, by="department", department=department, today=today, limit=1000, district=district
    )
    return {
        "district": district,
        "date": today.isoformat(),
        "risks": risk_list(cases, today=today),
        "responsibilities": responsibility_list(registry, district, by_dept, on=today),
    }


# --- the overview page ---------------------------------------------------------------------------

_CATEGORY_ZH = {
    "internet_cafe": "网吧", "entertainment": "娱乐场所", "bar": "酒吧", "lottery": "彩票", "tobacco": "烟草",
    "alcohol": "酒类", "food_stall": "食品摊贩", "polluter": "污染企业", "hazardous": "危险品", "other": "其他",
    "staffing": "安保人员", "access_control": "门禁",
}  # fmt: skip
_BAR_H, _LABEL_W, _CHART_W = 22, 150, 420


def _bars(title: str, rows: Sequence[tuple[str, int]], *, chart_id: str, color: str = "#1565c0") -> str:
    """A horizontal bar chart as inline SVG, each bar labelled with its number."""
    top = max((n for _, n in rows), default=0) or 1
    height = _BAR_H * len(rows) + 8
    bars = []
    for i, (label, n) in enumerate(rows):
        y = 4 + i * _BAR_H
        w = round((_CHART_W - _LABEL_W - 50) * n / top)
        bars.append(
            f'<text x="{_LABEL_W - 6}" y="{y + 15}" text-anchor="end">{html.escape(label)}</text>'
            f'<rect x="{_LABEL_W}" y="{y + 3}" width="{w}" height="{_BAR_H - 6}" fill="{color}"/>'
            f'<text x="{_LABEL_W + w + 4}" y="{y + 15}" class="n" data-key="{html.escape(label)}">{n}</text>'
        )
    empty = "" if rows else '<p class="empty">无数据 no data</p>'
    return (
        f'<section id="{chart_id}"><h2>{html.escape(title)}</h2>{empty}'
        f'<svg width="{_CHART_W}" height="{height}" role="img" aria-label="{html.escape(title)}">{"".join(bars)}</svg>'
        "</section>"
    )


def _trend_svg(trend: Sequence[dict[str, Any]]) -> str:
    """Opened and closed cases per month as paired columns (inline SVG)."""
    top = max((max(t["opened"], t["closed"]) for t in trend), default=0) or 1
    col, gap, h = 16, 26, 170
    width = max(len(trend) * (2 * col + gap) + 40, 200)
    parts = []
    for i, t in enumerate(trend):
        x = 30 + i * (2 * col + gap)
        for j, (key, color) in enumerate((("opened", "#c62828"), ("closed", "#2e7d32"))):
            bh = round((h - 45) * t[key] / top)
            parts.append(
                f'<rect x="{x + j * col}" y="{h - 20 - bh}" width="{col - 2}" height="{bh}" fill="{color}">'
                f"<title>{t['month']} {key} {t[key]}</title></rect>"
                f'<text x="{x + j * col + 6}" y="{h - 24 - bh}" text-anchor="middle" class="n" '
                f'data-month="{t["month"]}" data-kind="{key}">{t[key]}</text>'
            )
        parts.append(f'<text x="{x + col}" y="{h - 4}" text-anchor="middle">{t["month"]}</text>')
    return (
        '<section id="trend"><h2>月度趋势 Monthly trend（<span style="color:#c62828">新增 opened</span> / '
        '<span style="color:#2e7d32">销号 closed</span>）</h2>'
        f'<svg width="{width}" height="{h}" role="img" aria-label="monthly trend">{"".join(parts)}</svg></section>'
    )


def _district_label(adcode: str | None, name: str | None) -> str:
    """A district as people read it, with the adcode that identifies it: 秀峰区 450302."""
    if not adcode:
        return "（无）"
    return f"{name} {adcode}" if name else adcode


def overview_page(
    *,
    today: dt.date,
    district: str | None,
    district_name: str | None = None,
    by_state: dict[str, int],
    by_category: Sequence[dict[str, Any]],
    by_district: Sequence[dict[str, Any]],
    trend: Sequence[dict[str, Any]],
) -> str:
    """The ledger overview (台账总览): totals and charts, self-contained (no external URL, no script).
    Districts show their names from the register next to their adcodes (``by_district`` rows' ``name``)."""
    open_n = sum(r["open"] for r in by_category)
    overdue_n = sum(r["overdue"] for r in by_category)
    closed_n = sum(r["closed"] for r in by_category)
    in_time = sum(r["closed_in_time"] for r in by_category)
    pct = f"{100.0 * in_time / closed_n:.1f}%" if closed_n else "—"
    cards = "".join(
        f'<div class="card" id="{key}"><div class="v">{value}</div><div>{label}</div></div>'
        for key, value, label in (
            ("open", open_n, "未销号 open"),
            ("overdue", overdue_n, "逾期 overdue"),
            ("closed", closed_n, "已销号 closed"),
            ("in_time", pct, "按期销号率 closed in time"),
        )
    )
    states = [(f"{STATES[s]} {s}", by_state.get(s, 0)) for s in STATES if by_state.get(s)]
    cats = [(f"{_CATEGORY_ZH.get(r['key'], r['key'])} {r['key']}", r["total"]) for r in by_category]
    dists = [(_district_label(r["key"], r.get("name")), r["total"]) for r in by_district]
    scope = f"行政区 {html.escape(_district_label(district, district_name))}" if district else "全市 whole city"
    return f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>台账总览 Ledger overview</title>
<style>body{{font:14px sans-serif;margin:16px;color:#222}}.cards{{display:flex;gap:12px;flex-wrap:wrap}}
.card{{border:1px solid #ccc;border-radius:6px;padding:10px 16px;min-width:120px}}.card .v{{font-size:28px}}
section{{margin-top:18px}}h2{{font-size:16px}}svg text{{font-size:12px}}svg text.n{{fill:#333}}
.charts{{display:flex;flex-wrap:wrap;gap:24px}}</style></head><body>
<h1>学校周边安全风险台账总览 Ledger overview</h1><p>{scope} · {today.isoformat()}</p>
<div class="cards">{cards}</div><div class="charts">
{_bars("按状态 By state", states, chart_id="by-state", color="#6a1b9a")}
{_bars("按类别 By category", cats, chart_id="by-category")}
{_bars("按行政区 By district", dists, chart_id="by-district", color="#ef6c00")}
</div>{_trend_svg(trend)}</body></html>"""
