"""Dependencies that routes declare: the session, paging, bbox, output coordinate system."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from geo.errors import InvalidInput
from geo.vocabulary import Crs
from storage.read import BBox


def get_session(request: Request) -> Iterator[Session]:
    """A session whose transaction commits when the handler returns, or rolls back on error."""
    factory = request.app.state.sessionmaker
    with factory() as session, session.begin():
        yield session


# scope="function": the transaction commits before the answer is sent (a failed commit answers 503, never 200).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

OutCrs = Crs
OutCrsDep = Annotated[OutCrs, Query(description="coordinate system of the returned coordinates (stored data is WGS84)")]


def parse_bbox(
    bbox: Annotated[
        str | None,
        Query(description="minLon,minLat,maxLon,maxLat in WGS84", examples=["118.77,32.03,118.80,32.05"]),
    ] = None,
) -> BBox | None:
    if bbox is None:
        return None
    parts = bbox.split(",")
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 4 or not all(v == v and abs(v) != float("inf") for v in vals):
        msg = f"bbox must be four numbers minLon,minLat,maxLon,maxLat, got {bbox!r}"
        raise InvalidInput(
            msg,
            field="bbox",
            value=bbox,
            message_zh=f"bbox 须为 最小经度,最小纬度,最大经度,最大纬度：{bbox!r}",
        )
    x0, y0, x1, y1 = vals
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        msg = f"bbox out of range or min > max: {bbox!r}"
        raise InvalidInput(msg, field="bbox", value=bbox, message_zh=f"bbox 超出范围或最小值大于最大值：{bbox!r}")
    return (x0, y0, x1, y1)


BBoxDep = Annotated[BBox | None, Depends(parse_bbox)]


def limit_param(request: Request, limit: Annotated[int | None, Query(ge=1, le=10_000)] = None) -> int:
    settings = request.app.state.settings
    value = limit or settings.page_limit_default
    if value > settings.page_limit_max:
        msg = f"limit may be at most {settings.page_limit_max}, got {value}"
        raise InvalidInput(msg, field="limit", value=value, message_zh=f"limit 最大为 {settings.page_limit_max}")
    return value


LimitDep = Annotated[int, Depends(limit_param)]
