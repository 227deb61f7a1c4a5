"""The demo city goes in through the real importers, lands where it was generated, and loads once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyproj import Geod
from sqlalchemy import text

from geo.demo import generate_city
from service.demo import geodesic_lengths, load_demo

GEOD = Geod(ellps="WGS84")
SIZE = {"schools": 30, "premises": 600, "seed": 3}


@pytest.fixture
def loaded(session_factory, session, tmp_path: Path):  # noqa: ANN001, ANN201
    return load_demo(session_factory, workdir=tmp_path / "demo", **SIZE)


def test_counts_match_the_generated_city(loaded, session) -> None:  # noqa: ANN001
    city = generate_city(**SIZE)
    counts = session.execute(
        text(
            "SELECT (SELECT count(*) FROM districts), (SELECT count(*) FROM campuses), (SELECT count(*) FROM permits),"
            " (SELECT count(*) FROM gates), (SELECT count(*) FROM cameras), (SELECT count(*) FROM street_edges)"
        )
    ).one()
    assert counts == (
        len(city.districts), len(city.schools), len(city.permits), len(city.gates), len(city.cameras),
        len(city.streets),
    )  # fmt: skip


def test_every_school_and_premises_has_a_county(loaded, session) -> None:  # noqa: ANN001
    missing = session.execute(
        text("SELECT (SELECT count(*) FROM schools WHERE district_adcode IS NULL),"
             " (SELECT count(*) FROM premises WHERE district_adcode IS NULL)")
    ).one()  # fmt: skip
    assert missing == (0, 0)
    levels = dict(session.execute(text("SELECT adcode, level FROM districts")).all())
    used = {a for (a,) in session.execute(text("SELECT DISTINCT district_adcode FROM premises"))}
    assert used and all(levels[a] == "county" for a in used)
    assert {a[:2] for a in used} >= {"45", "50", "44"}


def test_shifted_permits_land_on_the_generated_points(loaded, session) -> None:  # noqa: ANN001
    city = generate_city(**SIZE)
    want = city.permits.drop_duplicates("permit_id").set_index("permit_id")[["lon", "lat"]]
    got = session.execute(
        text(
            "SELECT p.permit_id, ST_X(pr.geom), ST_Y(pr.geom) FROM permits p JOIN premises pr ON pr.id = p.premises_id"
        )
    ).all()
    assert len(got) == len(want)
    ids = [g[0] for g in got]
    lon = np.array([g[1] for g in got])
    lat = np.array([g[2] for g in got])
    _, _, d = GEOD.inv(lon, lat, want.loc[ids, "lon"].to_numpy(), want.loc[ids, "lat"].to_numpy())
    # a premises' location is its first permit's; permits of one premises share the point
    assert np.max(d) < 0.05


def test_loading_again_adds_nothing(loaded, session_factory, session, tmp_path: Path) -> None:  # noqa: ANN001
    before = session.execute(
        text("SELECT (SELECT count(*) FROM premises), (SELECT count(*) FROM import_batches)")
    ).one()
    again = load_demo(session_factory, workdir=tmp_path / "demo2", **SIZE)
    assert all(s.already_imported for s in again)
    after = session.execute(text("SELECT (SELECT count(*) FROM premises), (SELECT count(*) FROM import_batches)")).one()
    assert before == after


def test_geodesic_lengths_are_per_line() -> None:
    from shapely import LineString

    lines = np.array(
        [LineString([(110.0, 25.0), (110.001, 25.0)]), LineString([(110, 25), (110, 25.001), (110.001, 25.001)])]
    )
    got = geodesic_lengths(lines)
    assert got[0] == pytest.approx(GEOD.geometry_length(lines[0]), rel=1e-12)
    assert got[1] == pytest.approx(GEOD.geometry_length(lines[1]), rel=1e-12)
