"""Inspections (日周月), campaigns (专项检查), the district risk and responsibility lists, and the ledger
overview page. A department user sees the plans it runs, the campaigns it leads and the cases it leads or
cooperates on (admins all); any other id answers 404."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from geo.errors import InvalidInput
from geo.vocabulary import Category
from service import inspections as svc
from service import ledger
from service.auth import requires
from service.deps import SessionDep
from service.maps import page_access
from service.routes.cases import Now
from storage import inspections as store
from storage import ledger as ledger_store
from storage.access import TokenInfo

router = APIRouter(tags=["inspections"])

Reader = Annotated[TokenInfo, Depends(requires("read:cases"))]
Writer = Annotated[TokenInfo, Depends(requires("write:cases"))]
Adcode = Annotated[str, Field(pattern=r"^\d{6}$")]
Item = Annotated[str, Field(min_length=1, max_length=200)]


class PlanCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"school_id": 1, "rhythm": "daily", "items": ["校门口摊贩", "护学岗到岗"]}]},
    )
    school_id: int
    rhythm: svc.Rhythm
    items: list[Item] = Field(default_factory=list, max_length=50)
    department: Annotated[str | None, Field(max_length=64)] = None


class RecordCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period_start: dt.date | None = Field(default=None, description="default: the period containing today")
    items_done: list[Item] = Field(default_factory=list, max_length=50)
    note: Annotated[str | None, Field(max_length=2000)] = None
    case_id: int | None = None


class CampaignCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "2026年春季校园周边食品经营专项检查", "categories": ["food_stall"],
                                         "district": "450300", "starts": "2026-03-01", "ends": "2026-04-30"}]},
    )  # fmt: skip
    name: Annotated[str, Field(min_length=1, max_length=200)]
    categories: list[Category] = Field(min_length=1, max_length=10)
    district: Adcode | None = None
    starts: dt.date
    ends: dt.date
    radius_m: float | None = Field(default=None, gt=0, le=2000, description="default: the rules' largest distance")
    lead_department: Annotated[str | None, Field(max_length=64)] = None


class CheckCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    premises_id: int
    result: Literal["compliant", "rectification", "violation", "absent"]
    note: Annotated[str | None, Field(max_length=2000)] = None
    case_id: int | None = Field(
        default=None, description="an open case the check goes into; default: a violation opens (or adds to) one"
    )


# --- inspection plans ----------------------------------------------------------------------------


@router.post("/v1/inspections/plans", status_code=201, summary="An inspection plan for a school zone (日/周/月)")
def create_plan(body: PlanCreate, session: SessionDep, token: Writer, now: Now) -> dict[str, Any]:
    dept = svc.acting_department(ledger.department_of(token), body.department, fallback="education")
    return store.create_plan(
        session, school_id=body.school_id, rhythm=body.rhythm, items=body.items, department=dept,
        created_by=token.name, now=now,
    )  # fmt: skip


@router.get("/v1/inspections/plans/{plan_id}", summary="A plan with its records: which period, who, when")
def get_plan(plan_id: int, session: SessionDep, token: Reader) -> dict[str, Any]:
    return store.get_plan(session, plan_id, department=ledger.department_of(token))


@router.post("/v1/inspections/plans/{plan_id}/records", status_code=201, summary="Record an inspection done")
def add_record(plan_id: int, body: RecordCreate, session: SessionDep, token: Writer, now: Now) -> dict[str, Any]:
    dept = ledger.department_of(token)
    plan = store.get_plan(session, plan_id, department=dept)
    period = svc.record_period(plan["rhythm"], ledger_store.local_date(now), body.period_start)
    return store.add_record(
        session, plan_id, period_start=period, done_by=token.name, items_done=body.items_done, note=body.note,
        case_id=body.case_id, now=now, department=dept,
    )  # fmt: skip


@router.get("/v1/inspections/due", summary="Inspections due on a date, and overdue ones (working-day calendar)")
def due(
    session: SessionDep,
    token: Reader,
    now: Now,
    date: Annotated[dt.date | None, Query(description="default: today (Asia/Shanghai)")] = None,
    district: Annotated[str | None, Query(description="adcode; a city or province includes its counties")] = None,
    since: Annotated[dt.date | None, Query(description=f"default: {svc.LOOKBACK_DAYS} days before the date")] = None,
    include_done: bool = False,
) -> dict[str, Any]:
    on = date or ledger_store.local_date(now)
    since = svc.due_window(on, since)
    plans = store.plans_with_records(session, department=ledger.department_of(token), district=district, since=since)
    items = svc.due_items(plans, on=on, since=since, include_done=include_done)
    counts = {s: sum(i["status"] == s for i in items) for s in ("overdue", "due", "done")}
    return {"date": on.isoformat(), "since": since.isoformat(), "district": district, "counts": counts, "items": items}


# --- campaigns -----------------------------------------------------------------------------------


@router.post("/v1/campaigns", status_code=201, summary="A campaign (专项检查) over premises around schools")
def create_campaign(request: Request, body: CampaignCreate, session: SessionDep, token: Writer, now: Now) -> Any:
    radius, lead = svc.campaign_defaults(
        request.app.state.rules, body.categories, body.district, on=ledger_store.local_date(now)
    )
    radius = body.radius_m or radius
    if radius is None:
        msg = f"no rule in force gives a distance for {body.categories}; give radius_m"
        raise InvalidInput(msg, field="radius_m", message_zh="该类别无距离规则，请给出检查半径 radius_m")
    dept = svc.acting_department(ledger.department_of(token), body.lead_department, fallback=lead or "education")
    return store.create_campaign(
        session, name=body.name, categories=body.categories, district=body.district, starts=body.starts,
        ends=body.ends, radius_m=radius, lead_department=dept, created_by=token.name, now=now,
    )  # fmt: skip


@router.get("/v1/campaigns", summary="Campaigns (a department sees those it leads)")
def list_campaigns(session: SessionDep, token: Reader) -> dict[str, Any]:
    return {"campaigns": store.list_campaigns(session, department=ledger.department_of(token))}


@router.get("/v1/campaigns/{campaign_id}", summary="A campaign with its progress per district")
def get_campaign(campaign_id: int, session: SessionDep, token: Reader) -> dict[str, Any]:
    dept = ledger.department_of(token)
    out = store.get_campaign(session, campaign_id, department=dept)
    out["progress"] = store.campaign_progress(session, campaign_id, department=dept)
    return out


@router.get("/v1/campaigns/{campaign_id}/premises", summary="The premises in scope, nearest school, their check")
def campaign_premises(
    campaign_id: int,
    session: SessionDep,
    token: Reader,
    district: str | None = None,
    checked: Annotated[bool | None, Query(description="only checked (true) or unchecked (false) premises")] = None,
) -> dict[str, Any]:
    rows = store.campaign_premises(session, campaign_id, department=ledger.department_of(token), district=district)
    if checked is not None:
        rows = [r for r in rows if (r["result"] is not None) == checked]
    return {"campaign_id": campaign_id, "district": district, "count": len(rows), "premises": rows}


@router.post(
    "/v1/campaigns/{campaign_id}/checks",
    status_code=201,
    summary="Record the check of one premises; a violation opens (or adds to) its ledger case",
)
def record_check(
    request: Request, campaign_id: int, body: CheckCreate, session: SessionDep, token: Writer, now: Now
) -> Any:
    return svc.record_check(
        session, request.app.state.rules, campaign_id, body.model_dump(), who=ledger.actor(token),
        department=ledger.department_of(token), now=now,
    )  # fmt: skip


# --- risk and responsibility lists, overview page ------------------------------------------------


@router.get("/v1/risk-lists/{district}", summary="区域性学校安全风险清单、防控责任清单 of a district")
def risk_lists(request: Request, district: str, session: SessionDep, token: Reader, now: Now) -> dict[str, Any]:
    return svc.district_lists(
        session, request.app.state.rules, district=district, department=ledger.department_of(token),
        today=ledger_store.local_date(now),
    )  # fmt: skip


@router.get("/maps/ledger", response_class=HTMLResponse, summary="The ledger overview page with charts")
def ledger_page(
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(page_access("read:reports"))],
    now: Now,
    district: str | None = None,
) -> HTMLResponse:
    today, dept = ledger_store.local_date(now), ledger.department_of(token)
    common: dict[str, Any] = {"department": dept, "today": today, "limit": 10_000, "district": district}
    page = svc.overview_page(
        today=today, district=district,
        district_name=ledger_store.district_names(session, [district]).get(district) if district else None,
        by_state=store.counts_by_state(session, department=dept, district=district),
        by_category=ledger_store.report(session, by="category", **common)[0],
        by_district=ledger_store.report(session, by="district", **common)[0],
        trend=ledger_store.trend(session, department=dept, today=today, district=district),
    )  # fmt: skip
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
    return HTMLResponse(page, headers=headers)
