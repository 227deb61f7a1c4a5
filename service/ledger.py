"""Ledger orchestration shared by the API, the CLI and the worker: who acts, the clock, scans → cases,
field reports, staffing shortfalls, and the overdue clock with its ladder of signed webhook events.

The clock is injectable: every entry point takes ``now`` (an aware datetime); the app reads
``app.state.clock`` (a callable) so that tests can move time.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from shapely.geometry import Point
from sqlalchemy.orm import Session, sessionmaker

from geo.coords import point_to_wgs84
from geo.errors import InvalidInput
from geo.ledger import SchoolStaffing, staffing_shortfalls
from geo.rules import RuleRegistry
from service.settings import Settings
from service.webhooks import enqueue_event
from service.worker import Progress, handler
from storage import ledger as store
from storage.access import TokenInfo
from storage.checks import district_at
from storage.database import session_scope

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def actor(token: TokenInfo) -> store.Actor:
    """The person acting: the token's name (one person may hold several tokens), its role and id."""
    return store.Actor(token.name, token.role, token.id)


def department_of(token: TokenInfo) -> str | None:
    """The department whose cases the token sees: None (all) for admins; the token's department, else
    the department its role names (the department roles are also department ids)."""
    if token.role == "admin":
        return None
    return token.department or token.role


# --- from scans --------------------------------------------------------------------------------


def cases_from_scan(factory: sessionmaker[Session], *, scan_id: int | None = None, now: dt.datetime) -> dict[str, Any]:
    """Turn a scan's findings (default: the latest scan) into cases; one transaction."""
    with session_scope(factory) as session:
        scan_id = scan_id if scan_id is not None else store.latest_scan_id(session)
        if scan_id is None:
            msg = "there is no scan yet; run one first"
            raise InvalidInput(msg, field="scan_id", message_zh="尚无扫描结果，请先运行扫描")
        counts = store.apply_findings(session, scan_id, now=now)
    log.info("ledger from scan %s: %s", scan_id, counts)
    return {"scan_id": scan_id, **counts}


@handler("ledger_from_scan")
def _from_scan_job(factory: sessionmaker[Session], params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    result = cases_from_scan(factory, scan_id=params.get("scan_id"), now=system_clock())
    progress(1, 1)
    return result


# --- the overdue clock -------------------------------------------------------------------------


def event_for(case: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The signed event of one escalation: ``case.overdue`` at level 1, ``case.escalated`` above it; both
    name the level and its recipient."""
    p = case["properties"]
    escalation = case.get("escalation") or {"level": p["escalation_level"], "recipient_name": p["escalated_to"]}
    return {
        "type": "case.overdue" if escalation["level"] <= 1 else "case.escalated",
        "at": now.isoformat(),
        "escalation": escalation,
        "case": {
            "id": case["id"],
            "title": p["title"],
            "state": p["state"],
            "rule_id": p["rule_id"],
            "category": p["category"],
            "deadline": p["deadline"],
            "district": p["district"],
            "lead_department": p["lead_department"],
            "cooperating_departments": p["cooperating_departments"],
            "school_id": p["school_id"],
            "premises_id": p["premises_id"],
            "escalation_level": p["escalation_level"],
        },
    }


def tick(
    factory: sessionmaker[Session],
    *,
    now: dt.datetime,
    settings: Settings | None = None,
    registry: RuleRegistry | None = None,
) -> dict[str, Any]:
    """Run the overdue clock once: raise each due case one level up its district's ladder (level 1 the
    day after the deadline; the next level when still open the pack's working days later) and queue one
    signed event per level raised.

    Idempotent: each level is raised once (until the deadline changes or the case reopens).
    """
    settings = settings or Settings()
    if registry is None:
        registry = RuleRegistry.load(settings.resolved_rules_dir, default_adcode=settings.default_adcode)
    with session_scope(factory) as session:
        raised = store.escalate_overdue(session, registry, now=now)
        jobs = [enqueue_event(session, event_for(c, now), settings) for c in raised]
    return {
        "overdue": [c["id"] for c in raised if c["escalation"]["level"] == 1],
        "escalated": [{"id": c["id"], **c["escalation"]} for c in raised],
        "webhook_jobs": [j for j in jobs if j],
    }


@handler("ledger_tick")
def _tick_job(factory: sessionmaker[Session], params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    now = dt.datetime.fromisoformat(params["now"]) if params.get("now") else system_clock()
    result = tick(factory, now=now)
    progress(1, 1)
    return result


# --- field reports -----------------------------------------------------------------------------


def field_report(
    session: Session,
    registry: RuleRegistry,
    report: dict[str, Any],
    *,
    who: store.Actor,
    department: str | None,
    now: dt.datetime,
) -> int:
    """A patrol member's report: the premises is recorded as observed (no permit: unlicensed) and a case
    opens at ``inspection`` with the departments of the category's rule in force there."""
    lon, lat = point_to_wgs84(report["lon"], report["lat"], report["crs"])
    category = report["category"]
    district = district_at(session, Point(lon, lat))
    rules = registry.rules_for_category(district, category, on=store.local_date(now))
    lead = rules[0].lead_department if rules else (department or "education")
    coop = sorted({d for r in rules for d in (r.lead_department, *r.cooperating_departments)} - {lead})
    if department and department not in (lead, *coop):
        coop.append(department)
    name = report.get("name") or f"巡查发现 · {category}"
    premises_id = store.add_observed_premises(
        session, lon=lon, lat=lat, name=name, address=report.get("address"), category=category, district=district
    )
    return store.create_case(
        session,
        subject=f"premises:{premises_id}",
        rule_id=f"report.{category}",
        category=category,
        source="field_report",
        state="inspection",
        title=f"{name}（巡查上报）",
        lead_department=lead,
        cooperating_departments=coop,
        now=now,
        who=who,
        point=(lon, lat),
        reason=report.get("note"),
        premises_id=premises_id,
        district_adcode=district,
        finding_status="unlicensed",
        details={"note": report.get("note"), "photos": list(report.get("photos") or []), "crs": report["crs"],
                 "reported_by": who.name},
    )  # fmt: skip


# --- staffing and access control ---------------------------------------------------------------


def staffing_cases(
    factory: sessionmaker[Session], registry: RuleRegistry, *, now: dt.datetime, district: str | None = None
) -> dict[str, Any]:
    """Compare the packs' staffing rules with the guards on record, and kindergartens with their access
    control; each shortfall without an open case becomes one (at ``warning``)."""
    today = store.local_date(now)
    with session_scope(factory) as session:
        rows = store.schools_staffing(session, district=district)
        by_id = {r["id"]: r for r in rows}
        shortfalls = []
        for adcode in sorted({r["district_adcode"] for r in rows}, key=lambda a: a or ""):
            schools = [
                SchoolStaffing(
                    school_id=r["id"], levels=tuple(r["levels"] or ()), students=r["students"], staff=r["staff"],
                    boarders=r["boarders"], guards=r["guards"], access_control=r["access_control"],
                )
                for r in rows if r["district_adcode"] == adcode
            ]  # fmt: skip
            shortfalls += staffing_shortfalls(schools, registry.in_force(adcode, on=today).staffing)
        have = store.open_subjects(session, {s.rule_id for s in shortfalls})
        created = []
        for s in shortfalls:
            if (f"school:{s.school_id}", s.rule_id) in have:
                continue
            school = by_id[s.school_id]
            what = "安保人员不足" if s.kind == "guards" else "幼儿园未建门禁/接送卡制度"
            created.append(
                store.create_case(
                    session,
                    subject=f"school:{s.school_id}",
                    rule_id=s.rule_id,
                    category="staffing" if s.kind == "guards" else "access_control",
                    source="staffing",
                    state="warning",
                    title=f"{school['name']} · {what}（要求 {s.required}，在册 {s.on_record}）",
                    lead_department=s.lead_department,
                    cooperating_departments=s.cooperating_departments,
                    now=now,
                    who=store.SYSTEM,
                    point=(school["x"], school["y"]) if school["x"] is not None else None,
                    reason=s.basis,
                    school_id=s.school_id,
                    district_adcode=school["district_adcode"],
                    details={
                        "required": s.required,
                        "on_record": s.on_record,
                        "basis": s.basis,
                        "notes": list(s.notes),
                    },
                )  # fmt: skip
            )
    return {"shortfalls": len(shortfalls), "created": created}
