"""Decisions: the pure evaluation of a proposed site against the rules in force.

For each applicable rule and each campus it protects, the distance ``d`` is measured as the rule says
(:mod:`geo.measure`, :mod:`geo.network`) and compared with the rule's distance ``D`` under the
positional uncertainty ``u`` (DESIGN.md "Decisions"):

* ``prohibited`` if ``d <= D - u``; ``review`` if ``D - u < d <= D + u``; ``allowed`` if ``d > D + u``.
* Fallbacks that underestimate ``d`` (``gate_unknown``, ``network_unavailable``) can only confirm
  ``allowed``; a school known only as a point overestimates ``d`` by up to its campus radius ``R``.

The set-based SQL path in ``storage/`` must agree with :func:`evaluate`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any, Literal

from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from geo.errors import CoordinateError, GeometryError, InvalidInput
from geo.measure import Measurement, distance_to_gates, distance_to_outline
from geo.rules import APPLICATIONS, CATEGORIES, LEVELS, Rule, RulesInForce

__all__ = [
    "CRS_NAMES",
    "CampusInfo",
    "CampusResult",
    "CheckResult",
    "DecisionSettings",
    "GateInfo",
    "Outcome",
    "RuleResult",
    "Site",
    "classify",
    "evaluate",
    "uncertainty",
    "worst",
]

Outcome = Literal["prohibited", "review", "allowed"]
_SEVERITY: dict[str, int] = {"allowed": 0, "review": 1, "prohibited": 2}
#: Coordinate systems a site may have been given in (converted to WGS84 on entry).
CRS_NAMES: frozenset[str] = frozenset({"wgs84", "cgcs2000", "gcj02", "bd09"})
#: CGCS2000 drifts from WGS84 by up to about a metre today.
_CGCS2000_DRIFT_M = 1.0
_LEVEL_ALIASES: dict[str, frozenset[str]] = {
    "nine_year": frozenset({"primary", "junior"}),
    "complete": frozenset({"junior", "senior"}),
}
_DEFAULT_CAMPUS_RADIUS_M: Mapping[str, float] = MappingProxyType(
    {
        "kindergarten": 40.0,
        "primary": 100.0,
        "junior": 120.0,
        "senior": 150.0,
        "vocational": 150.0,
        "special": 60.0,
        "unknown": 150.0,
    }
)


def _finite_nonneg(value: float, *, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value < 0:
        msg = f"{name} must be a finite number >= 0, got {value!r}"
        raise InvalidInput(msg, message_zh=f"{name} 须为不小于0的有限数值，收到 {value!r}", field=name, value=value)
    return value


def uncertainty(*, site_accuracy_m: float, school_accuracy_m: float, crs: str) -> float:
    """Positional uncertainty ``u`` of one site–school pair, metres.

    Parameters
    ----------
    site_accuracy_m
        The site's stated accuracy (0 when exact).
    school_accuracy_m
        The accuracy of the school's geometry (OSM imports: 5 m by default).
    crs
        The coordinate system the site was given in; ``cgcs2000`` adds 1 m.

    Returns
    -------
    float
    """
    site = _finite_nonneg(site_accuracy_m, name="accuracy_m")
    school = _finite_nonneg(school_accuracy_m, name="school_accuracy_m")
    if crs not in CRS_NAMES:
        msg = f"unknown coordinate system {crs!r}; expected one of {sorted(CRS_NAMES)}"
        raise CoordinateError(
            msg, message_zh=f"未知的坐标系 {crs!r}，应为 {sorted(CRS_NAMES)} 之一", field="crs", value=crs
        )
    return site + school + (_CGCS2000_DRIFT_M if crs == "cgcs2000" else 0.0)


#: Distances are compared to the micrometre (the same in the scan's SQL: ``storage.scan._JUDGE``).
RESOLUTION_M = 1e-6


def classify(
    d: float,
    D: float,  # noqa: N803 - the DESIGN's symbol
    u: float,
    *,
    underestimate: bool = False,
    point_only_radius_m: float | None = None,
) -> Outcome:
    """Classify one measured distance against one rule distance.

    Parameters
    ----------
    d
        Measured distance, metres.
    D
        The rule's distance, metres (> 0).
    u
        Positional uncertainty, metres (>= 0).
    underestimate
        The measurement may be shorter than the truth (``gate_unknown``, ``network_unavailable``): it
        can confirm ``allowed`` but never ``prohibited``.
    point_only_radius_m
        The school is a point; the truth may be shorter by up to this radius ``R``: ``allowed`` only if
        ``d > D + u + R``.

    Returns
    -------
    {'prohibited', 'review', 'allowed'}
        With ``u = 0`` the threshold is inclusive: ``d == D`` is prohibited. Distances are compared to
        :data:`RESOLUTION_M` (a micrometre): a site placed at exactly D whose computed distance carries
        floating-point noise of 1e-10 m is at D.
    """
    d = _finite_nonneg(d, name="distance_m")
    u = _finite_nonneg(u, name="u")
    D = _finite_nonneg(D, name="limit_m")  # noqa: N806
    if D == 0:
        msg = "the rule distance must be > 0, got 0"
        raise InvalidInput(msg, message_zh="规则距离须大于0，收到 0", field="limit_m", value=D)
    radius = 0.0 if point_only_radius_m is None else _finite_nonneg(point_only_radius_m, name="campus_radius_m")
    d = d - RESOLUTION_M
    if d > D + u + radius:
        return "allowed"
    if not underestimate and d <= D - u:
        return "prohibited"
    return "review"


def worst(outcomes: Iterable[Outcome]) -> Outcome:
    """The most severe outcome: prohibited > review > allowed; nothing → allowed."""
    result: Outcome = "allowed"
    for outcome in outcomes:
        if outcome not in _SEVERITY:
            msg = f"unknown outcome {outcome!r}"
            raise InvalidInput(msg, message_zh=f"未知的结论 {outcome!r}", field="outcome", value=outcome)
        if _SEVERITY[outcome] > _SEVERITY[result]:
            result = outcome
    return result


@dataclass(frozen=True)
class GateInfo:
    """A campus gate (校门), WGS84."""

    gate_id: int | str
    point: Point
    in_use: bool = True


@dataclass(frozen=True)
class CampusInfo:
    """A campus as the decision needs it.

    ``levels`` empty means unknown (protected by every rule, flagged ``level_unknown``); ``nine_year``
    and ``complete`` are expanded. ``accuracy_m`` None uses the settings' default.
    """

    school_id: int | str
    school_name: str
    campus_id: int | str
    levels: frozenset[str]
    outline: BaseGeometry
    point_only: bool
    accuracy_m: float | None
    gates: tuple[GateInfo, ...] = ()
    opened: date | None = None

    def __post_init__(self) -> None:
        expanded: set[str] = set()
        for level in self.levels:
            expanded |= _LEVEL_ALIASES.get(level, {level})
        bad = sorted(expanded - LEVELS)
        if bad:
            msg = f"campus {self.campus_id!r}: unknown level(s) {bad}; expected {sorted(LEVELS)}"
            raise InvalidInput(msg, message_zh=f"校区 {self.campus_id!r}：未知的学段 {bad}", field="levels", value=bad)
        object.__setattr__(self, "levels", frozenset(expanded))
        if not isinstance(self.outline, BaseGeometry) or self.outline.is_empty:
            msg = f"campus {self.campus_id!r}: outline must be a non-empty geometry, got {self.outline!r}"
            raise GeometryError(
                msg,
                message_zh=f"校区 {self.campus_id!r}：校园边界须为非空几何，收到 {self.outline!r}",
                field="outline",
            )
        if self.outline.geom_type == "Point" and not self.point_only:
            object.__setattr__(self, "point_only", True)


@dataclass(frozen=True)
class Site:
    """A proposed site to pre-check, already converted to WGS84 (``crs`` records what it was given in)."""

    geometry: BaseGeometry
    category: str
    application: str
    on: date
    accuracy_m: float = 0.0
    crs: str = "wgs84"
    protection_distance_m: float | None = None

    def __post_init__(self) -> None:
        geom = self.geometry
        if not isinstance(geom, BaseGeometry) or geom.geom_type not in ("Point", "Polygon", "MultiPolygon"):
            msg = f"site geometry must be a Point, Polygon or MultiPolygon, got {geom!r}"
            raise GeometryError(msg, message_zh=f"场所几何须为点或面，收到 {geom!r}", field="geometry", value=str(geom))
        if geom.is_empty or not geom.is_valid:
            msg = f"site geometry is empty or invalid: {geom.wkt[:200]}"
            raise GeometryError(
                msg,
                message_zh=f"场所几何为空或无效：{geom.wkt[:200]}",
                field="geometry",
                value=geom.wkt[:200],
            )
        minx, miny, maxx, maxy = geom.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            msg = f"site coordinates out of range for longitude/latitude: bounds {geom.bounds}"
            raise CoordinateError(
                msg,
                message_zh=f"场所坐标超出经纬度范围：{geom.bounds}",
                field="geometry",
                value=str(geom.bounds),
            )
        if self.category not in CATEGORIES:
            msg = f"unknown category {self.category!r}; expected one of {sorted(CATEGORIES)}"
            raise InvalidInput(
                msg, message_zh=f"未知的经营类别 {self.category!r}", field="category", value=self.category
            )
        if self.application not in APPLICATIONS:
            msg = f"unknown application {self.application!r}; expected one of {sorted(APPLICATIONS)}"
            raise InvalidInput(
                msg,
                message_zh=f"未知的申请类型 {self.application!r}",
                field="application",
                value=self.application,
            )
        _finite_nonneg(self.accuracy_m, name="accuracy_m")
        if self.crs not in CRS_NAMES:
            msg = f"unknown coordinate system {self.crs!r}; expected one of {sorted(CRS_NAMES)}"
            raise CoordinateError(msg, message_zh=f"未知的坐标系 {self.crs!r}", field="crs", value=self.crs)
        if self.protection_distance_m is not None:
            value = _finite_nonneg(self.protection_distance_m, name="protection_distance_m")
            if value == 0:
                msg = "protection_distance_m must be > 0, got 0"
                raise InvalidInput(msg, message_zh="防护距离须大于0，收到 0", field="protection_distance_m", value=0)

    @property
    def point(self) -> Point:
        """The site's location: the point itself, or a representative point of its footprint."""
        geom = self.geometry
        return geom if geom.geom_type == "Point" else geom.representative_point()


@dataclass(frozen=True)
class DecisionSettings:
    """Settings of the decision: default school accuracy and per-level campus radii (point-only schools)."""

    default_school_accuracy_m: float = 5.0
    campus_radius_m: Mapping[str, float] = field(default_factory=lambda: _DEFAULT_CAMPUS_RADIUS_M)

    def radius_for(self, levels: frozenset[str]) -> float:
        """The campus radius ``R`` of a point-only campus: the largest over its levels, or ``unknown``."""
        keys = sorted(levels) or ["unknown"]
        missing = [k for k in keys if k not in self.campus_radius_m]
        if missing:
            msg = f"campus_radius_m has no value for level(s) {missing}"
            raise InvalidInput(
                msg,
                message_zh=f"campus_radius_m 缺少学段 {missing} 的取值",
                field="campus_radius_m",
                value=missing,
            )
        return max(float(self.campus_radius_m[k]) for k in keys)


@dataclass
class CampusResult:
    """One campus measured for one rule."""

    school_id: int | str
    school_name: str
    campus_id: int | str
    levels: frozenset[str]
    distance_m: float
    margin_m: float
    from_point: Point
    to_point: Point
    method: str
    flags: list[str]
    outcome: Outcome
    path: LineString | None = None
    u_m: float = 0.0
    gate_id: int | str | None = None


@dataclass
class RuleResult:
    """One rule: its distance, outcome, the nearest protected campus and every campus within."""

    rule: Rule
    limit_m: float
    outcome: Outcome
    u: float
    nearest: CampusResult | None
    within: list[CampusResult]
    flags: list[str]


@dataclass
class CheckResult:
    """The answer of a pre-check: the worst outcome over its rules."""

    outcome: Outcome
    rules: list[RuleResult]
    flags: list[str]


def _protects(rule: Rule, campus: CampusInfo) -> bool:
    return not campus.levels or bool(campus.levels & set(rule.levels))


def _limit(rule: Rule, site: Site) -> float:
    if rule.distance_source == "business":
        if site.protection_distance_m is None:
            msg = (
                f"rule {rule.id!r} measures the premises' own protection distance: "
                "protection_distance_m is required, got None"
            )
            raise InvalidInput(
                msg,
                message_zh=f"规则 '{rule.id}' 按场所自身的卫生防护距离判定：须提供 protection_distance_m",
                field="protection_distance_m",
                value=None,
            )
        return float(site.protection_distance_m)
    assert rule.distance_m is not None
    return float(rule.distance_m)


#: a walk's origin (a gate, or the outline point nearest the site), its gate id, and the walk (None: no route)
Walk = tuple[Point, int | str | None, Measurement | None]


def _gates(rule: Rule, campus: CampusInfo) -> list[GateInfo]:
    """The campus's in-use gates, when the rule measures from gates."""
    return [g for g in campus.gates if g.in_use] if rule.measure_from == "gates" else []


def _walks(rule: Rule, site: Site, campuses: Sequence[CampusInfo], network: Any) -> list[list[Walk]]:
    """Per campus, the walks to the site from each of its origins, all found in one network search.

    Walking is door to door: from each in-use gate (or, without one, the outline point nearest the site)
    to the site's point (a footprint's representative point).
    """
    origins: list[list[tuple[Point, int | str | None]]] = []
    for campus in campuses:
        here = [(g.point, g.gate_id) for g in _gates(rule, campus)]
        origins.append(here or [(distance_to_outline(site.point, campus.outline).from_point, None)])
    walked = iter(network.distances_to([p for here in origins for p, _ in here], site.point))
    return [[(p, gate_id, next(walked)) for p, gate_id in here] for here in origins]


def _measure(
    rule: Rule, site: Site, campus: CampusInfo, walks: list[Walk] | None
) -> tuple[Measurement, str, list[str], int | str | None]:
    """Measure as the rule says; returns the measurement, method, flags and the gate used.

    ``walks``: the campus's walks (:func:`_walks`) for a walking rule with a network. A gate the network
    cannot connect to the site counts with its straight distance, which underestimates: flag
    ``network_unavailable``.
    """
    flags: list[str] = []
    target = site.geometry if rule.measure_to == "footprint" else site.point
    gates = _gates(rule, campus)
    if rule.measure_from == "gates" and not gates:
        flags.append("gate_unknown")

    if rule.metric == "walking" and walks is not None:
        best: tuple[Measurement, str, int | str | None] | None = None
        fallback = False
        for point, gate_id, walked in walks:
            if walked is None:
                straight = distance_to_outline(site.point, point)
                candidate, method, is_fallback = (
                    straight,
                    "gates" if gate_id is not None else "boundary",
                    True,
                )
            else:
                candidate, method, is_fallback = walked, "walking", False
            if best is None or candidate.distance_m < best[0].distance_m:
                best, fallback = (candidate, method, gate_id), is_fallback
        assert best is not None
        if fallback:
            flags.append("network_unavailable")
        return best[0], best[1], flags, best[2]

    if rule.metric == "walking":
        flags.append("network_unavailable")
    if gates:
        index, meas = distance_to_gates(target, [g.point for g in gates])
        return meas, "gates", flags, gates[index].gate_id
    return distance_to_outline(target, campus.outline), "boundary", flags, None


def _evaluate_campus(
    rule: Rule, site: Site, campus: CampusInfo, limit: float, walks: list[Walk] | None, settings: DecisionSettings
) -> CampusResult:
    meas, method, flags, gate_id = _measure(rule, site, campus, walks)
    accuracy = settings.default_school_accuracy_m if campus.accuracy_m is None else campus.accuracy_m
    u = uncertainty(site_accuracy_m=site.accuracy_m, school_accuracy_m=accuracy, crs=site.crs)
    radius = None
    if campus.point_only:
        flags.append("school_point_only")
        radius = settings.radius_for(campus.levels)
    if not campus.levels:
        flags.append("level_unknown")
    underestimate = "gate_unknown" in flags or "network_unavailable" in flags
    outcome = classify(meas.distance_m, limit, u, underestimate=underestimate, point_only_radius_m=radius)
    return CampusResult(
        school_id=campus.school_id,
        school_name=campus.school_name,
        campus_id=campus.campus_id,
        levels=campus.levels,
        distance_m=meas.distance_m,
        margin_m=meas.distance_m - limit,
        from_point=meas.from_point,
        to_point=meas.to_point,
        method=method,
        flags=flags,
        outcome=outcome,
        path=meas.path,
        u_m=u,
        gate_id=gate_id,
    )


def _union(lists: Iterable[Iterable[str]]) -> list[str]:
    out: list[str] = []
    for items in lists:
        out.extend(i for i in items if i not in out)
    return out


def evaluate(
    site: Site,
    rules: Sequence[Rule] | RulesInForce,
    campuses: Sequence[CampusInfo],
    *,
    network: Any = None,
    settings: DecisionSettings,
) -> CheckResult:
    """Pre-check one site: every applicable rule × every protected campus.

    Parameters
    ----------
    site
        The proposed site (WGS84), its category, application and date.
    rules
        The rules in force at the site (:meth:`geo.rules.RuleRegistry.in_force`); a
        :class:`~geo.rules.RulesInForce` also passes on its flags (``jurisdiction_unknown``).
    campuses
        Candidate campuses near the site (the caller pre-filters by the largest ``D + u``).
    network
        A :class:`geo.network.WalkingNetwork` for walking rules, or None (flag ``network_unavailable``).
    settings
        Decision settings.

    Returns
    -------
    CheckResult
        The worst outcome over the applicable rules; ``allowed`` with flag ``no_applicable_rule`` when
        no rule concerns this category and application.

    Raises
    ------
    InvalidInput
        ``protection_distance_m`` missing for a rule with ``distance_source: business``.
    """
    base_flags: list[str] = list(rules.flags) if isinstance(rules, RulesInForce) else []
    rule_list = rules.rules if isinstance(rules, RulesInForce) else tuple(rules)
    applicable = [
        r
        for r in rule_list
        if r.category == site.category and site.application in r.applies_to and r.effective_from <= site.on
    ]
    results: list[RuleResult] = []
    for rule in applicable:
        limit = _limit(rule, site)
        protected = [campus for campus in campuses if _protects(rule, campus)]
        walks = (
            _walks(rule, site, protected, network)
            if rule.metric == "walking" and network is not None
            else [None] * len(protected)
        )
        measured = [
            _evaluate_campus(rule, site, campus, limit, walk, settings)
            for campus, walk in zip(protected, walks, strict=True)
        ]
        measured.sort(key=lambda c: (c.distance_m, str(c.campus_id)))
        within = [c for c in measured if c.outcome != "allowed"]
        nearest = measured[0] if measured else None
        shown = within + ([nearest] if nearest is not None and nearest not in within else [])
        results.append(
            RuleResult(
                rule=rule,
                limit_m=limit,
                outcome=worst(c.outcome for c in measured),
                u=nearest.u_m if nearest is not None else 0.0,
                nearest=nearest,
                within=within,
                flags=_union(c.flags for c in shown),
            )
        )
    flags = _union([base_flags, *(r.flags for r in results)])
    if not applicable:
        flags.append("no_applicable_rule")
    return CheckResult(outcome=worst(r.outcome for r in results), rules=results, flags=flags)
