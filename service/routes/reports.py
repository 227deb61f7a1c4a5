"""Ledger reports: per district, department or category — open, overdue, closed, closed within the
deadline (%) — with the monthly trend; JSON (paged) or XLSX. Every row links to the cases behind it; rows
by district carry the district's name (e.g. 秀峰区) beside its adcode."""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from service import ledger
from service.auth import requires
from service.deps import LimitDep, SessionDep
from service.routes.cases import Now
from storage import ledger as store
from storage.access import TokenInfo

router = APIRouter(prefix="/v1/reports", tags=["ledger"])

Reader = Annotated[TokenInfo, Depends(requires("read:reports"))]
By = Annotated[Literal["district", "department", "category"], Query(description="how rows are grouped")]
_FILTER_PARAM = {"district": "district", "department": "department", "category": "category"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _rows(request: Request, rows: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    base = request.url_for("list_cases")
    for r in rows:
        key = {_FILTER_PARAM[by]: r["key"]} if r["key"] else {}
        r["links"] = {
            "open": str(base.include_query_params(state="open", **key)),
            "overdue": str(base.include_query_params(overdue="true", **key)),
            "closed": str(base.include_query_params(state="closed", **key)),
            "closed_in_time": str(base.include_query_params(state="closed", closed_in_time="true", **key)),
        }
    return rows


@router.get("/cases", summary="Case counts per district, department or category, with the monthly trend")
def case_report(
    request: Request,
    session: SessionDep,
    token: Reader,
    now: Now,
    limit: LimitDep,
    by: By = "district",
    district: str | None = None,
    category: str | None = None,
    after: Annotated[str | None, Query(max_length=64, description="keyset cursor from the `next` link")] = None,
) -> dict[str, Any]:
    today, dept = store.local_date(now), ledger.department_of(token)
    rows, nxt = store.report(
        session, by=by, department=dept, today=today, after=after, limit=limit, district=district, category=category
    )
    links = [{"rel": "self", "href": str(request.url)}]
    if nxt is not None:
        links.append({"rel": "next", "href": str(request.url.include_query_params(after=nxt))})
    trend = store.trend(session, department=dept, today=today, district=district, category=category)
    return {"by": by, "date": today.isoformat(), "rows": _rows(request, rows, by), "trend": trend, "links": links}


@router.get(
    "/cases.xlsx",
    summary="The same report as an Excel workbook (rows and monthly trend)",
    responses={200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}},
)
def case_report_xlsx(
    session: SessionDep,
    token: Reader,
    now: Now,
    by: By = "district",
    district: str | None = None,
    category: str | None = None,
) -> Response:
    today, dept = store.local_date(now), ledger.department_of(token)
    rows, _ = store.report(
        session, by=by, department=dept, today=today, limit=100_000, district=district, category=category
    )
    trend = store.trend(session, department=dept, today=today, district=district, category=category)
    return Response(
        workbook(by, rows, trend),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="cases-by-{by}-{today.isoformat()}.xlsx"'},
    )


_HEAD = [
    "open 未销号",
    "overdue 逾期",
    "closed 已销号",
    "closed in time 按期销号",
    "in time % 按期率",
    "dismissed 撤销",
    "total 合计",
]


def workbook(by: str, rows: list[dict[str, Any]], trend: list[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = f"by {by}"
    named = by == "district"
    ws.append([by, *(["name 名称"] if named else []), *_HEAD])
    for r in rows:
        ws.append([r["key"], *([r["name"]] if named else []), r["open"], r["overdue"], r["closed"],
                   r["closed_in_time"], r["closed_in_time_pct"], r["dismissed"], r["total"]])  # fmt: skip
    tw = wb.create_sheet("trend")
    tw.append(["month 月份", "opened 新增", "closed 销号"])
    for t in trend:
        tw.append([t["month"], t["opened"], t["closed"]])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
