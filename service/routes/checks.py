"""The permit pre-check API: single checks, stored decisions and their replay, batch checks, rules."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from shapely.geometry import Point

from geo.coords import check_lonlat, point_to_wgs84
from geo.errors import CoordinateError, InvalidInput, TooLarge
from service.auth import requires
from service.checks import (
    CheckRequest,
    Decided,
    Steps,
    check,
    differences,
    evaluate_request,
    json_text,
    run_steps,
    run_steps_on_loop,
)
from service.deps import OutCrsDep, SessionDep
from service.geojson import convert_tree
from service.idempotency import IdempotencyDep, KeyHeader, claim, fingerprint_if_keyed
from service.middleware import audit_row_for
from storage import checks as store
from storage import jobs as jobs_store
from storage.access import TokenInfo
from storage.database import session_scope

router = APIRouter(tags=["checks"])


@router.post(
    "/v1/checks",
    summary="Pre-check a proposed site: prohibited, review or allowed, and why",
    response_model=dict[str, Any],
)
async def create_check(
    request: Request,
    body: CheckRequest,
    token: Annotated[TokenInfo, Depends(requires("check"))],
    fingerprint: Annotated[str, Depends(fingerprint_if_keyed)],
    key: KeyHeader = None,
    out_crs: OutCrsDep = "wgs84",
) -> Response:
    # The hot path. Without an Idempotency-Key a check is one writing statement (the decision and its audit
    # row) and a read or two: it runs on the event loop, on a connection of the loop's pool, and its answer
    # goes out as the JSON text stored with the decision unless it must be converted. With a key, the key's
    # claim and the decision commit together in a session's transaction, in a thread.
    state = request.app.state

    def steps() -> Steps:
        decided = yield from check(
            body, rules=state.rules, school_accuracy_m=state.settings.school_accuracy_m, token_id=token.id,
            audit=lambda a: audit_row_for(request, a, prefix="a_"),
        )  # fmt: skip
        request.state.check_outcome = (decided.answer["outcome"], decided.answer["category"])
        return decided

    if key is None:
        if state.loop_pool is not None:
            answer, text = await run_steps_on_loop(state.loop_pool, steps())
        else:  # no loop pool (the test client runs requests in the test's transaction): in a thread
            answer, text = await anyio.to_thread.run_sync(_run_in_session, state, steps())
        out = text if out_crs == "wgs84" else json_text(convert_tree(answer, out_crs))
        return Response(out, media_type="application/json")

    def keyed() -> str:
        with session_scope(state.sessionmaker) as session:
            idem = claim(session, request, token, fingerprint, key)
            answer, _ = run_steps(session, steps())
            return json_text(idem.save(convert_tree(answer, out_crs)))

    return Response(await anyio.to_thread.run_sync(keyed), media_type="application/json")


def _run_in_session(state: Any, steps: Steps) -> Decided:
    with session_scope(state.sessionmaker) as session:
        return run_steps(session, steps)


@router.get("/v1/decisions/{decision_id}", summary="A stored decision, unchanged")
def get_decision(
    decision_id: uuid.UUID,
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(requires("read:decisions"))],
    out_crs: OutCrsDep = "wgs84",
) -> dict[str, Any]:
    stored = store.get_decision(session, decision_id)
    return convert_tree({**stored["result"], "inputs": stored["inputs"]}, out_crs)


@router.get(
    "/v1/decisions/{decision_id}/replay", summary="The same request with today's data and rules, and what differs"
)
def replay_decision(
    request: Request,
    decision_id: uuid.UUID,
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(requires("read:decisions"))],
    out_crs: OutCrsDep = "wgs84",
) -> dict[str, Any]:
    stored = store.get_decision(session, decision_id)
    req = CheckRequest.model_validate(stored["inputs"])
    state = request.app.state
    today = evaluate_request(session, req, rules=state.rules, school_accuracy_m=state.settings.school_accuracy_m)
    diffs = differences(stored["result"], today)
    return convert_tree(
        {"decision_id": str(decision_id), "unchanged": not diffs, "differences": diffs,
         "original": stored["result"], "today": today},
        out_crs,
    )  # fmt: skip


@router.get("/v1/rules", summary="The rules in force at a place (or in a district), with the pack version")
def rules_in_force(
    request: Request,
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(requires("read:rules"))],
    lon: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    lat: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    crs: Annotated[str | None, Query(pattern="^(wgs84|cgcs2000|gcj02|bd09)$")] = None,
    district: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
) -> dict[str, Any]:
    registry = request.app.state.rules
    if district is None and lon is None and lat is None:
        adcode = None
    elif district is not None:
        adcode = district
    else:
        if lon is None or lat is None:
            raise InvalidInput("give both lon and lat (and crs), or district", field="lon" if lon is None else "lat")
        if crs is None:
            raise CoordinateError("crs is required with lon/lat", field="crs", message_zh="须注明坐标系 crs")
        x, y = check_lonlat(lon, lat)
        adcode = store.district_at(session, Point(*point_to_wgs84(x, y, crs)))
    in_force = registry.in_force(adcode)
    return {
        "district": adcode,
        "packs": list(in_force.packs),
        "pack_version": registry.version,
        "flags": list(in_force.flags),
        "rules": [r.model_dump(mode="json") for r in in_force.rules],
        "staffing": [s.model_dump(mode="json") for s in in_force.staffing],
    }


@router.post(
    "/v1/checks/batch",
    status_code=202,
    summary="Pre-check up to 100,000 sites (JSON `sites`, or a CSV/XLSX upload) as a background job",
)
async def create_batch(
    request: Request,
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(requires("check"))],
    idem: IdempotencyDep,
) -> JSONResponse:
    from service.batch import MAX_SITES, sites_from_table

    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("upload the sites as a `file` field (CSV or XLSX)", field="file")
        crs = form.get("crs") or None
        with tempfile.TemporaryDirectory(prefix="safezone-batch-") as tmp:
            path = Path(tmp) / Path(upload.filename or "sites.csv").name
            path.write_bytes(await upload.read())
            sites = sites_from_table(path, crs=str(crs) if crs else None, data_dir=request.app.state.settings.data_dir)
    else:
        try:
            body = await request.json()
        except ValueError:
            raise InvalidInput("the body is not valid JSON", field="body", message_zh="请求体不是有效的 JSON") from None
        sites = body.get("sites") if isinstance(body, dict) else None
        if not isinstance(sites, list):
            raise InvalidInput('the body must be {"sites": [ ...check requests... ]}', field="sites")
    if not sites:
        raise InvalidInput("no sites to check", field="sites", value=0, message_zh="没有需要核查的地点")
    if len(sites) > MAX_SITES:
        raise TooLarge(
            f"sites: at most {MAX_SITES} sites per batch, got {len(sites)}; split the batch",
            field="sites",
            value=len(sites),
            message_zh=f"sites：每批最多 {MAX_SITES} 个地点，收到 {len(sites)} 个，请拆分后提交",
        )
    sites = [s if isinstance(s, dict) else {"_invalid": s} for s in sites]
    job_id = jobs_store.enqueue(
        session, kind="batch_check", params={"sites": sites, "token_id": token.id}, token_id=token.id, total=len(sites)
    )
    answer = {"job_id": str(job_id), "status": "queued", "total": len(sites), "href": f"/v1/jobs/{job_id}"}
    return JSONResponse(
        idem.save(answer, status=202),
        status_code=202,
        headers={"Location": f"/v1/jobs/{job_id}"},
    )
