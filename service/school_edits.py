"""Editing the school register over the API, and the findings each edit changes.

Every coordinate arrives with its system (``crs``) and is converted to WGS84 on entry (``geo.coords``).
Each edit runs in the request's one transaction: the row changes, then the edited campuses are judged again
with the scan's own SQL and the latest scan is patched (see ``storage.school_edits``); the answer lists the
findings that appeared and disappeared, as the diff of two full scans would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from sqlalchemy.orm import Session

from geo.coords import check_lonlat, geometry_to_wgs84
from geo.decide import DecisionSettings
from geo.errors import GeometryError, InvalidInput
from geo.rules import RuleRegistry
from geo.vocabulary import Crs
from service.scanning import scan_rules
from service.settings import Settings
from storage import scan as scan_store
from storage import school_edits as store

Level = Literal["kindergarten", "primary", "junior", "senior", "vocational", "special", "nine_year", "complete"]
_ALIASES = {"nine_year": ("primary", "junior"), "complete": ("junior", "senior")}
#: A gate further than this from its campus outline is a mistake (often a GCJ-02 point sent as WGS84).
GATE_TOLERANCE_M = 30.0
_Acc = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]
_Count = Annotated[int, Field(ge=0, le=1_000_000)]


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lon: float = Field(allow_inf_nan=False)
    lat: float = Field(allow_inf_nan=False)


class GateCreate(BaseModel):
    """A gate: a point on the campus edge (within 30 m of the outline)."""

    model_config = ConfigDict(extra="forbid")
    location: Location
    kind: Literal["main", "side", "back", "unknown"] = "unknown"
    in_use: bool = True
    name: Annotated[str | None, Field(max_length=200)] = None
    hours: Annotated[str | None, Field(max_length=200)] = None
    external_id: Annotated[str | None, Field(min_length=1, max_length=100)] = None


class GateCreateRequest(GateCreate):
    crs: Crs = Field(description="coordinate system of `location`: required")


class GateUpdate(BaseModel):
    """Move a gate, open or close it; only the fields given change."""

    model_config = ConfigDict(extra="forbid")
    location: Location | None = None
    crs: Crs | None = Field(None, description="coordinate system of `location`: required with it")
    in_use: bool | None = None
    kind: Literal["main", "side", "back", "unknown"] | None = None
    name: Annotated[str | None, Field(max_length=200)] = None
    hours: Annotated[str | None, Field(max_length=200)] = None

    @model_validator(mode="after")
    def _crs_with_location(self) -> GateUpdate:
        if self.location is not None and self.crs is None:
            msg = "`crs` is required with `location`"
            raise ValueError(msg)
        return self


class CampusCreate(BaseModel):
    """A campus: its outline (GeoJSON Polygon/MultiPolygon; a Point when no outline is known) and gates."""

    model_config = ConfigDict(extra="forbid")
    outline: dict[str, Any] = Field(description="GeoJSON geometry in the request's `crs`")
    name: Annotated[str | None, Field(max_length=200)] = None
    accuracy_m: _Acc | None = None
    gates: list[GateCreate] = Field(default_factory=list, max_length=50)
    external_id: Annotated[str | None, Field(min_length=1, max_length=100)] = None


class CampusUpdate(BaseModel):
    """A new outline (with its `crs`), name or accuracy; only the fields given change."""

    model_config = ConfigDict(extra="forbid")
    outline: dict[str, Any] | None = None
    crs: Crs | None = Field(None, description="coordinate system of `outline`: required with it")
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    accuracy_m: _Acc | None = None

    @model_validator(mode="after")
    def _crs_with_outline(self) -> CampusUpdate:
        if self.outline is not None and self.crs is None:
            msg = "`crs` is required with `outline`"
            raise ValueError(msg)
        return self


class SchoolFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    levels: list[Level] | None = Field(None, max_length=8, description="empty: unknown, protected by every rule")
    students: _Count | None = None
    boarders: _Count | None = None
    staff: _Count | None = None
    guards: _Count | None = None
    access_control: bool | None = None
    arrival: dt.time | None = None
    dismissal: dt.time | None = None
    opened: dt.date | None = None
    closed: dt.date | None = None
    licensed: bool | None = None
    accuracy_m: _Acc | None = None


class SchoolCreate(SchoolFields):
    """A school with one or more campuses; every coordinate in `crs`."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    levels: list[Level] = Field(default_factory=list, max_length=8)
    crs: Crs = Field(description="coordinate system of every outline and gate: required")
    campuses: list[CampusCreate] = Field(min_length=1, max_length=20)
    external_id: Annotated[str | None, Field(min_length=1, max_length=100)] = None


class SchoolUpdate(SchoolFields):
    """Fields of a school; only the fields given change."""

    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None


def _levels(levels: Sequence[str]) -> dict[str, Any]:
    out: set[str] = set()
    for level in levels:
        out.update(_ALIASES.get(level, (level,)))
    return {"levels": sorted(out), "flags": [] if out else ["level_unknown"]}


def _outline(geojson: dict[str, Any], crs: str, *, field: str) -> BaseGeometry:
    try:
        geom = shape(geojson)
    except Exception as exc:  # noqa: BLE001 - any malformed GeoJSON
        msg = f"{field} is not valid GeoJSON: {exc}"
        raise GeometryError(
            msg, field=field, value=str(geojson)[:200], message_zh=f"{field} 不是有效的 GeoJSON"
        ) from None
    if geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon", "Point"):
        msg = f"{field} must be a non-empty Polygon, MultiPolygon or Point, got {geom.geom_type}"
        raise GeometryError(msg, field=field, value=geom.geom_type, message_zh=f"{field} 须为非空的面（或点）")
    x0, y0, x1, y1 = geom.bounds
    check_lonlat(x0, y0, field=field)
    check_lonlat(x1, y1, field=field)
    if not geom.is_valid:
        msg = f"{field} is invalid: {explain_validity(geom)}"
        raise GeometryError(msg, field=field, value=explain_validity(geom), message_zh=f"{field} 无效（自相交等）")
    out = geometry_to_wgs84(geom, crs)
    if not out.is_valid:
        msg = f"{field} becomes invalid in WGS84: {explain_validity(out)}"
        raise GeometryError(msg, field=field, value=explain_validity(out), message_zh=f"{field} 转换后无效")
    return out


def _point(location: Location, crs: str, *, field: str) -> Point:
    lon, lat = check_lonlat(location.lon, location.lat, field=field)
    return geometry_to_wgs84(Point(lon, lat), crs)  # type: ignore[return-value]


def _gate(gate: GateCreate, crs: str, *, field: str) -> dict[str, Any]:
    return dict(gate.model_dump(exclude={"location"}), geometry=_point(gate.location, crs, field=field))


def _check_gate_near(session: Session, campus_id: int, point: Point, *, field: str) -> None:
    d = store.distance_to_campus_m(session, campus_id, point)
    if d is not None and d > GATE_TOLERANCE_M:
        msg = f"{field} is {d:.1f} m from the campus outline; a gate lies on its edge (within {GATE_TOLERANCE_M:g} m)"
        raise GeometryError(
            msg,
            field=field,
            value=round(d, 1),
            message_zh=f"校门距校区边界 {d:.1f} 米，须在 {GATE_TOLERANCE_M:g} 米以内",
        )


class Reevaluator:
    """Judges edited campuses again and patches the latest scan (rules, scan settings from the app)."""

    def __init__(self, registry: RuleRegistry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings

    def __call__(self, session: Session, campus_ids: list[int]) -> dict[str, Any]:
        latest = store.latest_scan(session)
        if latest is None:
            return {"scan_id": None, "appeared": [], "disappeared": [], "changed": [], "warnings": 0,
                    "evaluated": {"campuses": campus_ids, "premises": 0, "pairs": 0, "seconds": 0.0}}  # fmt: skip
        scan_id, on, district = latest
        decision = DecisionSettings(default_school_accuracy_m=self.settings.school_accuracy_m)
        rules = scan_rules(self.registry, store.district_adcodes(session), on=on)
        scan_settings = scan_store.ScanSettings(
            on=on, school_accuracy_m=self.settings.school_accuracy_m, campus_radius_m=decision.campus_radius_m
        )
        out = store.patch_latest_scan(
            session, scan_id, rules, settings=scan_settings, campus_ids=campus_ids, district=district
        )
        out.pop("premises_ids")
        return out


def _not_null(fields: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        if key in fields and fields[key] is None:
            msg = f"{key} may not be null"
            raise InvalidInput(msg, field=key, value=None, message_zh=f"{key} 不能为空")
    return fields


def _answer(result: dict[str, Any], **ids: Any) -> dict[str, Any]:
    counts = {"appeared": len(result["appeared"]), "disappeared": len(result["disappeared"])}
    return dict(ids, **result, counts=dict(counts, changed=len(result["changed"])))


def create_school(session: Session, body: SchoolCreate, judge: Reevaluator) -> dict[str, Any]:
    campuses: list[dict[str, Any]] = []
    for i, item in enumerate(body.campuses):
        geom = _outline(item.outline, body.crs, field=f"campuses.{i}.outline")
        gates = [_gate(g, body.crs, field=f"campuses.{i}.gates.{j}.location") for j, g in enumerate(item.gates)]
        campuses.append(dict(item.model_dump(exclude={"outline", "gates"}), geometry=geom, gates=gates))
    fields = body.model_dump(exclude={"campuses", "crs"}) | _levels(body.levels)
    school_id = store.create_school(session, fields=fields, campuses=campuses)
    campus_ids = store.campus_ids_of_school(session, school_id)
    for i, (campus_id, campus) in enumerate(zip(campus_ids, campuses, strict=True)):
        for j, gate in enumerate(campus["gates"]):
            _check_gate_near(session, campus_id, gate["geometry"], field=f"campuses.{i}.gates.{j}.location")
    return _answer(judge(session, campus_ids), school_id=school_id, campus_ids=campus_ids)


def update_school(session: Session, school_id: int, body: SchoolUpdate, judge: Reevaluator) -> dict[str, Any]:
    fields = _not_null(body.model_dump(exclude_unset=True), "name", "licensed")
    if "levels" in fields:
        fields["levels"] = _levels(fields["levels"] or [])["levels"]
    campus_ids = store.update_school(session, school_id, fields)
    return _answer(judge(session, campus_ids), school_id=school_id)


def update_campus(session: Session, campus_id: int, body: CampusUpdate, judge: Reevaluator) -> dict[str, Any]:
    fields = _not_null(body.model_dump(exclude_unset=True, exclude={"outline", "crs"}), "name")
    if body.outline is not None and body.crs is not None:
        fields["geometry"] = _outline(body.outline, body.crs, field="outline")
    school_id = store.update_campus(session, campus_id, fields)
    return _answer(judge(session, [campus_id]), school_id=school_id, campus_id=campus_id)


def add_gate(session: Session, campus_id: int, body: GateCreateRequest, judge: Reevaluator) -> dict[str, Any]:
    gate = _gate(body, body.crs, field="location")
    gate.pop("crs")
    gate_id = store.add_gate(session, campus_id, gate)
    _check_gate_near(session, campus_id, gate["geometry"], field="location")
    return _answer(judge(session, [campus_id]), gate_id=gate_id, campus_id=campus_id)


def update_gate(session: Session, gate_id: int, body: GateUpdate, judge: Reevaluator) -> dict[str, Any]:
    fields = _not_null(body.model_dump(exclude_unset=True, exclude={"location", "crs"}), "in_use", "kind")
    if body.location is not None and body.crs is not None:
        fields["geometry"] = _point(body.location, body.crs, field="location")
    campus_id = store.update_gate(session, gate_id, fields)
    if "geometry" in fields:
        _check_gate_near(session, campus_id, fields["geometry"], field="location")
    return _answer(judge(session, [campus_id]), gate_id=gate_id, campus_id=campus_id)
