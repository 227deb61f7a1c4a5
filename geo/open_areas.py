"""Where may a new business of a category open: a district minus every zone (pure shapely).

For each rule in force for the category (and application, on the date) and each campus it protects, the
zone is the campus outline — or, for a ``gates`` rule, its in-use gates (the outline when it has none) —
grown by the rule's distance ``D``. The pre-check (:func:`geo.decide.evaluate`) classifies a site at
distance ``d`` as prohibited when ``d <= D - u``, allowed when ``d > D + u`` (``+ R`` for a school known
only as a point) and review in between, so this module returns, clipped to the district:

* ``zones``: one (multi)polygon per rule, the union of its campus zones at ``D`` (what a map shows);
* ``review_band``: every place some campus puts between ``D - u`` and ``D + u (+ R)`` and no campus
  puts within ``D - u`` — where only a pre-check of the exact site can answer;
* ``allowed``: the district outside every campus's ``D + u (+ R)``.

Fallbacks that underestimate the distance (a ``gates`` rule at a campus with no known gate, measured to
the outline; a ``walking`` rule, drawn here as its straight-line zone) never prove "prohibited": their
whole zone up to ``D + u`` lies in the review band. A walking rule's zone is marked
``approximation="straight_line"`` — the walking zone is smaller, never larger, than the straight one.

Buffers are made in a transverse Mercator frame centred on the district (:class:`LocalMetricFrame`,
never Web Mercator), scaled by the frame's scale factor at each campus. A buffer is a polygon whose
vertices lie on the true circle: the ``D - u`` area is drawn inscribed (every point inside is truly
within) and the ``D + u`` area circumscribed (every point outside is truly beyond), so the polygon
approximation only ever widens the review band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import numpy as np
import shapely
from shapely.geometry import MultiPoint, mapping
from shapely.geometry.base import BaseGeometry

from geo.decide import CampusInfo, DecisionSettings, uncertainty
from geo.errors import GeometryError, InvalidInput
from geo.measure import LocalMetricFrame
from geo.rules import Rule

__all__ = ["OpenAreas", "RuleZone", "open_areas", "rules_for", "search_radius_m"]

QUAD_SEGS: Final = 32
"""Segments per quarter circle of every buffer (chord sag at 200 m: 2.4 cm)."""
_CIRCUMSCRIBE: Final = 1.0 / math.cos(math.pi / (4 * QUAD_SEGS))


@dataclass(frozen=True)
class RuleZone:
    """The union of one rule's zones around every campus it protects, at the rule's distance ``D``."""

    rule: Rule
    distance_m: float
    geometry: BaseGeometry
    campuses: int
    approximation: str | None = None
    """``"straight_line"`` for a walking rule drawn as its straight-line zone."""
    gate_unknown: int = 0
    """How many campuses of a ``gates`` rule have no known in-use gate (zone drawn from the outline)."""


@dataclass(frozen=True)
class OpenAreas:
    """Where a new business of ``category`` may open in one district, and where it may not."""

    category: str
    application: str
    on: date
    district: BaseGeometry
    allowed: BaseGeometry
    review_band: BaseGeometry
    zones: tuple[RuleZone, ...]
    flags: tuple[str, ...]

    def feature_collection(self, *, precision: int = 7) -> dict[str, Any]:
        """GeoJSON: the allowed area, one zone per rule, the review band. No school or business names."""

        def geom(g: BaseGeometry) -> dict[str, Any] | None:
            return None if g.is_empty else dict(mapping(shapely.set_precision(g, 10**-precision)))

        features = [
            {
                "type": "Feature",
                "id": "allowed",
                "geometry": geom(self.allowed),
                "properties": {"kind": "allowed"},
            }
        ]
        for zone in self.zones:
            rule = zone.rule
            features.append(
                {
                    "type": "Feature",
                    "id": f"zone:{rule.id}",
                    "geometry": geom(zone.geometry),
                    "properties": {
                        "kind": "zone",
                        "rule_id": rule.id,
                        "distance_m": zone.distance_m,
                        "measure_from": rule.measure_from,
                        "measure_to": rule.measure_to,
                        "metric": rule.metric,
                        "approximation": zone.approximation,
                        "campuses": zone.campuses,
                        "gate_unknown": zone.gate_unknown,
                        "confirmed": rule.confirmed,
                        "legal_basis": {"text": rule.legal_basis.text, "citation": rule.legal_basis.citation},
                    },
                }
            )
        features.append(
            {
                "type": "Feature",
                "id": "review_band",
                "geometry": geom(self.review_band),
                "properties": {"kind": "review_band"},
            }
        )
        return {"type": "FeatureCollection", "features": features}


def rules_for(rules: Sequence[Rule], *, category: str, application: str, on: date) -> list[Rule]:
    """The rules a pre-check of ``category``/``application`` on ``on`` would apply (as :func:`evaluate`)."""
    return [r for r in rules if r.category == category and application in r.applies_to and r.effective_from <= on]


def search_radius_m(rules: Sequence[Rule], settings: DecisionSettings, *, site_accuracy_m: float = 0.0) -> float:
    """How far from the district a campus can still reach into it (largest ``D + u + R``, plus slack)."""
    largest = max((float(r.distance_m or 0.0) for r in rules), default=0.0)
    radius = max(settings.campus_radius_m.values(), default=0.0)
    return largest + site_accuracy_m + settings.default_school_accuracy_m + radius + 100.0


def open_areas(
    district: BaseGeometry,
    rules: Sequence[Rule],
    campuses: Sequence[CampusInfo],
    *,
    category: str,
    application: str,
    on: date,
    settings: DecisionSettings,
    site_accuracy_m: float = 0.0,
    crs: str = "wgs84",
    protection_distance_m: float | None = None,
) -> OpenAreas:
    """Compute where a new ``category`` may open in ``district``.

    Parameters
    ----------
    district
        The district's boundary (``Polygon``/``MultiPolygon``, WGS84).
    rules
        The rules in force in the district (filtered here by category, application and date).
    campuses
        Every campus that can reach into the district (outline, levels, gates, accuracy).
    category, application, on
        What would open, the kind of application, the date.
    settings
        The decision settings (default school accuracy, point-only campus radii).
    site_accuracy_m, crs
        The accuracy and coordinate system a future site will be given in: part of ``u``.
    protection_distance_m
        A polluter's own protection distance, for rules with ``distance_source: business``.

    Returns
    -------
    OpenAreas

    Raises
    ------
    GeometryError
        The district is not a non-empty polygon.
    InvalidInput
        A rule measures the business's own distance and ``protection_distance_m`` is missing.
    """
    if district.is_empty or district.geom_type not in ("Polygon", "MultiPolygon"):
        msg = f"the district must be a non-empty Polygon or MultiPolygon, got {district.geom_type}"
        raise GeometryError(msg, field="district", value=district.geom_type, message_zh="行政区边界须为非空的面")
    applicable = rules_for(rules, category=category, application=application, on=on)
    centre = district.centroid
    frame = LocalMetricFrame(centre.x, centre.y)
    inner: list[BaseGeometry] = []
    outer: list[BaseGeometry] = []
    zones: list[RuleZone] = []
    flags: set[str] = set()
    for rule in applicable:
        limit = _limit(rule, protection_distance_m)
        walking = rule.metric == "walking"
        parts: list[BaseGeometry] = []
        gate_unknown = 0
        protected = [c for c in campuses if not c.levels or set(c.levels) & set(rule.levels)]
        for campus in protected:
            gates = [g.point for g in campus.gates if g.in_use] if rule.measure_from == "gates" else []
            no_gate = rule.measure_from == "gates" and not gates
            gate_unknown += no_gate
            base = frame.project_geometry(MultiPoint(gates) if gates else campus.outline)
            k = _scale(frame, base)
            accuracy = settings.default_school_accuracy_m if campus.accuracy_m is None else campus.accuracy_m
            u = uncertainty(site_accuracy_m=site_accuracy_m, school_accuracy_m=accuracy, crs=crs)
            radius = settings.radius_for(campus.levels) if campus.point_only else 0.0
            parts.append(base.buffer(limit * k, quad_segs=QUAD_SEGS))
            outer.append(base.buffer((limit + u + radius) * k * _CIRCUMSCRIBE, quad_segs=QUAD_SEGS))
            if not (no_gate or walking) and limit - u > 0:
                inner.append(base.buffer((limit - u) * k, quad_segs=QUAD_SEGS))
            if campus.point_only:
                flags.add("school_point_only")
        if gate_unknown:
            flags.add("gate_unknown")
        if walking:
            flags.add("walking_as_straight_line")
        zones.append(
            RuleZone(
                rule=rule,
                distance_m=limit,
                geometry=shapely.union_all(parts) if parts else shapely.Polygon(),
                campuses=len(protected),
                approximation="straight_line" if walking else None,
                gate_unknown=gate_unknown,
            )
        )
    area = frame.project_geometry(district)
    prohibited = shapely.union_all(inner) if inner else shapely.Polygon()
    reach = shapely.union_all(outer) if outer else shapely.Polygon()

    def back(g: BaseGeometry) -> BaseGeometry:
        clipped = shapely.intersection(g, area)
        return (
            shapely.transform(clipped, lambda xy: frame.unproject(np.asarray(xy))) if not clipped.is_empty else clipped
        )

    if not applicable:
        flags.add("no_applicable_rule")
    return OpenAreas(
        category=category,
        application=application,
        on=on,
        district=district,
        allowed=back(shapely.difference(area, reach)),
        review_band=back(shapely.difference(reach, prohibited)),
        zones=tuple(
            RuleZone(z.rule, z.distance_m, back(z.geometry), z.campuses, z.approximation, z.gate_unknown) for z in zones
        ),  # fmt: skip
        flags=tuple(sorted(flags)),
    )


def _limit(rule: Rule, protection_distance_m: float | None) -> float:
    if rule.distance_m is not None:
        return float(rule.distance_m)
    if protection_distance_m is None or not protection_distance_m > 0:
        msg = f"rule {rule.id!r} measures the business's own protection distance: give protection_distance_m"
        raise InvalidInput(
            msg,
            field="protection_distance_m",
            value=protection_distance_m,
            message_zh=f"规则 '{rule.id}' 按场所自身的卫生防护距离判定：须提供 protection_distance_m",
        )
    return float(protection_distance_m)


def _scale(frame: LocalMetricFrame, base: BaseGeometry) -> float:
    """The frame's scale factor at ``base``: planar metres per metre on the ellipsoid."""
    c = base.centroid
    return 1.0 / float(frame.scale_corrected(np.array([[c.x, c.y]]), np.array([[c.x + 1.0, c.y]]))[0])
