"""The risk ledger (台账): cases, their transitions and 五落实 plans, and field reports from patrols.

A department user sees and moves only the cases its department leads or cooperates on (admins all);
any other case id answers 404.
"""

from __future__ import annotations

import datetime as dt
import html
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from geo.coords import point_to_wgs84
from geo.ledger import STATES, allowed_next
from geo.vocabulary import Category, Crs
from service import ledger
from service.auth import requires
from service.deps import LimitDep, OutCrsDep, SessionDep
from service.geojson import collection, convert_tree
from service.maps import page_access
from storage import ledger as store
from storage.access import TokenInfo

router = APIRouter(tags=["ledger"])

Reader = Annotated[TokenInfo, Depends(requires("read:cases"))]
Writer = Annotated[TokenInfo, Depends(requires("write:cases"))]


def now_dep(request: Request) -> dt.datetime:
    """The ledger's clock (``app.state.clock`` when a test injects one)."""
    return getattr(request.app.state, "clock", ledger.system_clock)()


Now = Annotated[dt.datetime, Depends(now_dep)]


class Transition(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"to": "inspection", "reason": "现场核查"}]}
    )
    to: str = Field(description="the next state: " + ", ".join(f"{k} {v}" for k, v in STATES.items()))
    reason: Annotated[str | None, Field(max_length=2000)] = None


class PlanUpdate(BaseModel):
    """五落实: responsibility, measures, funds, deadline, plan."""

    model_config = ConfigDict(extra="forbid")
    responsible_department: Annotated[str | None, Field(max_length=64)] = None
    responsible_person: Annotated[str | None, Field(max_length=200)] = None
    measures: Annotated[str | None, Field(max_length=5000)] = None
    funds_yuan: Annotated[float | None, Field(ge=0, allow_inf_nan=False)] = None
    plan: Annotated[str | None, Field(max_length=5000)] = None
    deadline: dt.date | None = None


class CaseCreate(BaseModel):
    """A case opened by hand."""

    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1, max_length=500)]
    category: Category | Literal["staffing", "access_control"]
    rule_id: Annotated[str | None, Field(max_length=100)] = None
    lon: float | None = Field(default=None, allow_inf_nan=False)
    lat: float | None = Field(default=None, allow_inf_nan=False)
    crs: Crs | None = None
    premises_id: int | None = None
    school_id: int | None = None
    district: Annotated[str | None, Field(pattern=r"^\d{6}$")] = None
    lead_department: Annotated[str, Field(max_length=64)]
    cooperating_departments: list[str] = Field(default_factory=list, max_length=20)
    state: Literal["warning", "inspection", "registered"] = "registered"
    note: Annotated[str | None, Field(max_length=2000)] = None


class FieldReport(BaseModel):
    """What a patrol member saw: where (with its coordinate system), what, a note and photo references."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"lon": 118.7905, "lat": 32.0452, "crs": "wgs84", "category": "internet_cafe",
                                         "note": "无证网吧，未成年人出入", "photos": ["oss://patrol/2025/0412-1.jpg"]}]},
    )  # fmt: skip
    lon: float = Field(allow_inf_nan=False)
    lat: float = Field(allow_inf_nan=False)
    crs: Crs
    category: Category
    note: Annotated[str | None, Field(max_length=2000)] = None
    photos: list[Annotated[str, Field(max_length=500)]] = Field(default_factory=list, max_length=20)
    name: Annotated[str | None, Field(max_length=200)] = None
    address: Annotated[str | None, Field(max_length=500)] = None


@router.get(
    "/v1/cases", summary="Ledger cases (GeoJSON), filterable; overdue=true or escalation_level=n lists the escalated"
)
def list_cases(
    request: Request,
    session: SessionDep,
    token: Reader,
    now: Now,
    limit: LimitDep,
    state: Annotated[str | None, Query(description="a state, or `open` (neither closed nor dismissed)")] = None,
    overdue: bool | None = None,
    district: Annotated[str | None, Query(description="adcode; a city or province includes its counties")] = None,
    category: str | None = None,
    department: Annotated[str | None, Query(description="lead department")] = None,
    school_id: int | None = None,
    premises_id: int | None = None,
    source: Literal["scan", "field_report", "campaign", "manual", "staffing"] | None = None,
    closed_in_time: bool | None = None,
    escalation_level: Annotated[
        int | None, Query(ge=0, le=9, description="0 not escalated, 1 past the deadline, 2… the next authorities")
    ] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    out_crs: OutCrsDep = "wgs84",
) -> dict[str, Any]:
    filters = {"state": state, "overdue": overdue, "district": district, "category": category,
               "lead_department": department, "school_id": school_id, "premises_id": premises_id, "source": source,
               "closed_in_time": closed_in_time, "escalation_level": escalation_level}  # fmt: skip
    page = store.list_cases(
        session, department=ledger.department_of(token), today=store.local_date(now), after=after, limit=limit,
        **filters,
    )  # fmt: skip
    out = collection(request, page.features, next_after=page.next_after, out_crs=out_crs)
    out["numberMatched"] = page.total
    return out


@router.get("/v1/cases/{case_id}", summary="One case with its history (who, when, why) and allowed next states")
def get_case(case_id: int, session: SessionDep, token: Reader, now: Now, out_crs: OutCrsDep = "wgs84") -> Any:
    case = store.get_case(session, case_id, department=ledger.department_of(token), today=store.local_date(now))
    case["properties"]["allowed_next"] = allowed_next(case["properties"]["state"], token.role)
    return convert_tree({"type": "Feature", **case}, out_crs)


@router.post("/v1/cases", status_code=201, summary="Open a case by hand")
def create_case(body: CaseCreate, session: SessionDep, token: Writer, now: Now) -> dict[str, Any]:
    point = (
        point_to_wgs84(body.lon, body.lat, body.crs or "") if body.lon is not None and body.lat is not None else None
    )
    subject = (
        f"premises:{body.premises_id}" if body.premises_id else f"school:{body.school_id}" if body.school_id else None
    )
    case_id = store.create_case(
        session, subject=subject or f"manual:{uuid.uuid4()}", rule_id=body.rule_id or f"manual.{body.category}",
        category=body.category, source="manual", state=body.state, title=body.title,
        lead_department=body.lead_department, cooperating_departments=body.cooperating_departments, now=now,
        who=ledger.actor(token), point=point, reason=body.note, premises_id=body.premises_id,
        school_id=body.school_id, district_adcode=body.district,
    )  # fmt: skip
    return store.get_case(session, case_id, department=None, today=store.local_date(now))


@router.patch("/v1/cases/{case_id}", summary="Set the 五落实 fields: responsibility, measures, funds, deadline, plan")
def update_case(case_id: int, body: PlanUpdate, session: SessionDep, token: Writer, now: Now) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True)
    return store.update_plan(
        session, case_id, values, department=ledger.department_of(token), who=ledger.actor(token), now=now
    )


@router.post("/v1/cases/{case_id}/transitions", summary="Move a case along the loop (409 names the allowed states)")
def move_case(case_id: int, body: Transition, session: SessionDep, token: Writer, now: Now) -> dict[str, Any]:
    return store.transition(
        session, case_id, body.to, department=ledger.department_of(token), who=ledger.actor(token), now=now,
        reason=body.reason,
    )  # fmt: skip


@router.post("/v1/field-reports", status_code=201, summary="A patrol member's report: a case at inspection")
def post_field_report(
    request: Request,
    body: FieldReport,
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(requires("report:field"))],
    now: Now,
) -> dict[str, Any]:
    case_id = ledger.field_report(
        session, request.app.state.rules, body.model_dump(), who=ledger.actor(token),
        department=ledger.department_of(token), now=now,
    )  # fmt: skip
    return store.get_case(session, case_id, department=None, today=store.local_date(now))


@router.get("/report", response_class=HTMLResponse, summary="The phone-sized field report page")
def report_page(request: Request, token: Annotated[TokenInfo, Depends(page_access("report:field"))]) -> HTMLResponse:
    page = _REPORT_PAGE.replace("__TOKEN__", html.escape(request.state.clear_token, quote=True))
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
    return HTMLResponse(page, headers=headers)


_CATEGORY_ZH = {
    "internet_cafe": "网吧", "entertainment": "娱乐场所", "bar": "酒吧", "lottery": "彩票", "tobacco": "烟草",
    "alcohol": "酒类", "food_stall": "食品摊贩", "polluter": "污染企业", "hazardous": "危险品", "other": "其他",
}  # fmt: skip
_OPTIONS = "".join(f'<option value="{k}">{v}</option>' for k, v in _CATEGORY_ZH.items())
_REPORT_PAGE = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>巡查上报</title>
<style>body{font:16px sans-serif;margin:0;padding:12px;max-width:480px}label{display:block;margin:10px 0 4px}
input,select,textarea,button{width:100%;box-sizing:border-box;font-size:16px;padding:8px}
button{margin-top:14px;background:#1565c0;color:#fff;border:0;border-radius:4px}#out{margin-top:12px}</style>
</head><body><h1>巡查上报 Field report</h1>
<form id="f"><label>位置 Location</label><button type="button" id="gps">使用当前位置 Use my position</button>
<input name="lon" id="lon" placeholder="经度 lon" required inputmode="decimal">
<input name="lat" id="lat" placeholder="纬度 lat" required inputmode="decimal">
<label>坐标系 Coordinate system</label><select name="crs" id="crs"><option value="wgs84">WGS84 (GPS)</option>
<option value="gcj02">GCJ-02 (高德/腾讯)</option><option value="bd09">BD-09 (百度)</option>
<option value="cgcs2000">CGCS2000</option></select>
<label>类别 Category</label><select name="category" id="category">__OPTIONS__</select>
<label>名称 Name</label><input name="name" id="name">
<label>说明 Note</label><textarea name="note" id="note" rows="3"></textarea>
<label>照片编号 Photo references (one per line)</label><textarea id="photos" rows="2"></textarea>
<button type="submit">提交 Submit</button></form><div id="out" role="status"></div>
<script>
const TOKEN = "__TOKEN__";
document.getElementById("gps").onclick = () => navigator.geolocation.getCurrentPosition(p => {
  document.getElementById("lon").value = p.coords.longitude.toFixed(7);
  document.getElementById("lat").value = p.coords.latitude.toFixed(7);
  document.getElementById("crs").value = "wgs84"; });
document.getElementById("f").onsubmit = async (e) => {
  e.preventDefault();
  const v = id => document.getElementById(id).value.trim();
  const body = {lon: parseFloat(v("lon")), lat: parseFloat(v("lat")), crs: v("crs"), category: v("category"),
    note: v("note") || null, name: v("name") || null, photos: v("photos").split("\\n").filter(Boolean)};
  const r = await fetch("/v1/field-reports", {method: "POST", body: JSON.stringify(body),
    headers: {"Content-Type": "application/json", "Authorization": "Bearer " + TOKEN}});
  const j = await r.json();
  document.getElementById("out").textContent = r.ok ? ("已登记 案件 #" + j.id) : ("未提交：" + (j.detail || r.status));
};
</script></body></html>""".replace("__OPTIONS__", _OPTIONS)
