"""The decision notice page and "where may a new ⟨category⟩ open" (GeoJSON and map page).

* ``GET /maps/decisions/{id}`` — the printable notice (告知书) of a stored pre-check; ``read:decisions``.
* ``GET /v1/open-areas`` and ``GET /maps/open`` — zones only, no names: public-safe, so every role holds
  ``read:open_areas`` (licensing clients included; without ``read:maps`` the page has no streets basemap).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from service import maps, notices
from service.checks import SHANGHAI, Category
from service.deps import OutCrsDep, SessionDep
from service.geojson import convert
from storage import checks as decisions
from storage import open_areas as store
from storage import tiles
from storage.access import TokenInfo

router = APIRouter(tags=["maps"])

LangDep = Annotated[Literal["zh", "en"], Query(description="page language: zh (default) or en")]
DistrictDep = Annotated[str, Query(pattern=r"^\d{6}$", description="the district's adcode (GB/T 2260)")]
ApplicationDep = Annotated[Literal["new", "relocation", "expansion", "renewal"], Query(description="application kind")]
AccuracyDep = Annotated[
    float, Query(ge=0, le=10_000, allow_inf_nan=False, description="the accuracy future sites are given with (u)")
]
DateDep = Annotated[dt.date | None, Query(description="the date (default today, Asia/Shanghai)")]
PollutantDep = Annotated[
    float | None, Query(gt=0, le=100_000, allow_inf_nan=False, description="a polluter's protection distance")
]
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def _context(request: Request, session: SessionDep, lang: str) -> maps.PageContext:
    return maps.PageContext(
        lang=lang,  # type: ignore[arg-type]
        token=request.state.clear_token,
        names=False,
        osm=tiles.osm_data_present(session),
    )


def _areas(request: Request, session: SessionDep, **query: Any) -> tuple[Any, ...]:
    state = request.app.state
    on = query.pop("on") or dt.datetime.now(SHANGHAI).date()
    return notices.compute_open_areas(
        session, state.rules, on=on, school_accuracy_m=state.settings.school_accuracy_m, **query
    )


@router.get("/maps/decisions/{decision_id}", response_class=HTMLResponse, summary="The printable decision notice")
def decision_notice(
    request: Request,
    decision_id: uuid.UUID,
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(maps.page_access("read:decisions"))],
    lang: LangDep = "zh",
) -> HTMLResponse:
    stored = decisions.get_decision(session, decision_id)
    ids = {c["campus_id"] for r in stored["result"]["rules"] for c in [*r["within"], r["nearest"]] if c}
    adcode = stored["result"].get("district")
    name = store.district(session, adcode)["name"] if adcode else None
    html = notices.decision_page(
        _context(request, session, lang), str(decision_id), stored, store.campus_outlines(session, ids),
        basemap=notices.may_see_basemap(token), district_name=name, departments=request.app.state.rules.departments,
    )  # fmt: skip
    return HTMLResponse(html, headers=HEADERS)


@router.get("/v1/open-areas", summary="Where a new business of a category may open in a district (GeoJSON, no names)")
def open_areas(
    request: Request,
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(maps.page_access("read:open_areas"))],
    category: Category,
    district: DistrictDep,
    application: ApplicationDep = "new",
    accuracy_m: AccuracyDep = 0.0,
    date: DateDep = None,
    protection_distance_m: PollutantDep = None,
    out_crs: OutCrsDep = "wgs84",
) -> dict[str, Any]:
    areas, row, _, packs = _areas(
        request, session, category=category, adcode=district, application=application, on=date,
        accuracy_m=accuracy_m, protection_distance_m=protection_distance_m,
    )  # fmt: skip
    body = notices.open_areas_answer(
        areas, row, pack_version=request.app.state.rules.version, packs=packs, accuracy_m=accuracy_m
    )
    for feature in body["features"]:
        feature["geometry"] = convert(feature["geometry"], out_crs)
    return body


@router.get("/maps/open", response_class=HTMLResponse, summary="Map: where a new business of a category may open")
def open_map(
    request: Request,
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(maps.page_access("read:open_areas"))],
    category: Category,
    district: DistrictDep,
    application: ApplicationDep = "new",
    accuracy_m: AccuracyDep = 0.0,
    date: DateDep = None,
    protection_distance_m: PollutantDep = None,
    lang: LangDep = "zh",
) -> HTMLResponse:
    areas, row, _, _ = _areas(
        request, session, category=category, adcode=district, application=application, on=date,
        accuracy_m=accuracy_m, protection_distance_m=protection_distance_m,
    )  # fmt: skip
    ctx = _context(request, session, lang)
    return HTMLResponse(notices.open_page(ctx, areas, row, basemap=notices.may_see_basemap(token)), headers=HEADERS)
