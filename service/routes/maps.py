"""Map pages: the city overview and a school's page (HTML, offline, Chinese by default).

Pages need a token like the API; a browser sends it as ``?token=`` (an address bar cannot send an
``Authorization`` header) and the page passes it on to its tile and search requests.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from service import maps
from service.deps import SessionDep
from storage import read, tiles
from storage.access import TokenInfo

router = APIRouter(prefix="/maps", tags=["maps"])

LangDep = Annotated[Literal["zh", "en"], Query(description="page language: zh (default) or en")]
BasemapDep = Annotated[
    Literal["streets", "tianditu"],
    Query(description="streets (default, drawn from the imported streets) or tianditu (needs SAFEZONE_TIANDITU_KEY)"),
]
TokenDep = Annotated[TokenInfo, Depends(maps.page_access("read:maps"))]
# The page embeds the caller's token: never cached, never sent on as a referrer.
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def _context(request: Request, session: SessionDep, token: TokenInfo, lang: str, basemap: str) -> maps.PageContext:
    return maps.PageContext(
        lang=lang,  # type: ignore[arg-type]
        token=request.state.clear_token,
        names=maps.may_read_names(token),
        osm=tiles.osm_data_present(session),
        basemap=basemap,
        tianditu_key=request.app.state.settings.tianditu_key,
    )


@router.get("/city", response_class=HTMLResponse, summary="City or district overview map (vector tiles)")
def city_map(
    request: Request,
    session: SessionDep,
    token: TokenDep,
    district: Annotated[str | None, Query(description="adcode to show and filter by")] = None,
    lang: LangDep = "zh",
    basemap: BasemapDep = "streets",
) -> HTMLResponse:
    ctx = _context(request, session, token, lang, basemap)
    districts, _ = read.list_districts(session, limit=1000)
    extent = tiles.map_extent(session, district)
    props = [d["properties"] for d in districts]
    # the page is the same for every token but for the token itself: render once per set of inputs
    key = json.dumps([dataclasses.astuple(dataclasses.replace(ctx, token="")), extent, props, district], default=str)
    page = _CITY_PAGES.get(key)
    if page is None:
        page = maps.city_page(dataclasses.replace(ctx, token=_TOKEN_SLOT), extent=extent, districts=props,
                              district=district)  # fmt: skip
        if len(_CITY_PAGES) >= 64:
            _CITY_PAGES.clear()
        _CITY_PAGES[key] = page
    return HTMLResponse(page.replace(_TOKEN_SLOT, ctx.token), headers=HEADERS)


#: Rendered city pages by their inputs (the data they show arrives through tiles), the token left as a slot.
_CITY_PAGES: dict[str, str] = {}
_TOKEN_SLOT = "sz_TOKENSLOT0c1a7e"


@router.get("/schools/{school_id}", response_class=HTMLResponse, summary="A school's zones and the premises around")
def school_map(
    request: Request,
    school_id: int,
    session: SessionDep,
    token: TokenDep,
    lang: LangDep = "zh",
    basemap: BasemapDep = "streets",
) -> HTMLResponse:
    ctx = _context(request, session, token, lang, basemap)
    registry = request.app.state.rules
    head = tiles.school_header(session, school_id)
    rules = maps.zone_rules(registry, head["district"], head["levels"])
    radius = max((r.distance_m or 0.0 for r in rules), default=0.0) + maps.ZONE_MARGIN_M
    data = tiles.school_surroundings(session, school_id, radius_m=radius)
    return HTMLResponse(maps.school_page(ctx, data, rules, radius_m=radius), headers=HEADERS)
