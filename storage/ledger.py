"""The risk ledger in PostGIS: cases, their events and findings, the overdue ladder, reports.

Every function flushes into the caller's transaction; the caller commits. Rows leave as plain dicts.
``department`` None means an admin (every case); otherwise only cases whose lead or cooperating
department it is are seen or moved — any other id answers "not found".
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import Point, mapping
from sqlalchemy import ColumnElement, Select, and_, func, literal, literal_column, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from geo.errors import Conflict, InvalidInput, NotFound
from geo.ledger import CLOSED_STATES, add_working_days, check_transition, deadline_for
from geo.rules import DEFAULT_ESCALATION, EscalationLevel, RuleRegistry
from storage.models import Campus, Case, CaseEvent, CaseFinding, District, Finding, Premises, School
from storage.read import Page, district_filter

SHANGHAI = ZoneInfo("Asia/Shanghai")
_CLOSED = tuple(CLOSED_STATES)
#: Which finding status speaks loudest when several findings of one (premises, rule) disagree.
_STATUS_WEIGHT = {"violation": 4, "unlicensed": 3, "nonconforming": 2, "review": 1}
#: The five 五落实 fields (and the deadline, which may be set by hand).
PLAN_FIELDS = ("responsible_department", "responsible_person", "measures", "funds_yuan", "plan", "deadline")


@dataclass(frozen=True)
class Actor:
    """Who acts: a person's name (the token's name), the role, the token; ``system`` for scans and clocks."""

    name: str
    role: str
    token_id: int | None = None


SYSTEM = Actor("system", "system")


def local_date(now: dt.datetime) -> dt.date:
    return now.astimezone(SHANGHAI).date()


def visible(department: str | None) -> ColumnElement[bool]:
    """Cases a department may see: those it leads or cooperates on (admins: all)."""
    if department is None:
        return literal(True)
    return or_(Case.lead_department == department, Case.cooperating_departments.any(department))


def _open() -> ColumnElement[bool]:
    return Case.state.not_in(_CLOSED)


def overdue_clause(today: dt.date) -> ColumnElement[bool]:
    """Open and past the deadline (the deadline day itself is in time)."""
    return and_(_open(), Case.deadline.is_not(None), Case.deadline < today)


def _event(session: Session, case: Case, *, kind: str, who: Actor, now: dt.datetime, **kw: Any) -> None:
    session.add(
        CaseEvent(case_id=case.id, at=now, kind=kind, actor=who.name, role=who.role, token_id=who.token_id, **kw)
    )


def _case_dict(c: Case, today: dt.date | None = None) -> dict[str, Any]:
    geometry = mapping(to_shape(c.geom)) if c.geom is not None else None
    props = {
        "state": c.state,
        "title": c.title,
        "rule_id": c.rule_id,
        "category": c.category,
        "source": c.source,
        "finding_status": c.finding_status,
        "premises_id": c.premises_id,
        "school_id": c.school_id,
        "campus_id": c.campus_id,
        "district": c.district_adcode,
        "lead_department": c.lead_department,
        "cooperating_departments": list(c.cooperating_departments or []),
        "responsible_department": c.responsible_department,
        "responsible_person": c.responsible_person,
        "measures": c.measures,
        "funds_yuan": c.funds_yuan,
        "plan": c.plan,
        "deadline": c.deadline.isoformat() if c.deadline else None,
        "deadline_source": c.deadline_source,
        "overdue": bool(today and c.state not in CLOSED_STATES and c.deadline and c.deadline < today),
        "escalated_at": c.overdue_since.isoformat() if c.overdue_since else None,
        "escalation_level": c.escalation_level or 0,
        "escalated_to": c.escalated_to,
        "escalation_level_at": c.escalation_level_at.isoformat() if c.escalation_level_at else None,
        "remediation_by": c.remediation_by,
        "dismissed_reason": c.dismissed_reason,
        "details": c.details or {},
        "last_scan_id": c.last_scan_id,
        "opened_at": c.opened_at.isoformat(),
        "closed_at": c.closed_at.isoformat() if c.closed_at else None,
        "updated_at": c.updated_at.isoformat(),
    }
    return {"id": c.id, "geometry": geometry, "properties": props}


def create_case(
    session: Session,
    *,
    subject: str,
    rule_id: str,
    category: str,
    source: str,
    state: str,
    title: str,
    lead_department: str,
    cooperating_departments: Sequence[str] = (),
    now: dt.datetime,
    who: Actor,
    point: tuple[float, float] | None = None,
    deadline: dt.date | None = None,
    deadline_source: str | None = None,
    reason: str | None = None,
    **fields: Any,
) -> int:
    """Open a case; refuses a second open case for the same subject and rule (409)."""
    existing = session.scalar(select(Case.id).where(Case.subject == subject, Case.rule_id == rule_id, _open()))
    if existing is not None:
        msg = f"case {existing} is already open for {subject} under rule {rule_id}"
        raise Conflict(msg, field="rule_id", value=rule_id, message_zh=f"该对象在此规则下已有未销号案件 {existing}")
    if deadline is None:
        deadline, deadline_source = deadline_for(category, local_date(now))
    case = Case(
        subject=subject,
        rule_id=rule_id,
        category=category,
        source=source,
        state=state,
        title=title,
        lead_department=lead_department,
        cooperating_departments=list(cooperating_departments),
        geom=from_shape(Point(*point), srid=4326) if point else None,
        deadline=deadline,
        deadline_source=deadline_source or "manual",
        opened_at=now,
        updated_at=now,
        **fields,
    )
    session.add(case)
    session.flush()
    _event(session, case, kind="created", who=who, now=now, to_state=state, reason=reason, details={"source": source})
    session.flush()
    return case.id


def _load(session: Session, case_id: int, department: str | None, *, lock: bool = False) -> Case:
    stmt = select(Case).where(Case.id == case_id, visible(department))
    if lock:
        stmt = stmt.with_for_update()
    case = session.scalar(stmt)
    if case is None:
        msg = f"no case with id {case_id}"
        raise NotFound(msg, field="id", value=case_id, message_zh=f"未找到案件 {case_id}")
    return case


def get_case(session: Session, case_id: int, *, department: str | None, today: dt.date) -> dict[str, Any]:
    """One case with its history (who, when, why) and the findings behind it."""
    case = _load(session, case_id, department)
    out = _case_dict(case, today)
    events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id))
    out["properties"]["events"] = [
        {
            "at": e.at.isoformat(),
            "kind": e.kind,
            "actor": e.actor,
            "role": e.role,
            "from": e.from_state,
            "to": e.to_state,
            "reason": e.reason,
            "details": e.details or {},
        }
        for e in events
    ]
    links = session.execute(
        select(CaseFinding.finding_id, CaseFinding.scan_id)
        .where(CaseFinding.case_id == case_id)
        .order_by(CaseFinding.finding_id)
    ).all()
    out["properties"]["findings"] = [{"finding_id": f, "scan_id": s} for f, s in links]
    return out


def case_state(session: Session, case_id: int) -> str:
    return session.scalars(select(Case.state).where(Case.id == case_id)).one()


def _filtered(
    stmt: Select[Any],
    *,
    department: str | None,
    today: dt.date,
    state: str | None = None,
    overdue: bool | None = None,
    district: str | None = None,
    category: str | None = None,
    lead_department: str | None = None,
    school_id: int | None = None,
    premises_id: int | None = None,
    source: str | None = None,
    closed_in_time: bool | None = None,
    escalation_level: int | None = None,
) -> Select[Any]:
    stmt = stmt.where(visible(department))
    if state == "open":
        stmt = stmt.where(_open())
    elif state is not None:
        stmt = stmt.where(Case.state == state)
    if overdue is True:
        stmt = stmt.where(overdue_clause(today))
    elif overdue is False:
        stmt = stmt.where(~overdue_clause(today))
    if district:
        stmt = stmt.where(district_filter(Case.district_adcode, district))
    if category:
        stmt = stmt.where(Case.category == category)
    if lead_department:
        stmt = stmt.where(Case.lead_department == lead_department)
    if school_id is not None:
        stmt = stmt.where(Case.school_id == school_id)
    if premises_id is not None:
        stmt = stmt.where(Case.premises_id == premises_id)
    if source:
        stmt = stmt.where(Case.source == source)
    if closed_in_time is not None:
        in_time = and_(Case.state == "closed", _closed_in_time())
        stmt = stmt.where(in_time if closed_in_time else ~in_time)
    if escalation_level is not None:
        stmt = stmt.where(Case.escalation_level == escalation_level)
    return stmt


def _closed_in_time() -> ColumnElement[bool]:
    closed_day = func.date(func.timezone("Asia/Shanghai", Case.closed_at))
    return or_(Case.deadline.is_(None), closed_day <= Case.deadline)


def list_cases(
    session: Session, *, department: str | None, today: dt.date, after: int | None, limit: int, **filters: Any
) -> Page:
    """Cases, newest id last, keyset-paged; ``total`` counts every match (for the report cross-check)."""
    base = _filtered(select(Case), department=department, today=today, **filters)
    total = session.scalar(select(func.count()).select_from(base.subquery()))
    stmt = base.order_by(Case.id).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(Case.id > after)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    feats = [_case_dict(c, today) for c in rows[:limit]]
    return Page(feats, feats[-1]["id"] if more and feats else None, total)


def transition(
    session: Session,
    case_id: int,
    to: str,
    *,
    department: str | None,
    who: Actor,
    now: dt.datetime,
    reason: str | None = None,
) -> dict[str, Any]:
    """Move a case along the loop, recording who, when and why; refuses what the table does not allow."""
    case = _load(session, case_id, department, lock=True)
    check_transition(case.state, to, role=who.role, actor=who.name, reason=reason, remediation_by=case.remediation_by)
    if to == "reopened":
        other = session.scalar(
            select(Case.id).where(
                Case.subject == case.subject, Case.rule_id == case.rule_id, _open(), Case.id != case.id
            )
        )
        if other is not None:
            msg = f"case {other} is already open for the same premises and rule; work that one"
            raise Conflict(msg, field="to", value=to, message_zh=f"同一对象同一规则已有未销号案件 {other}")
    _apply(session, case, to, who=who, now=now, reason=reason)
    return _case_dict(case, local_date(now))


def _apply(session: Session, case: Case, to: str, *, who: Actor, now: dt.datetime, reason: str | None) -> None:
    before = case.state
    if before == "remediation" and to == "acceptance":
        case.remediation_by = who.name
    if to == "closed":
        case.closed_at = now
    if to == "dismissed":
        case.dismissed_reason = reason
        case.closed_at = now
    if to == "reopened":
        case.closed_at = None
        case.remediation_by = None
        _reset_ladder(case)
        case.deadline, case.deadline_source = deadline_for(case.category, local_date(now))
    case.state = to
    case.updated_at = now
    _event(session, case, kind="transition", who=who, now=now, from_state=before, to_state=to, reason=reason)
    session.flush()


def _reset_ladder(case: Case) -> None:
    """A new deadline (set by hand, or on reopening) starts the overdue ladder again."""
    case.overdue, case.overdue_since = False, None
    case.escalation_level, case.escalated_to, case.escalation_level_at = 0, None, None


def update_plan(
    session: Session, case_id: int, values: dict[str, Any], *, department: str | None, who: Actor, now: dt.datetime
) -> dict[str, Any]:
    """Set the 五落实 fields (responsibility, measures, funds, deadline, plan); the change is recorded."""
    case = _load(session, case_id, department, lock=True)
    if case.state in CLOSED_STATES:
        msg = f"case {case_id} is {case.state}; reopen it before changing its plan"
        raise Conflict(msg, field="state", value=case.state, message_zh="案件已销号或撤销，须先重新打开")
    changed: dict[str, Any] = {}
    for key, value in values.items():
        if key not in PLAN_FIELDS:
            msg = f"unknown field {key!r}; the plan fields are {list(PLAN_FIELDS)}"
            raise InvalidInput(msg, field=key, value=key)
        old = getattr(case, key)
        if old != value:
            changed[key] = {
                "from": old.isoformat() if isinstance(old, dt.date) else old,
                "to": value.isoformat() if isinstance(value, dt.date) else value,
            }
            setattr(case, key, value)
    if "deadline" in changed:
        case.deadline_source = "manual"
        _reset_ladder(case)
    if changed:
        case.updated_at = now
        _event(session, case, kind="plan", who=who, now=now, details=changed)
        session.flush()
    return _case_dict(case, local_date(now))


# --- from scan findings ------------------------------------------------------------------------


def latest_scan_id(session: Session) -> int | None:
    return session.scalar(text("SELECT max(id) FROM scans WHERE status = 'done'")) or session.scalar(
        text("SELECT max(id) FROM scans")
    )


def apply_findings(session: Session, scan_id: int, *, now: dt.datetime) -> dict[str, int]:
    """Turn a scan's findings into cases: one open case per (premises, rule).

    A finding whose (premises, rule) already has an open case adds to it; a closed case whose premises
    the scan still finds in the zone reopens by itself; otherwise a case opens at ``warning``, due at the
    finding's due date (nonconforming premises) or by its category's deadline.
    """
    groups = session.execute(
        select(
            Finding.premises_id,
            Finding.rule_id,
            func.array_agg(Finding.id).label("ids"),
            func.array_agg(Finding.status).label("statuses"),
            func.min(Finding.due_date).label("due"),
            func.min(Finding.category).label("category"),
            func.min(Finding.premises_name).label("premises_name"),
            func.min(Finding.school_name).label("school_name"),
            func.min(Finding.school_id).label("school_id"),
            func.min(Finding.campus_id).label("campus_id"),
            func.min(Finding.district_adcode).label("district"),
            func.min(Finding.lead_department).label("lead"),
            func.min(func.array_to_string(Finding.cooperating_departments, ",")).label("coop"),
            func.min(func.ST_X(Finding.geom)).label("x"),
            func.min(func.ST_Y(Finding.geom)).label("y"),
        )
        .where(Finding.scan_id == scan_id)
        .group_by(Finding.premises_id, Finding.rule_id)
        .order_by(Finding.premises_id, Finding.rule_id)
    ).all()
    subjects = sorted({f"premises:{g.premises_id}" for g in groups})
    cases = session.scalars(
        select(Case).where(Case.subject.in_(subjects)).order_by(Case.subject, Case.rule_id, Case.id.desc())
    ).all()
    open_by_key: dict[tuple[str, str], Case] = {}
    closed_by_key: dict[tuple[str, str], Case] = {}
    for c in cases:
        target = closed_by_key if c.state in CLOSED_STATES else open_by_key
        if c.state == "dismissed":
            continue
        target.setdefault((c.subject, c.rule_id), c)
    counts = {"created": 0, "added": 0, "reopened": 0}
    links: list[dict[str, int]] = []
    for g in groups:
        subject = f"premises:{g.premises_id}"
        status = max(g.statuses, key=lambda s: _STATUS_WEIGHT.get(s, 0))
        case = open_by_key.get((subject, g.rule_id)) or open_by_key.get((subject, f"report.{g.category}"))
        if case is not None:
            counts["added"] += 1
            _event(
                session,
                case,
                kind="finding",
                who=SYSTEM,
                now=now,
                details={"scan_id": scan_id, "findings": list(g.ids)},
            )
        elif (subject, g.rule_id) in closed_by_key:
            case = closed_by_key[(subject, g.rule_id)]
            _apply(
                session,
                case,
                "reopened",
                who=SYSTEM,
                now=now,
                reason=f"scan {scan_id} still finds the premises in the zone of {g.school_name} (closed but not fixed)",
            )
            counts["reopened"] += 1
        else:
            deadline, source = deadline_for(g.category, local_date(now), due_date=g.due)
            case_id = create_case(
                session,
                subject=subject,
                rule_id=g.rule_id,
                category=g.category,
                source="scan",
                state="warning",
                title=f"{g.premises_name} · {g.rule_id} · {g.school_name}",
                lead_department=g.lead,
                cooperating_departments=[d for d in (g.coop or "").split(",") if d],
                now=now,
                who=SYSTEM,
                point=(g.x, g.y),
                deadline=deadline,
                deadline_source=source,
                reason=f"scan {scan_id}: {status}",
                premises_id=g.premises_id,
                school_id=g.school_id,
                campus_id=g.campus_id,
                district_adcode=g.district,
                finding_status=status,
            )
            case = session.get(Case, case_id)
            counts["created"] += 1
        case.last_scan_id = scan_id
        case.finding_status = status
        links.extend({"case_id": case.id, "finding_id": fid, "scan_id": scan_id} for fid in g.ids)
    if links:
        session.execute(insert(CaseFinding).values(links).on_conflict_do_nothing())
    session.flush()
    return counts


# --- field reports, campaign checks, staffing ----------------------------------------------------


def add_observed_premises(
    session: Session, *, lon: float, lat: float, name: str, address: str | None, category: str, district: str | None
) -> int:
    """A premises seen by a patrol: observed category, no permit on record (so ``unlicensed``)."""
    row = Premises(
        external_id=f"patrol:{uuid.uuid4()}",
        name=name,
        address=address,
        categories=[category],
        geom=from_shape(Point(lon, lat), srid=4326),
        district_adcode=district,
        source="patrol",
    )
    session.add(row)
    session.flush()
    return row.id


def lock_subject(session: Session, subject: str) -> None:
    """Serialise, until the transaction ends, whoever opens or extends a case of ``subject``."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"case:{subject}"})


def _note_check(
    session: Session, case: Case, *, who: Actor, department: str | None, now: dt.datetime, details: dict[str, Any]
) -> None:
    """A campaign check found the case's premises in violation again: record it; the checking
    department cooperates on the case from now on (so it sees the case its check went into)."""
    coop = list(case.cooperating_departments or [])
    if department is not None and department != case.lead_department and department not in coop:
        case.cooperating_departments = [*coop, department]
        details = {**details, "cooperating_department_added": department}
    case.updated_at = now
    _event(session, case, kind="check", who=who, now=now, details=details)
    session.flush()


def case_from_check(
    session: Session,
    *,
    subject: str,
    rule_id: str,
    category: str,
    previous_case_id: int | None,
    who: Actor,
    department: str | None,
    now: dt.datetime,
    title: str,
    lead_department: str,
    cooperating_departments: Sequence[str],
    point: tuple[float, float] | None,
    reason: str,
    details: dict[str, Any],
    **fields: Any,
) -> tuple[int, str]:
    """The case a campaign check's violation goes into, and what became of it (``added`` | ``reopened`` |
    ``opened``); the caller holds :func:`lock_subject`.

    One open case per (premises, rule), as for scan findings: the case the campaign's earlier check of
    the premises went into while it is open, else the open case of the premises under the rule (or a
    field report's of the category), is added to; else the premises' closed case under the rule reopens
    (closed but not fixed); else a case opens at ``inspection`` (the check was the on-site 排查), due by
    the category's deadline.
    """
    event = {"campaign_id": details.get("campaign_id"), "result": "violation", "checked_by": who.name}
    case = None
    if previous_case_id is not None:
        case = session.scalar(select(Case).where(Case.id == previous_case_id, _open()).with_for_update())
    if case is None:
        case = session.scalar(
            select(Case)
            .where(Case.subject == subject, Case.rule_id.in_([rule_id, f"report.{category}"]), _open())
            .order_by((Case.rule_id == rule_id).desc(), Case.id)
            .limit(1)
            .with_for_update()
        )
    if case is not None:
        _note_check(session, case, who=who, department=department, now=now, details=event)
        return case.id, "added"
    closed = session.scalar(
        select(Case)
        .where(Case.subject == subject, Case.rule_id == rule_id, Case.state == "closed")
        .order_by(Case.id.desc())
        .limit(1)
        .with_for_update()
    )
    if closed is not None:
        _apply(session, closed, "reopened", who=SYSTEM, now=now, reason=f"{reason} (closed but not fixed)")
        _note_check(session, closed, who=who, department=department, now=now, details=event)
        return closed.id, "reopened"
    case_id = create_case(
        session, subject=subject, rule_id=rule_id, category=category, source="campaign", state="inspection",
        title=title, lead_department=lead_department, cooperating_departments=cooperating_departments, now=now,
        who=who, point=point, reason=reason, details=details, finding_status="violation", **fields,
    )  # fmt: skip
    return case_id, "opened"


def _campus_point(coord: Any) -> Any:
    first = select(coord(func.ST_PointOnSurface(Campus.geom))).where(Campus.school_id == School.id)
    return first.order_by(Campus.id).limit(1).scalar_subquery()


def schools_staffing(session: Session, *, district: str | None = None) -> list[dict[str, Any]]:
    """The register's head-counts, guards and access control per open school, with a representative point."""
    stmt = (
        select(
            School.id,
            School.name,
            School.levels,
            School.students,
            School.staff,
            School.boarders,
            School.guards,
            School.access_control,
            School.district_adcode,
            _campus_point(func.ST_X).label("x"),
            _campus_point(func.ST_Y).label("y"),
        )
        .where(School.closed.is_(None))
        .order_by(School.id)
    )
    if district:
        stmt = stmt.where(district_filter(School.district_adcode, district))
    return [dict(r._mapping) for r in session.execute(stmt)]


def open_subjects(session: Session, rule_ids: Iterable[str]) -> set[tuple[str, str]]:
    """(subject, rule) pairs with an open case, for the given rules."""
    rows = session.execute(select(Case.subject, Case.rule_id).where(Case.rule_id.in_(list(rule_ids)), _open()))
    return {(s, r) for s, r in rows}


# --- the overdue clock -------------------------------------------------------------------------


def _ladder_due(case: Case, level: EscalationLevel, today: dt.date) -> str | None:
    """Why ``level`` is due today for an open overdue case at the level below it (None: not yet)."""
    if level.level == 1:
        if case.deadline is None or today <= case.deadline:
            return None
        return f"{(today - case.deadline).days} day(s) past the deadline {case.deadline}"
    if case.escalation_level_at is None:
        return None
    since = local_date(case.escalation_level_at)
    if today < add_working_days(since, level.after_working_days):
        return None
    return f"still open {level.after_working_days} working day(s) after level {level.level - 1} ({since})"


def escalate_overdue(session: Session, registry: RuleRegistry, *, now: dt.datetime) -> list[dict[str, Any]]:
    """Raise every open case past its deadline one level up its district's ladder where it is due.

    Level 1 comes the day after the deadline; level n > 1 when the case is still open the ladder's
    working days after level n − 1 was raised. Each level is raised once (a new deadline or a reopening
    starts the ladder again). Returns the cases raised, each with ``escalation`` (the level, its
    recipient and the recipient's name for the case).
    """
    today = local_date(now)
    session.execute(
        update(Case).where(Case.overdue.is_(True), ~overdue_clause(today)).values(overdue=False, overdue_since=None)
    )
    top = max(len(ladder) for ladder in (DEFAULT_ESCALATION, *(p.escalation for p in registry.packs)))
    rows = session.scalars(
        select(Case)
        .where(
            overdue_clause(today),
            or_(
                Case.escalation_level == 0,
                and_(
                    Case.escalation_level < top,
                    Case.escalation_level_at.is_not(None),
                    func.date(func.timezone("Asia/Shanghai", Case.escalation_level_at)) < today,
                ),
            ),
        )
        .order_by(Case.id)
        .with_for_update()
    ).all()
    names = district_names(session, {c.district_adcode for c in rows if c.district_adcode})
    departments = registry.departments
    by_district: dict[str | None, tuple[EscalationLevel, ...]] = {}
    out = []
    for case in rows:
        if case.district_adcode not in by_district:
            by_district[case.district_adcode] = registry.in_force(case.district_adcode, on=today).escalation
        ladder = by_district[case.district_adcode]
        if case.escalation_level >= len(ladder):
            continue
        level = ladder[case.escalation_level]
        reason = _ladder_due(case, level, today)
        if reason is None:
            continue
        recipient = level.recipient_name(
            district=names.get(case.district_adcode or ""),
            lead_department=departments.get(case.lead_department, case.lead_department),
        )
        if level.level == 1:
            case.overdue, case.overdue_since = True, now
        case.escalation_level, case.escalated_to, case.escalation_level_at = level.level, recipient, now
        escalation = {
            "level": level.level,
            "recipient": level.recipient,
            "recipient_name": recipient,
            "after_working_days": level.after_working_days,
        }
        _event(
            session, case, kind="escalation", who=SYSTEM, now=now, reason=f"{reason}; to {recipient}",
            details=escalation,
        )  # fmt: skip
        out.append({**_case_dict(case, today), "escalation": escalation})
    session.flush()
    return out


def district_names(session: Session, adcodes: Iterable[str]) -> dict[str, str]:
    """adcode → name (e.g. 450302 → 秀峰区) for the districts on record."""
    wanted = sorted({a for a in adcodes if a})
    if not wanted:
        return {}
    return dict(session.execute(select(District.adcode, District.name).where(District.adcode.in_(wanted))).all())


# --- reports -----------------------------------------------------------------------------------

_GROUPS: dict[str, Callable[[], Any]] = {
    "district": lambda: func.coalesce(Case.district_adcode, literal_column("''")),
    "department": lambda: Case.lead_department,
    "category": lambda: Case.category,
}


def report(
    session: Session,
    *,
    by: str,
    department: str | None,
    today: dt.date,
    after: str | None = None,
    limit: int = 100,
    **filters: Any,
) -> tuple[list[dict[str, Any]], str | None]:
    """Per district, department or category: total, open, overdue, closed, closed within deadline (%);
    rows by district carry the district's ``name`` (None for a district not on record, or no district)."""
    if by not in _GROUPS:
        msg = f"by must be one of {sorted(_GROUPS)}, got {by!r}"
        raise InvalidInput(msg, field="by", value=by)
    key = _GROUPS[by]().label("key")
    n = func.count().filter
    stmt = (
        _filtered(
            select(
                key,
                func.count().label("total"),
                n(_open()).label("open"),
                n(overdue_clause(today)).label("overdue"),
                n(Case.state == "closed").label("closed"),
                n(and_(Case.state == "closed", _closed_in_time())).label("closed_in_time"),
                n(Case.state == "dismissed").label("dismissed"),
            ),
            department=department,
            today=today,
            **filters,
        )
        .group_by(key)
        .order_by(key)
        .limit(limit + 1)
    )
    if after is not None:
        stmt = stmt.where(_GROUPS[by]() > after)
    rows = [dict(r._mapping) for r in session.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    names = district_names(session, (r["key"] for r in rows)) if by == "district" else {}
    for r in rows:
        r["closed_in_time_pct"] = round(100.0 * r["closed_in_time"] / r["closed"], 1) if r["closed"] else None
        if by == "district":
            r["name"] = names.get(r["key"])
    return rows, (rows[-1]["key"] if more and rows else None)


def trend(session: Session, *, department: str | None, today: dt.date, **filters: Any) -> list[dict[str, Any]]:
    """Cases opened and closed per month (Asia/Shanghai)."""
    opened_m = func.to_char(func.timezone("Asia/Shanghai", Case.opened_at), "YYYY-MM")
    closed_m = func.to_char(func.timezone("Asia/Shanghai", Case.closed_at), "YYYY-MM")
    opened = session.execute(
        _filtered(select(opened_m, func.count()), department=department, today=today, **filters).group_by(opened_m)
    ).all()
    closed = session.execute(
        _filtered(select(closed_m, func.count()), department=department, today=today, **filters)
        .where(Case.state == "closed")
        .group_by(closed_m)
    ).all()
    months: dict[str, dict[str, Any]] = {}
    for m, c in opened:
        months.setdefault(m, {"month": m, "opened": 0, "closed": 0})["opened"] = c
    for m, c in closed:
        months.setdefault(m, {"month": m, "opened": 0, "closed": 0})["closed"] = c
    return [months[m] for m in sorted(months)]
