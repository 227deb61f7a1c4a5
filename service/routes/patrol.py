"""Guard posts (护学岗), patrols and camera coverage: plans as JSON, printable pages, maps and GPX."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from service import patrol
from service.auth import requires
from service.deps import OutCrsDep, SessionDep
from service.geojson import convert_tree
from service.maps import page_access
from service.scanning import today
from storage.access import TokenInfo
from storage.tiles import osm_data_present

router = APIRouter(tags=["guard posts and patrols"])

PlanDep = Annotated[TokenInfo, Depends(requires("plan:patrols"))]
PlanPageDep = Annotated[TokenInfo, Depends(page_access("plan:patrols"))]
CamerasDep = Annotated[TokenInfo, Depends(requires("read:cameras"))]
LangDep = Annotated[Literal["zh", "en"], Query(description="page language: zh (default) or en")]
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def _token_query(request: Request, lang: str) -> str:
    return urlencode({"token": request.state.clear_token, "lang": lang}, quote_via=quote)


@router.post("/v1/guard-posts/plan", summary="Assign units to the gates' arrival and dismissal posts (护学岗)")
def plan_guard_posts(
    body: patrol.GuardPostPlanRequest, session: SessionDep, token: PlanDep, out_crs: OutCrsDep = "wgs84"
) -> dict[str, Any]:
    _, answer = patrol.plan_guard_posts(session, body)
    return convert_tree(answer, out_crs)


@router.get("/maps/guard-posts", response_class=HTMLResponse, summary="The duty roster (A4) or the map of a plan")
def guard_posts_page(
    request: Request,
    session: SessionDep,
    token: PlanPageDep,
    plan: Annotated[str, Query(max_length=8000, description="the `plan` key of POST /v1/guard-posts/plan")],
    view: Annotated[Literal["map", "roster"], Query()] = "map",
    lang: LangDep = "zh",
) -> HTMLResponse:
    req = patrol.parse_key(plan, patrol.GuardPostPlanRequest)
    _, answer = patrol.plan_guard_posts(session, req)
    q = _token_query(request, lang)
    if view == "roster":
        html = patrol.guard_roster_html(answer, lang=lang, map_href=f"/maps/guard-posts?plan={plan}&{q}")
    else:
        html = patrol.guard_map_html(answer, token_query=q, osm=osm_data_present(session), lang=lang)
    return HTMLResponse(html, headers=HEADERS)


@router.post("/v1/patrols/plan", summary="Balanced patrol routes through the open findings of a district")
def plan_patrols(
    body: patrol.PatrolPlanRequest, session: SessionDep, token: PlanDep, out_crs: OutCrsDep = "wgs84"
) -> dict[str, Any]:
    return convert_tree(patrol.plan_patrols(session, body, today=today()), out_crs)


@router.get("/v1/patrols/{plan}/units/{unit}.gpx", summary="One unit's patrol route as GPX 1.1 (WGS84)")
def patrol_gpx(plan: str, unit: str, session: SessionDep, token: PlanDep) -> Response:
    answer = patrol.plan_patrols(session, patrol.parse_key(plan, patrol.PatrolPlanRequest), today=today())
    body = patrol.gpx(answer, unit)
    filename = quote(f"patrol-{unit}-{answer['date']}.gpx")
    disposition = f"attachment; filename*=UTF-8''{filename}"
    return Response(body, media_type="application/gpx+xml", headers={**HEADERS, "Content-Disposition": disposition})


@router.get("/maps/patrols/{plan}", response_class=HTMLResponse, summary="A patrol plan's map or printable list")
def patrol_page(
    request: Request,
    plan: str,
    session: SessionDep,
    token: PlanPageDep,
    view: Annotated[Literal["map", "list"], Query()] = "map",
    lang: LangDep = "zh",
) -> HTMLResponse:
    answer = patrol.plan_patrols(session, patrol.parse_key(plan, patrol.PatrolPlanRequest), today=today())
    q = _token_query(request, lang)
    if view == "list":
        html = patrol.patrol_list_html(answer, lang=lang, map_href=f"/maps/patrols/{plan}?{q}")
    else:
        html = patrol.patrol_map_html(answer, token_query=q, osm=osm_data_present(session), lang=lang)
    return HTMLResponse(html, headers=HEADERS)


@router.get("/v1/schools/{school_id}/camera-coverage", summary="Gates and zone streets no camera covers")
def school_camera_coverage(
    request: Request, school_id: int, session: SessionDep, token: CamerasDep, out_crs: OutCrsDep = "wgs84"
) -> dict[str, Any]:
    report = patrol.school_camera_coverage(session, request.app.state.rules, school_id)
    return convert_tree(report, out_crs)


@router.get("/v1/camera-coverage", summary="Camera coverage of every school of a district")
def district_camera_coverage(
    request: Request,
    session: SessionDep,
    token: CamerasDep,
    district: Annotated[str, Query(pattern=r"^\d{6}$", description="adcode; a city includes its counties")],
) -> dict[str, Any]:
    return patrol.district_camera_coverage(session, request.app.state.rules, district)
