"""Bench: an edit's reported findings against the diff of two full scans, on a large city.

    ./run bench edits --db safezone_bench        # the 1M-premises demo city (see bench/checks.py)

In the database named by ``--db`` (a loaded city): a full scan A; then, over the API (in-process, an
``education`` token), the busiest gate of the city is moved to the far corner of its campus and a campus
outline is enlarged by 60 m; each answer lists the findings that appeared, disappeared and changed. A full
scan B follows. The edits' reported sets must equal B − A, A − B and the status changes between them (by
the key premises × permit × rule × campus); the patched scan A must hold what B holds. Prints the times
(edit vs full scan) and the counts, and exits non-zero on any difference. The edits are undone at the end
(a third pair of edits, then a scan).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from fastapi.testclient import TestClient
from geoalchemy2.shape import to_shape
from pyproj import Geod
from shapely import affinity
from shapely.geometry import mapping
from sqlalchemy import select, text

GEOD = Geod(ellps="WGS84")
Key = tuple[int, int | None, str, int]


def _rows(session, scan_id: int) -> dict[Key, tuple[Any, ...]]:  # noqa: ANN001
    rows = session.execute(
        text("SELECT premises_id, permit_id, rule_id, campus_id, status, due_date FROM findings WHERE scan_id = :s"),
        {"s": scan_id},
    ).all()
    return {(r[0], r[1], r[2], r[3]): (r[4], r[5]) for r in rows}


def _reported(answer: dict[str, Any], name: str) -> set[Key]:
    return {
        (p["premises_id"], p["permit_id"], p["rule_id"], p["campus_id"])
        for p in (f["properties"] for f in answer[name])
    }


def main() -> int:  # noqa: PLR0915
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="safezone_bench")
    args = ap.parse_args()
    os.environ["SAFEZONE_DB_NAME"] = args.db
    os.environ.setdefault("SAFEZONE_LOG_LEVEL", "WARNING")
    os.environ["SAFEZONE_STATEMENT_TIMEOUT_MS"] = "3600000"

    from geo.rules import RuleRegistry
    from service.app import create_app
    from service.scanning import run_scan
    from storage.access import create_token
    from storage.database import session_scope
    from storage.models import Campus, Gate

    app = create_app()
    failures = 0
    with TestClient(app) as client:
        factory = app.state.sessionmaker
        with session_scope(factory) as s:
            token, _ = create_token(s, role="education", name="bench-edits", replace=True)
            n_prem = s.scalar(text("SELECT count(*) FROM premises"))
        headers = {"Authorization": f"Bearer {token}"}
        registry = RuleRegistry.load()
        t0 = time.perf_counter()
        scan_a = run_scan(factory, registry, actor="bench")["scan_id"]
        t_scan = time.perf_counter() - t0
        print(f"city: {n_prem} premises; full scan A ({scan_a}): {t_scan:.1f} s")
        with session_scope(factory) as s:
            before = _rows(s, scan_a)
            gate_id, campus_id = s.execute(
                text(
                    "SELECT g.id, g.campus_id FROM gates g JOIN findings f ON f.campus_id = g.campus_id "
                    "AND f.scan_id = :s AND f.method = 'gates' WHERE g.in_use "
                    "GROUP BY g.id, g.campus_id ORDER BY count(*) DESC, g.id LIMIT 1"
                ),
                {"s": scan_a},
            ).one()
            gate = to_shape(s.get(Gate, gate_id).geom)
            outline = to_shape(s.get(Campus, campus_id).geom)
            other = (
                s.execute(
                    select(Campus.id).where(Campus.id != campus_id, Campus.point_only.is_(False)).order_by(Campus.id)
                )
                .scalars()
                .first()
            )
            other_outline = to_shape(s.get(Campus, other).geom)
        ring = outline.exterior if outline.geom_type == "Polygon" else max(outline.geoms, key=lambda p: p.area).exterior
        corner = max(ring.coords, key=lambda xy: GEOD.inv(gate.x, gate.y, xy[0], xy[1])[2])
        grown = affinity.scale(other_outline, 1.0 + 60.0 / 150.0, 1.0 + 60.0 / 150.0)

        answers = []
        edits = (
            (
                "move the busiest gate",
                "put",
                f"/v1/gates/{gate_id}",
                {"location": {"lon": corner[0], "lat": corner[1]}, "crs": "wgs84"},
            ),  # noqa: E501
            ("enlarge an outline", "put", f"/v1/campuses/{other}", {"outline": mapping(grown), "crs": "wgs84"}),
        )
        for what, method, path, body in edits:
            t1 = time.perf_counter()
            r = getattr(client, method)(path, json=body, headers=headers)
            took = time.perf_counter() - t1
            if r.status_code != 200:
                print(f"{what}: HTTP {r.status_code} {r.text[:300]}")
                return 1
            a = r.json()
            answers.append(a)
            print(
                f"{what}: {took * 1000:.0f} ms — appeared {len(a['appeared'])}, disappeared {len(a['disappeared'])}, "
                f"changed {len(a['changed'])}; evaluated {a['evaluated']}"
            )
        t2 = time.perf_counter()
        scan_b = run_scan(factory, registry, actor="bench")["scan_id"]
        print(f"full scan B ({scan_b}): {time.perf_counter() - t2:.1f} s")
        with session_scope(factory) as s:
            after = _rows(s, scan_b)
            patched = _rows(s, scan_a)
        appeared = set().union(*(_reported(a, "appeared") for a in answers))
        disappeared = set().union(*(_reported(a, "disappeared") for a in answers))
        changed = set().union(*(_reported(a, "changed") for a in answers))
        checks = {
            "reported appeared == B − A": appeared - disappeared == after.keys() - before.keys(),
            "reported disappeared == A − B": disappeared - appeared == before.keys() - after.keys(),
            "reported changed == status changes A → B": changed
            == {k for k in after.keys() & before.keys() if after[k] != before[k]},
            "patched A == B": patched == after,
        }
        for name, ok in checks.items():
            print(f"  {'ok  ' if ok else 'FAIL'} {name}")
            failures += not ok
        print(
            f"B − A: {len(after.keys() - before.keys())}, A − B: {len(before.keys() - after.keys())}; "
            f"findings A {len(before)}, B {len(after)}"
        )
        # undo
        client.put(
            f"/v1/gates/{gate_id}", json={"location": {"lon": gate.x, "lat": gate.y}, "crs": "wgs84"}, headers=headers
        )  # noqa: E501
        client.put(f"/v1/campuses/{other}", json={"outline": mapping(other_outline), "crs": "wgs84"}, headers=headers)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
