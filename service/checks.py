"""The permit pre-check: request schema, evaluation over the store, the stored decision, replay."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Generator
from typing import Annotated, Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator
from shapely.geometry import Point, mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from geo.coords import check_lonlat, geometry_to_wgs84
from geo.decide import CampusInfo, CampusResult, CheckResult, DecisionSettings, GateInfo, Site, evaluate
from geo.errors import GeometryError
from geo.network import WalkingNetwork
from geo.rules import RuleRegistry
from geo.vocabulary import Category, Crs
from storage import checks as store
from storage.database import LoopPool

SHANGHAI = ZoneInfo("Asia/Shanghai")
WALK_MARGIN_M = 400.0
SEARCH_MARGIN_M = 300.0


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lon: float = Field(description="longitude in the request's `crs`", allow_inf_nan=False)
    lat: float = Field(description="latitude in the request's `crs`", allow_inf_nan=False)


class CheckRequest(BaseModel):
    """A proposed site: what would open where, in which coordinate system."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"category": "internet_cafe", "application": "new", "location": {"lon": 110.2906, "lat": 25.2736},
                 "crs": "gcj02", "accuracy_m": 10, "date": "2026-11-23", "name": "星海网吧"}
            ]
        },
    )  # fmt: skip
    category: Category
    application: Literal["new", "renewal", "relocation", "expansion"] = "new"
    location: Location | None = None
    geometry: dict[str, Any] | None = Field(default=None, description="GeoJSON Point or Polygon instead of location")
    crs: Crs = Field(description="coordinate system of location/geometry: required")
    accuracy_m: Annotated[float, Field(ge=0, le=10_000, allow_inf_nan=False)] = 0.0
    date: dt.date | None = Field(default=None, description="the date the answer is for (default: today, Asia/Shanghai)")
    name: Annotated[str | None, Field(max_length=200)] = None
    permit_id: Annotated[str | None, Field(max_length=100)] = None
    protection_distance_m: Annotated[float | None, Field(gt=0, le=100_000, allow_inf_nan=False)] = None

    @model_validator(mode="after")
    def _one_place(self) -> CheckRequest:
        if (self.location is None) == (self.geometry is None):
            msg = "give exactly one of `location` and `geometry`"
            raise ValueError(msg)
        return self

    def site_geometry(self) -> BaseGeometry:
        """The site in WGS84 (converted from the request's system)."""
        if self.location is not None:
            lon, lat = check_lonlat(self.location.lon, self.location.lat, field="location")
            geom: BaseGeometry = Point(lon, lat)
        else:
            try:
                geom = shape(self.geometry)
            except Exception as exc:  # noqa: BLE001
                msg = f"geometry is not valid GeoJSON: {exc}"
                raise GeometryError(
                    msg, field="geometry", value=str(self.geometry)[:200], message_zh=f"几何不是有效的 GeoJSON：{exc}"
                ) from None
            if geom.geom_type not in ("Point", "Polygon", "MultiPolygon") or geom.is_empty:
                msg = f"geometry must be a non-empty Point or Polygon, got {geom.geom_type}"
                raise GeometryError(msg, field="geometry", value=geom.geom_type, message_zh="几何须为非空的点或面")
            for x, y in geom.coords if geom.geom_type == "Point" else geom.envelope.exterior.coords:
                check_lonlat(x, y, field="geometry")
            if not geom.is_valid:
                from shapely.validation import explain_validity

                msg = f"geometry is invalid: {explain_validity(geom)}"
                raise GeometryError(
                    msg, field="geometry", value=explain_validity(geom), message_zh="几何无效（自相交等）"
                )
        return geometry_to_wgs84(geom, self.crs)


def _campus(row: dict[str, Any]) -> CampusInfo:
    return CampusInfo(
        school_id=row["school_id"], school_name=row["school_name"], campus_id=row["campus_id"],
        levels=frozenset(row["levels"]), outline=row["outline"], point_only=row["point_only"],
        accuracy_m=row["accuracy_m"],
        gates=tuple(GateInfo(g["id"], g["point"], g["in_use"]) for g in row["gates"]), opened=row["opened"],
    )  # fmt: skip


def _point(p: Point | None) -> dict[str, Any] | None:
    return None if p is None else {"type": "Point", "coordinates": [p.x, p.y]}


def _campus_out(c: CampusResult, names: dict[Any, str]) -> dict[str, Any]:
    return {
        "school_id": c.school_id,
        "school_name": c.school_name,
        "campus_id": c.campus_id,
        "campus_name": names.get(c.campus_id),
        "levels": sorted(c.levels),
        "distance_m": round(c.distance_m, 3),
        "margin_m": round(c.margin_m, 3),
        "u_m": round(c.u_m, 3),
        "outcome": c.outcome,
        "method": c.method,
        "gate_id": c.gate_id,
        "from": _point(c.from_point),
        "to": _point(c.to_point),
        "path": dict(mapping(c.path)) if c.path is not None else None,
        "flags": sorted(c.flags),
    }


def serialise(result: CheckResult, names: dict[Any, str]) -> list[dict[str, Any]]:
    out = []
    for r in result.rules:
        rule = r.rule
        out.append(
            {
                "rule_id": rule.id,
                "category": rule.category,
                "limit_m": r.limit_m,
                "measure_from": rule.measure_from,
                "measure_to": rule.measure_to,
                "metric": rule.metric,
                "levels": list(rule.levels),
                "existing": rule.existing,
                "jurisdiction": rule.jurisdiction,
                "legal_basis": {"text": rule.legal_basis.text, "citation": rule.legal_basis.citation},
                "confirmed": rule.confirmed,
                "lead_department": rule.lead_department,
                "cooperating_departments": list(rule.cooperating_departments),
                "outcome": r.outcome,
                "u_m": round(r.u, 3),
                "nearest": _campus_out(r.nearest, names) if r.nearest else None,
                "within": [_campus_out(c, names) for c in r.within],
                "flags": sorted(r.flags),
            }
        )
    return out


#: The pre-check's steps: a generator that yields each statement it needs (``storage.checks.Statement``), is
#: sent what the statement's ``read`` made of its rows, and returns its result. One definition of the check,
#: run in a thread on a session (:func:`run_steps`) or on the event loop (:func:`run_steps_on_loop`).
Steps = Generator[store.Statement, Any, Any]


def run_steps(session: Session | Connection, steps: Steps) -> Any:
    """Run a pre-check's steps in ``session`` (its transaction); their result."""
    try:
        stmt = next(steps)
        while True:
            stmt = steps.send(store.run(session, stmt))
    except StopIteration as done:
        return done.value


async def run_steps_on_loop(pool: LoopPool, steps: Steps) -> Any:
    """Run a pre-check's steps on the event loop, on a connection of ``pool`` (autocommit); their result.

    The connection is taken once the steps need one: a request refused before its first statement takes none.
    """
    try:
        stmt = next(steps)
    except StopIteration as done:
        return done.value
    async with pool.connection() as conn:
        try:
            while True:
                stmt = steps.send(await pool.run(conn, stmt))
        except StopIteration as done:
            return done.value


def evaluation(req: CheckRequest, *, rules: RuleRegistry, school_accuracy_m: float) -> Steps:
    """Evaluate a request against today's store and rules: the answer (without id or map link), as steps."""
    geom = req.site_geometry()
    on = req.date or dt.datetime.now(SHANGHAI).date()
    # One round trip reads the district and the campuses within the search radius of the category's largest
    # distance in any pack; in the rare district whose rules reach less far, the campuses are read again.
    extra = (req.protection_distance_m or 0.0) + req.accuracy_m + SEARCH_MARGIN_M
    upper = rules.max_distance_m(req.category) + extra
    district, rows = yield store.district_and_campuses_near_stmt(geom, upper)
    in_force = rules.in_force(district, on=on)
    site = Site(
        geometry=geom, category=req.category, application=req.application, on=on, accuracy_m=req.accuracy_m,
        crs=req.crs, protection_distance_m=req.protection_distance_m,
    )  # fmt: skip
    applicable = [r for r in in_force.rules if r.category == req.category]
    limits = [r.distance_m or 0.0 for r in applicable] + [req.protection_distance_m or 0.0]
    radius = max(limits) + req.accuracy_m + SEARCH_MARGIN_M
    if not applicable:
        rows = []
    elif radius < upper:
        rows = yield store.campuses_near_stmt(geom, radius)
    network, edge_batches = None, set()
    if any(r.metric == "walking" for r in applicable) and rows:
        edges = yield store.street_edges_near_stmt(geom, radius + WALK_MARGIN_M)
        if edges:
            network = WalkingNetwork.from_edges((u, v, g) for u, v, g, _ in edges)
            edge_batches = {b for *_, b in edges if b is not None}
    settings = DecisionSettings(default_school_accuracy_m=school_accuracy_m)
    result = evaluate(site, in_force, [_campus(r) for r in rows], network=network, settings=settings)
    names = {r["campus_id"]: r["campus_name"] for r in rows}
    batches = sorted(
        {b for r in rows for b in r["batch_ids"]}
        | {g["batch_id"] for r in rows for g in r["gates"] if g["batch_id"]}
        | edge_batches
    )
    return {
        "outcome": result.outcome,
        "category": req.category,
        "application": req.application,
        "date": on.isoformat(),
        "location": dict(mapping(geom)),
        "district": district,
        "packs": list(in_force.packs),
        "pack_version": rules.version,
        "rules": serialise(result, names),
        "flags": sorted(set(result.flags)),
        "data_batches": batches,
    }


def evaluate_request(
    session: Session | Connection, req: CheckRequest, *, rules: RuleRegistry, school_accuracy_m: float
) -> dict[str, Any]:
    """Evaluate a request against today's store and rules; returns the answer (without id or map link)."""
    return run_steps(session, evaluation(req, rules=rules, school_accuracy_m=school_accuracy_m))


def json_text(obj: Any) -> str:
    """``obj`` as JSON text, as stored and sent (numpy numbers as numbers; NaN, which no answer holds, as null)."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()


class Decided(NamedTuple):
    """A stored decision: the answer, and the same answer as the JSON text stored (and sent as it is)."""

    answer: dict[str, Any]
    text: str


def check(
    req: CheckRequest,
    *,
    rules: RuleRegistry,
    school_accuracy_m: float,
    token_id: int | None,
    audit: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Steps:
    """Evaluate, store the decision (inputs, pack version, batches, result) and return it (:class:`Decided`),
    as steps (run them with :func:`run_steps` or :func:`run_steps_on_loop`).

    ``audit`` gives the answer's audit row (``storage.audit.params(prefix="a_")``), stored with the decision.
    """
    answer = yield from evaluation(req, rules=rules, school_accuracy_m=school_accuracy_m)
    decision_id = uuid.uuid4()
    answer = {"decision_id": str(decision_id), **answer, "map_url": f"/maps/decisions/{decision_id}",
              "checked_at": dt.datetime.now(SHANGHAI).isoformat(timespec="seconds")}  # fmt: skip
    inputs = req.model_dump(mode="json")
    if inputs.get("date") is None:
        inputs["date"] = answer["date"]
    text = json_text(answer)
    yield store.save_decision_stmt(
        decision_id=decision_id, token_id=token_id, category=req.category, outcome=answer["outcome"],
        pack_version=rules.version, batch_ids=answer["data_batches"], district=answer["district"],
        geom=shape(answer["location"]), inputs=json_text(inputs), result=text, audit=audit(answer) if audit else None,
    )  # fmt: skip
    return Decided(answer, text)


def run_check(
    session: Session | Connection,
    req: CheckRequest,
    *,
    rules: RuleRegistry,
    school_accuracy_m: float,
    token_id: int | None,
    audit: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Decided:
    """:func:`check`, run in ``session``."""
    return run_steps(
        session, check(req, rules=rules, school_accuracy_m=school_accuracy_m, token_id=token_id, audit=audit)
    )


def _key(c: dict[str, Any] | None) -> Any:
    return None if c is None else (c["school_id"], c["campus_id"])


def differences(before: dict[str, Any], after: dict[str, Any], *, tolerance_m: float = 0.001) -> list[dict[str, Any]]:
    """What differs between a stored answer and today's: outcome, rules, schools, distances."""
    diffs: list[dict[str, Any]] = []

    def add(what: str, rule: str | None, old: Any, new: Any) -> None:
        diffs.append({"what": what, "rule_id": rule, "before": old, "after": new})

    if before["outcome"] != after["outcome"]:
        add("outcome", None, before["outcome"], after["outcome"])
    if before.get("pack_version") != after.get("pack_version"):
        add("pack_version", None, before.get("pack_version"), after.get("pack_version"))
    old_rules = {r["rule_id"]: r for r in before["rules"]}
    new_rules = {r["rule_id"]: r for r in after["rules"]}
    for rid in sorted(old_rules.keys() - new_rules.keys()):
        add("rule_removed", rid, old_rules[rid]["limit_m"], None)
    for rid in sorted(new_rules.keys() - old_rules.keys()):
        add("rule_added", rid, None, new_rules[rid]["limit_m"])
    for rid in sorted(old_rules.keys() & new_rules.keys()):
        o, n = old_rules[rid], new_rules[rid]
        for field in ("limit_m", "outcome", "measure_from", "measure_to", "metric", "u_m"):
            if o[field] != n[field]:
                add(field, rid, o[field], n[field])
        if _key(o["nearest"]) != _key(n["nearest"]):
            add("nearest_school", rid, o["nearest"] and o["nearest"]["school_name"],
                n["nearest"] and n["nearest"]["school_name"])  # fmt: skip
        elif o["nearest"] and abs(o["nearest"]["distance_m"] - n["nearest"]["distance_m"]) > tolerance_m:
            add("distance_m", rid, o["nearest"]["distance_m"], n["nearest"]["distance_m"])
        ow = {_key(c): c["school_name"] for c in o["within"]}
        nw = {_key(c): c["school_name"] for c in n["within"]}
        if ow.keys() != nw.keys():
            add("schools_within", rid, sorted(ow.values()), sorted(nw.values()))
    return diffs
