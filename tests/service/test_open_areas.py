""" "Where may a new ⟨category⟩ open" agrees with the pre-check on 1,000 random sites per category.

The demo city (40 schools, seed 5) is loaded through the real importers; in Guilin's 秀峰区 (450302) the
open-areas answer for internet cafés (measured from the campus boundary) and tobacco (measured from the
gates) is compared with ``POST /v1/checks`` — the real API — at 1,000 random points of the district:
inside the allowed area ⇔ ``allowed``, inside a zone (and outside the review band) ⇔ ``prohibited``.
Points inside the review band are counted, not judged: only a pre-check of the exact site answers there.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, shape

from service.demo import load_demo

DISTRICT = "450302"
SEED = 20260523
N_POINTS = 1000


@pytest.fixture
def demo(session_factory, tmp_path):  # noqa: ANN001, ANN201
    load_demo(session_factory, workdir=tmp_path, schools=40, premises=200, seed=5)


def _random_points(district, near, rng: np.random.Generator) -> list[Point]:  # noqa: ANN001
    """Half uniform over the district, half uniform over its part within about D of a zone (still random)."""
    out: list[Point] = []
    for region, n in ((district, N_POINTS // 2), (near, N_POINTS - N_POINTS // 2)):
        x0, y0, x1, y1 = region.bounds
        shapely.prepare(region)
        while n:
            pts = shapely.points(rng.uniform(x0, x1, 4 * n), rng.uniform(y0, y1, 4 * n))
            pts = pts[shapely.contains(region, pts)][:n]
            out.extend(pts)
            n -= len(pts)
    return out


def _agreement(client, headers, category: str) -> dict[str, int]:  # noqa: ANN001
    resp = client.get("/v1/open-areas", params={"category": category, "district": DISTRICT}, headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    by_kind: dict[str, list] = {}
    for f in body["features"]:
        by_kind.setdefault(f["properties"]["kind"], []).append(f)
    assert {"allowed", "zone", "review_band"} <= by_kind.keys()
    allowed = shape(by_kind["allowed"][0]["geometry"])
    band = shape(by_kind["review_band"][0]["geometry"])
    zones = shapely.union_all([shape(f["geometry"]) for f in by_kind["zone"] if f["geometry"]])
    district = allowed.union(band).union(zones)
    reach = max(f["properties"]["distance_m"] for f in by_kind["zone"]) / 111_000  # D, in degrees (roughly)
    near = district.intersection(zones.buffer(reach))
    for g in (allowed, band, zones):
        shapely.prepare(g)

    rng = np.random.default_rng(SEED)
    counts = {"allowed": 0, "prohibited": 0, "band": 0}
    disagreements = []
    for point in _random_points(district, near, rng):
        check = client.post(
            "/v1/checks",
            json={"category": category, "application": "new", "location": {"lon": point.x, "lat": point.y},
                  "crs": "wgs84"},
            headers=headers,
        )  # fmt: skip
        assert check.status_code == 200, check.text
        answer = check.json()
        assert answer["district"] == DISTRICT
        outcome = answer["outcome"]
        if band.contains(point):
            counts["band"] += 1
            continue
        expected = "allowed" if allowed.contains(point) else "prohibited"
        if expected == "prohibited":
            assert zones.contains(point), f"{point.wkt}: in neither the allowed area, a zone nor the band"
        counts[expected] += 1
        if outcome != expected:
            disagreements.append((point.wkt, expected, outcome, [r["nearest"] for r in answer["rules"]]))
    assert not disagreements, disagreements[:5]
    return counts


def test_internet_cafe_open_areas_agree_with_the_pre_check(demo, client, auth) -> None:  # noqa: ANN001
    counts = _agreement(client, auth("market_supervision"), "internet_cafe")
    print(f"\ninternet_cafe in {DISTRICT}: {counts}")
    assert counts["allowed"] > 150 and counts["prohibited"] > 150
    assert counts["band"] < 0.2 * N_POINTS


def test_tobacco_open_areas_measured_from_gates_agree_with_the_pre_check(demo, client, auth) -> None:  # noqa: ANN001
    counts = _agreement(client, auth("tobacco"), "tobacco")
    print(f"\ntobacco (gates) in {DISTRICT}: {counts}")
    assert counts["allowed"] > 150 and counts["prohibited"] > 50
    assert counts["band"] < 0.3 * N_POINTS
