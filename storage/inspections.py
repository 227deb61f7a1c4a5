"""Inspections (日周月 排查), campaigns (专项检查) and the district risk list in PostGIS.

Every function flushes into the caller's transaction; the caller commits. Rows leave as plain dicts.
``department`` None means an admin (everything); otherwise a department sees the inspection plans it
runs, the campaigns it leads and the cases it leads or cooperates on — any other id answers "not found".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from geo.errors import Conflict, InvalidInput, NotFound
from storage.ledger import overdue_clause, visible
from storage.models import Campaign, CampaignCheck, Case, InspectionPlan, InspectionRecord, School
from storage.read import district_filter

#: What a campaign check may find (合格 / 责令整改 / 立案查处 / 未营业或未找到).
CHECK_RESULTS = ("compliant", "rectification", "violation", "absent")


def _district_like(adcode: str | None) -> str | None:
    """A LIKE pattern for ``adcode`` and the districts below it (validated as :func:`district_filter`)."""
    if adcode is None:
        return None
    district_filter(literal(""), adcode)  # validates (raises InvalidInput on a bad adcode)
    if adcode.endswith("0000"):
        return adcode[:2] + "%"
    if adcode.endswith("00"):
        return adcode[:4] + "%"
    return adcode


def _check_case(session: Session, case_id: int | None, department: str | None) -> None:
    """A record may point at a ledger case the caller can see (its finding went into the ledger)."""
    if case_id is not None and session.scalar(select(Case.id).where(Case.id == case_id, visible(department))) is None:
        msg = f"no case with id {case_id}"
        raise NotFound(msg, field="case_id", value=case_id, message_zh=f"未找到案件 {case_id}")


# --- inspection plans ----------------------------------------------------------------------------


def _plan_visible(department: str | None) -> ColumnElement[bool]:
    return literal(True) if department is None else InspectionPlan.department == department


def _plan_dict(plan: InspectionPlan, school: School) -> dict[str, Any]:
    return {
        "id": plan.id,
        "school_id": plan.school_id,
        "school_name": school.name,
        "district": school.district_adcode,
        "rhythm": plan.rhythm,
        "items": list(plan.items or []),
        "department": plan.department,
        "created_by": plan.created_by,
        "created_at": plan.created_at.isoformat(),
    }


def create_plan(
    session: Session,
    *,
    school_id: int,
    rhythm: str,
    items: Sequence[str],
    department: str,
    created_by: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """An inspection plan for a school's zone; the school must exist and be open."""
    school = session.scalar(select(School).where(School.id == school_id, School.closed.is_(None)))
    if school is None:
        msg = f"no open school with id {school_id}"
        raise NotFound(msg, field="school_id", value=school_id, message_zh=f"未找到在办学校 {school_id}")
    plan = InspectionPlan(
        school_id=school_id, rhythm=rhythm, items=list(items), department=department, created_by=created_by,
        created_at=now,
    )  # fmt: skip
    session.add(plan)
    session.flush()
    return _plan_dict(plan, school)


def get_plan(session: Session, plan_id: int, *, department: str | None) -> dict[str, Any]:
    """One plan with every record under it (which period, which items, who, when)."""
    row = session.execute(
        select(InspectionPlan, School)
        .join(School, School.id == InspectionPlan.school_id)
        .where(InspectionPlan.id == plan_id, _plan_visible(department))
    ).first()
    if row is None:
        msg = f"no inspection plan with id {plan_id}"
        raise NotFound(msg, field="id", value=plan_id, message_zh=f"未找到巡查计划 {plan_id}")
    out = _plan_dict(*row)
    records = session.scalars(
        select(InspectionRecord).where(InspectionRecord.plan_id == plan_id).order_by(InspectionRecord.period_start)
    )
    out["records"] = [_record_dict(r) for r in records]
    return out


def _record_dict(r: InspectionRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "plan_id": r.plan_id,
        "period_start": r.period_start.isoformat(),
        "done_at": r.done_at.isoformat(),
        "done_by": r.done_by,
        "items_done": list(r.items_done or []),
        "note": r.note,
        "case_id": r.case_id,
    }


def plans_with_records(
    session: Session, *, department: str | None, district: str | None, since: dt.date
) -> list[dict[str, Any]]:
    """Every visible plan of an open school (in ``district``), with its records since ``since``."""
    stmt = (
        select(InspectionPlan, School)
        .join(School, School.id == InspectionPlan.school_id)
        .where(_plan_visible(department), School.closed.is_(None))
        .order_by(InspectionPlan.id)
    )
    if district:
        stmt = stmt.where(district_filter(School.district_adcode, district))
    plans = [_plan_dict(p, s) for p, s in session.execute(stmt)]
    records = session.scalars(
        select(InspectionRecord).where(
            InspectionRecord.plan_id.in_([p["id"] for p in plans]), InspectionRecord.period_start >= since
        )
    )
    done: dict[int, dict[str, dict[str, Any]]] = {}
    for r in records:
        done.setdefault(r.plan_id, {})[r.period_start.isoformat()] = _record_dict(r)
    for p in plans:
        p["records"] = done.get(p["id"], {})
    return plans


def add_record(
    session: Session,
    plan_id: int,
    *,
    period_start: dt.date,
    done_by: str,
    items_done: Sequence[str],
    note: str | None,
    case_id: int | None,
    now: dt.datetime,
    department: str | None,
) -> dict[str, Any]:
    """Record an inspection done for one period of a plan; a period is recorded once (409 after)."""
    get_plan(session, plan_id, department=department)
    _check_case(session, case_id, department)
    existing = session.scalar(
        select(InspectionRecord).where(
            InspectionRecord.plan_id == plan_id, InspectionRecord.period_start == period_start
        )
    )
    if existing is not None:
        msg = f"the period starting {period_start} of plan {plan_id} was already recorded by {existing.done_by}"
        raise Conflict(
            msg, field="period_start", value=period_start.isoformat(), message_zh=f"该周期已由 {existing.done_by} 登记"
        )
    record = InspectionRecord(
        plan_id=plan_id, period_start=period_start, done_at=now, done_by=done_by, items_done=list(items_done),
        note=note, case_id=case_id,
    )  # fmt: skip
    session.add(record)
    session.flush()
    return _record_dict(record)


# --- campaigns -----------------------------------------------------------------------------------


def _campaign_dict(c: Campaign) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "categories": list(c.categories or [c.category]),
        "district": c.district,
        "starts": c.starts.isoformat(),
        "ends": c.ends.isoformat(),
        "radius_m": c.radius_m,
        "lead_department": c.lead_department,
        "created_by": c.created_by,
        "created_at": c.created_at.isoformat(),
    }


def create_campaign(
    session: Session,
    *,
    name: str,
    categories: Sequence[str],
    district: str | None,
    starts: dt.date,
    ends: dt.date,
    radius_m: float,
    lead_department: str,
    created_by: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """A campaign over the premises of ``categories`` within ``radius_m`` of a school (in ``district``)."""
    if ends < starts:
        msg = f"a campaign cannot end ({ends}) before it starts ({starts})"
        raise InvalidInput(msg, field="ends", value=ends.isoformat(), message_zh="结束日期早于开始日期")
    _district_like(district)
    campaign = Campaign(
        name=name, category=categories[0], categories=list(categories), district=district, starts=starts, ends=ends,
        radius_m=radius_m, lead_department=lead_department, created_by=created_by, created_at=now,
    )  # fmt: skip
    session.add(campaign)
    session.flush()
    return _campaign_dict(campaign)


def _load_campaign(session: Session, campaign_id: int, department: str | None) -> Campaign:
    stmt = select(Campaign).where(Campaign.id == campaign_id)
    if department is not None:
        stmt = stmt.where(Campaign.lead_department == department)
    campaign = session.scalar(stmt)
    if campaign is None:
        msg = f"no campaign with id {campaign_id}"
        raise NotFound(msg, field="id", value=campaign_id, message_zh=f"未找到专项检查 {campaign_id}")
    return campaign


def get_campaign(session: Session, campaign_id: int, *, department: str | None) -> dict[str, Any]:
    return _campaign_dict(_load_campaign(session, campaign_id, department))


def list_campaigns(session: Session, *, department: str | None) -> list[dict[str, Any]]:
    stmt = select(Campaign).order_by(Campaign.starts.desc(), Campaign.id)
    if department is not None:
        stmt = stmt.where(Campaign.lead_department == department)
    return [_campaign_dict(c) for c in session.scalars(stmt)]


# The premises of the campaign's categories (observed or permitted) within its radius of an open school's
# campus, each with its nearest school; ST_DWithin on the geography expression indexes. :premises_id
# (else NULL) narrows it to one premises.
_SCOPE = """
WITH near AS (
    SELECT DISTINCT ON (p.id)
           p.id AS premises_id, p.name, p.address, p.district_adcode AS district,
           s.id AS school_id, s.name AS school_name, ca.id AS campus_id,
           ST_Distance(p.geom::geography, ca.geom::geography) AS distance_m
    FROM campaigns c
    JOIN premises p ON (c.district IS NULL OR p.district_adcode LIKE :campaign_like)
    JOIN campuses ca ON ST_DWithin(ca.geom::geography, p.geom::geography, c.radius_m)
    JOIN schools s ON s.id = ca.school_id AND s.closed IS NULL
    WHERE c.id = :campaign_id
      AND (p.categories && c.categories
           OR EXISTS (SELECT 1 FROM permits pm WHERE pm.premises_id = p.id AND pm.category = ANY (c.categories)))
      AND (CAST(:district_like AS text) IS NULL OR p.district_adcode LIKE :district_like)
      AND (CAST(:premises_id AS bigint) IS NULL OR p.id = :premises_id)
    ORDER BY p.id, distance_m
)
"""


def _scope_params(campaign: Campaign, district: str | None, premises_id: int | None = None) -> dict[str, Any]:
    return {
        "campaign_id": campaign.id,
        "campaign_like": _district_like(campaign.district) or "%",
        "district_like": _district_like(district),
        "premises_id": premises_id,
    }


def campaign_premises(
    session: Session, campaign_id: int, *, department: str | None, district: str | None = None
) -> list[dict[str, Any]]:
    """The premises in the campaign's scope, with the nearest school, how far, and its check (if any)."""
    campaign = _load_campaign(session, campaign_id, department)
    rows = session.execute(
        text(
            _SCOPE
            + """
            SELECT n.*, k.result, k.checked_at, k.checked_by, k.note
            FROM near n LEFT JOIN campaign_checks k ON k.campaign_id = :campaign_id AND k.premises_id = n.premises_id
            ORDER BY n.district NULLS LAST, n.premises_id
            """
        ),
        _scope_params(campaign, district),
    )
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["distance_m"] = round(d["distance_m"], 1)
        d["checked_at"] = d["checked_at"].isoformat() if d["checked_at"] else None
        out.append(d)
    return out


def check_scope(
    session: Session,
    campaign_id: int,
    premises_id: int,
    *,
    result: str,
    case_id: int | None,
    today: dt.date,
    department: str | None,
) -> dict[str, Any]:
    """Validate the check of one premises (a known result, within the campaign's dates, in its scope, a
    visible case) and return the campaign and the premises as the scope sees it: its nearest school
    (levels, campus, distance), district, location and categories (observed and permitted)."""
    campaign = _load_campaign(session, campaign_id, department)
    if result not in CHECK_RESULTS:
        msg = f"result must be one of {list(CHECK_RESULTS)}, got {result!r}"
        raise InvalidInput(msg, field="result", value=result, message_zh=f"检查结果无效：{result!r}")
    if not campaign.starts <= today <= campaign.ends:
        msg = f"campaign {campaign_id} runs {campaign.starts} – {campaign.ends}; checks cannot be recorded on {today}"
        raise Conflict(msg, field="date", value=today.isoformat(), message_zh="不在专项检查期限内，不能登记检查")
    _check_case(session, case_id, department)
    row = session.execute(
        text(
            _SCOPE
            + """
            SELECT n.*, s.levels AS school_levels, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat,
                   ARRAY(SELECT c FROM unnest(p.categories) AS c
                         UNION SELECT pm.category::text FROM permits pm WHERE pm.premises_id = p.id) AS categories
            FROM near n JOIN premises p ON p.id = n.premises_id JOIN schools s ON s.id = n.school_id
            """
        ),
        _scope_params(campaign, None, premises_id),
    ).first()
    if row is None:
        msg = f"premises {premises_id} is not in the scope of campaign {campaign_id}"
        raise InvalidInput(msg, field="premises_id", value=premises_id, message_zh=f"场所 {premises_id} 不在检查范围内")
    return {"campaign": _campaign_dict(campaign), **row._mapping}


def check_case_id(session: Session, campaign_id: int, premises_id: int) -> int | None:
    """The case the campaign's check of the premises went into (None: no check yet, or no case)."""
    return session.scalar(
        select(CampaignCheck.case_id).where(
            CampaignCheck.campaign_id == campaign_id, CampaignCheck.premises_id == premises_id
        )
    )


def save_check(
    session: Session,
    campaign_id: int,
    premises_id: int,
    *,
    result: str,
    note: str | None,
    case_id: int | None,
    checked_by: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """Record (or correct) the check of a premises validated by :func:`check_scope`. A correction keeps
    the case an earlier check went into unless it names another."""
    values = {
        "campaign_id": campaign_id, "premises_id": premises_id, "checked_at": now, "checked_by": checked_by,
        "result": result, "note": note, "case_id": case_id,
    }  # fmt: skip
    stmt = insert(CampaignCheck).values(values)
    upsert = stmt.on_conflict_do_update(
        constraint="uq_campaign_checks_premises",
        set_={
            **{k: stmt.excluded[k] for k in ("checked_at", "checked_by", "result", "note")},
            "case_id": func.coalesce(stmt.excluded.case_id, CampaignCheck.case_id),
        },
    ).returning(CampaignCheck.case_id)
    values["case_id"] = session.execute(upsert).scalar_one()
    session.flush()
    return {**values, "checked_at": now.isoformat()}


def campaign_progress(session: Session, campaign_id: int, *, department: str | None) -> list[dict[str, Any]]:
    """Per district: premises in scope, checked, each result, and the share checked (%)."""
    campaign = _load_campaign(session, campaign_id, department)
    rows = session.execute(
        text(
            _SCOPE
            + """
            SELECT coalesce(n.district, '') AS district, k.result, count(*) AS n
            FROM near n LEFT JOIN campaign_checks k ON k.campaign_id = :campaign_id AND k.premises_id = n.premises_id
            GROUP BY 1, 2 ORDER BY 1, 2
            """
        ),
        _scope_params(campaign, None),
    )
    by_district: dict[str, dict[str, Any]] = {}
    for district, result, n in rows:
        d = by_district.setdefault(
            district, {"district": district, "in_scope": 0, "checked": 0, **dict.fromkeys(CHECK_RESULTS, 0)}
        )
        d["in_scope"] += n
        if result is not None:
            d["checked"] += n
            d[result] += n
    out = list(by_district.values())
    for d in out:
        d["checked_pct"] = round(100.0 * d["checked"] / d["in_scope"], 1) if d["in_scope"] else None
    return out


# --- risk list -----------------------------------------------------------------------------------


def open_cases_by_school(
    session: Session, *, department: str | None, district: str | None, today: dt.date
) -> list[dict[str, Any]]:
    """The open cases (visible to ``department``) with their school's name and whether they are overdue."""
    stmt = (
        select(
            Case.id,
            Case.title,
            Case.state,
            Case.category,
            Case.rule_id,
            Case.finding_status,
            Case.source,
            Case.deadline,
            Case.lead_department,
            Case.cooperating_departments,
            Case.district_adcode.label("district"),
            Case.school_id,
            School.name.label("school_name"),
            overdue_clause(today).label("overdue"),
        )
        .outerjoin(School, School.id == Case.school_id)
        .where(visible(department), Case.state.not_in(("closed", "dismissed")))
        .order_by(Case.id)
    )
    if district:
        stmt = stmt.where(district_filter(Case.district_adcode, district))
    return [dict(r._mapping) for r in session.execute(stmt)]


def counts_by_state(session: Session, *, department: str | None, district: str | None) -> dict[str, int]:
    """How many visible cases are in each state."""
    stmt = select(Case.state, func.count()).where(visible(department)).group_by(Case.state)
    if district:
        stmt = stmt.where(district_filter(Case.district_adcode, district))
    return {s: n for s, n in session.execute(stmt)}
