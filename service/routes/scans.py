"""City-wide scans, their findings (JSON/GeoJSON, CSV, XLSX), diffs, and the warnings schools receive."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from service import scanning
from service.auth import POLICY, requires
from service.deps import LimitDep, OutCrsDep, SessionDep
from service.geojson import collection
from storage import jobs
from storage import scan as store
from storage.access import TokenInfo

router = APIRouter(tags=["scans"])

Status = Literal["violation", "nonconforming", "review", "unlicensed"]
Category = Annotated[
    str | None,
    Query(pattern="^(internet_cafe|entertainment|bar|lottery|tobacco|alcohol|food_stall|polluter|hazardous|other)$"),
]
_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ScanCreate(BaseModel):
    district: str | None = Field(None, pattern=r"^[1-9][0-9]{5}$", description="scan only this adcode (and below)")


@router.post("/v1/scans", status_code=202, summary="Run a city-wide scan as a background job")
def create_scan(
    response: Response,
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(requires("write:scans"))],
    body: Annotated[ScanCreate | None, Body()] = None,
) -> dict[str, Any]:
    params = {"district": body.district if body else None, "token_id": token.id, "actor": token.name}
    job_id = jobs.enqueue(session, kind="scan", params=params, token_id=token.id, total=1)
    response.headers["Location"] = f"/v1/jobs/{job_id}"
    return {"job_id": str(job_id), "status": "queued", "kind": "scan", "href": f"/v1/jobs/{job_id}"}


@router.get("/v1/scans/{scan_id}", summary="One scan: status, rule-pack version, counts")
def get_scan(
    scan_id: int, session: SessionDep, _: Annotated[Any, Depends(requires("read:findings"))]
) -> dict[str, Any]:
    return store.get_scan(session, scan_id)


@router.get("/v1/scans/{scan_id}/diff", summary="Findings that appeared and disappeared since the previous scan")
def scan_diff(
    scan_id: int, session: SessionDep, _: Annotated[Any, Depends(requires("read:findings"))]
) -> dict[str, Any]:
    return store.scan_diff(session, scan_id)


@router.get("/v1/findings", summary="Findings of a scan (latest by default): GeoJSON, CSV or XLSX")
def list_findings(
    request: Request,
    session: SessionDep,
    limit: LimitDep,
    _: Annotated[Any, Depends(requires("read:findings"))],
    scan: Annotated[int | None, Query(ge=1, description="scan id; default the latest")] = None,
    status: Status | None = None,
    category: Category = None,
    rule: Annotated[str | None, Query(max_length=64)] = None,
    district: Annotated[str | None, Query(description="adcode; a city or province includes its counties")] = None,
    school: Annotated[int | None, Query(ge=1)] = None,
    department: Annotated[str | None, Query(max_length=64, description="lead or cooperating department")] = None,
    after: Annotated[int | None, Query(ge=0, description="keyset cursor from the `next` link")] = None,
    format: Annotated[Literal["json", "csv", "xlsx"], Query()] = "json",  # noqa: A002 - the API's name
    out_crs: OutCrsDep = "wgs84",
) -> Any:
    scan_id, page = store.list_findings(
        session, scan_id=scan, status=status, category=category, rule=rule, district=district,
        school=school, department=department, after=after, limit=limit,
    )  # fmt: skip
    if format == "json":
        return dict(collection(request, page.features, next_after=page.next_after, out_crs=out_crs), scan_id=scan_id)
    body = scanning.findings_csv(page.features) if format == "csv" else scanning.findings_xlsx(page.features)
    headers = {"Content-Disposition": f'attachment; filename="findings-{scan_id}.{format}"'}
    if page.next_after is not None:
        headers["Link"] = f'<{request.url.include_query_params(after=page.next_after)}>; rel="next"'
    return Response(body, media_type=_MEDIA[format], headers=headers)


@router.get("/v1/schools/{school_id}/warnings", tags=["schools"], summary="Warnings of new findings in the zone")
def school_warnings(
    school_id: int, session: SessionDep, token: Annotated[TokenInfo, Depends(requires("read:schools"))]
) -> dict[str, Any]:
    items = store.school_warnings(session, school_id)
    if token.role not in POLICY["read:findings"]:  # trader names are personal data
        for item in items:
            if item["finding"]:
                item["finding"]["properties"].update(premises_name=None, permit_no=None)
    return {"school_id": school_id, "warnings": items, "numberReturned": len(items)}
