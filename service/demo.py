"""Loading the synthetic demo city through the same importers a city's real data goes through.

The generator (``geo.demo``) writes the city's files — districts, school register with outlines, permit
registry as GCJ-02 CSV (UTF-8 with BOM) and as GBK CSV (BD-09/WGS84), cameras — and each file is
imported like a user's would be. Gates, streets, unlicensed premises and zone assets come in one more
batch. Every step is idempotent: running the demo again adds nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import shapely
from pyproj import Geod
from sqlalchemy.orm import Session, sessionmaker

from geo.demo import generate_city, write_demo_files
from service import importing
from storage import imports as store
from storage.database import session_scope

Progress = Callable[[str], None]
GEOD = Geod(ellps="WGS84")


def geodesic_lengths(lines: np.ndarray) -> np.ndarray:
    """Geodesic (WGS84 ellipsoid) lengths of many LineStrings at once."""
    coords, index = shapely.get_coordinates(lines, return_index=True)
    same = index[1:] == index[:-1]
    _, _, seg = GEOD.inv(coords[:-1, 0], coords[:-1, 1], coords[1:, 0], coords[1:, 1])
    return np.bincount(index[1:][same], weights=np.asarray(seg)[same], minlength=len(lines))


def load_demo(
    factory: sessionmaker[Session],
    *,
    schools: int = 120,
    premises: int = 3000,
    seed: int = 7,
    workdir: Path,
    data_dir: Path | None = None,
    progress: Progress = lambda stage: None,
) -> list[store.ImportSummary]:
    """Generate the demo city into ``workdir`` and import it; returns one summary per import."""
    progress("generating the city")
    city = generate_city(schools=schools, premises=premises, seed=seed)
    paths = write_demo_files(city, workdir)
    opts = importing.ImportOptions(created_by="demo", data_dir=data_dir)
    out = []
    progress("districts")
    out.append(importing.import_districts(factory, paths["districts"], opts))
    progress("schools")
    out.append(importing.import_schools(factory, paths["schools"], opts))
    for key in ("permits_gcj02", "permits_gbk"):
        progress(key.replace("_", " "))
        out.append(importing.import_permits(factory, paths[key], opts))
    progress("cameras")
    out.append(importing.import_cameras(factory, paths["cameras"], opts))
    progress("gates, streets, unlicensed premises, zone assets")
    out.append(_load_extras(factory, city, paths))
    return out


def _load_extras(factory: sessionmaker[Session], city, paths: dict[str, Path]) -> store.ImportSummary:  # noqa: ANN001
    digest = hashlib.sha256()
    for key in ("gates", "streets", "unlicensed", "assets"):
        digest.update(store.file_hash(paths[key]).encode())
    with session_scope(factory) as session:
        earlier = store.find_batch(session, kind="demo", digest=digest.hexdigest())
        summary = store.ImportSummary(kind="demo", source=f"demo city seed {city.seed}")
        if earlier is not None:
            summary.batch_id, summary.already_imported = earlier.id, True
            return summary
        batch = store.begin_batch(session, kind="demo", source=summary.source, digest=digest.hexdigest())
        summary.batch_id = batch.id
        importing.import_gates_frame(session, city.gates, batch_id=batch.id, summary=summary)
        streets = city.streets
        lengths = geodesic_lengths(streets.geometry.to_numpy())
        store.write_streets(
            session,
            (
                (f"demo:{r.u}-{r.v}", int(r.u), int(r.v), float(length), r.highway, r.name, r.geometry)
                for r, length in zip(streets.itertuples(index=False), lengths, strict=True)
            ),
            batch_id=batch.id,
            summary=summary,
        )
        store.write_premises(
            session,
            (
                store.PremisesRecord(
                    premises_ext=f"demo:{r.ref}", name=r.name, address=None, uscc=None,
                    categories=sorted(c for c in str(r.categories).split(";") if c), lon=r.geometry.x,
                    lat=r.geometry.y, footprint=None, protection_distance_m=None, accuracy_m=None, source="demo",
                )
                for r in city.unlicensed.itertuples(index=False)
            ),
            batch_id=batch.id,
            summary=summary,
        )  # fmt: skip
        kinds = {"police": "police_post", "dropoff": "dropoff_lane"}
        store.write_assets(
            session,
            (
                (f"demo:asset:{i}", kinds.get(r.kind, r.kind), r.name, r.geometry, "demo")
                for i, r in enumerate(city.assets.itertuples(index=False))
            ),
            batch_id=batch.id,
            summary=summary,
        )
        store.finish_batch(session, batch, summary)
    return summary
