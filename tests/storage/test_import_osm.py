"""Importing the real Nanjing extract: what a user would check in the store afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyproj import Geod
from shapely import wkb
from sqlalchemy import text

from service.importing import ImportOptions, import_osm

GEOD = Geod(ellps="WGS84")


@pytest.fixture
def imported(session_factory, session, nanjing_osm: Path):  # noqa: ANN001, ANN201
    summary = import_osm(session_factory, nanjing_osm, ImportOptions(created_by="test"))
    return summary


def _schools(session) -> dict[str, list[str]]:  # noqa: ANN001
    rows = session.execute(text("SELECT name, levels FROM schools")).all()
    return {name: list(levels) for name, levels in rows}


def test_not_schools_are_not_imported(imported, session) -> None:  # noqa: ANN001
    names = _schools(session)
    assert "秦淮区委党校" not in names
    assert not [n for n in names if "进修学校" in n]
    assert "南京幼儿高等师范学校" not in names
    assert imported.skipped["not a school: party_school"] == 1
    assert imported.skipped["not a school: teacher_training"] >= 1


def test_kindergarten_level_from_its_name(imported, session) -> None:  # noqa: ANN001
    assert _schools(session)["五老村幼儿园"] == ["kindergarten"]


def test_point_and_polygon_of_one_school_are_one_school(imported, session) -> None:  # noqa: ANN001
    names = _schools(session)
    assert "南京市第五中学" in names
    assert "南京五中" not in names
    (geom_type,) = session.execute(
        text(
            "SELECT GeometryType(c.geom) FROM campuses c JOIN schools s ON s.id = c.school_id "
            "WHERE s.name = '南京市第五中学'"
        )
    ).one()
    assert geom_type in ("POLYGON", "MULTIPOLYGON")


def test_hotel_is_not_an_alcohol_shop_and_ktv_is_entertainment(imported, session) -> None:  # noqa: ANN001
    rows = dict(session.execute(text("SELECT name, categories FROM premises")).all())
    assert "七天连锁酒店" not in rows or "alcohol" not in rows["七天连锁酒店"]
    ktv = [cats for name, cats in rows.items() if "KTV" in (name or "")]
    assert ktv and all(cats == ["entertainment"] for cats in ktv)


def test_named_gates_belong_to_the_nearest_campus(imported, session) -> None:  # noqa: ANN001
    rows = session.execute(
        text(
            """
            SELECT g.name, s.name,
                   ST_Distance(g.geom::geography, ST_Boundary(c.geom)::geography) AS own,
                   (SELECT min(ST_Distance(g.geom::geography, ST_Boundary(o.geom)::geography))
                      FROM campuses o WHERE o.id <> c.id AND GeometryType(o.geom) <> 'POINT') AS other
            FROM gates g JOIN campuses c ON c.id = g.campus_id JOIN schools s ON s.id = c.school_id
            """
        )
    ).all()
    named = {r[0]: r for r in rows if r[0] in ("校门", "北门", "后门")}
    assert set(named) == {"校门", "北门", "后门"}
    for _name, school, own, other in named.values():
        assert school == "金陵中学"
        assert own <= 15.0
        assert other is None or own < other


def test_walking_edges_have_geodesic_lengths(imported, session) -> None:  # noqa: ANN001
    rows = session.execute(text("SELECT length_m, ST_AsBinary(geom), highway FROM street_edges")).all()
    assert 500 < len(rows) < 2000
    for length, geom, highway in rows:
        line = wkb.loads(bytes(geom))
        assert length == pytest.approx(GEOD.geometry_length(line), rel=1e-9)
        assert highway not in (None, "motorway")
    total_km = sum(r[0] for r in rows) / 1000
    assert 60 < total_km < 110


def test_batch_records_licence_and_data_date(imported, session) -> None:  # noqa: ANN001
    batch = session.execute(
        text("SELECT kind, data_date, licence, counts FROM import_batches WHERE id = :b"), {"b": imported.batch_id}
    ).one()
    assert batch.kind == "osm"
    assert batch.data_date == "2021-06-12"
    assert "OpenStreetMap" in batch.licence
    assert batch.counts["added"]["schools"] == len(_schools(session))


def test_same_file_again_adds_nothing(imported, session_factory, session, nanjing_osm: Path) -> None:  # noqa: ANN001
    before = session.execute(text("SELECT (SELECT count(*) FROM schools), (SELECT count(*) FROM street_edges)")).one()
    again = import_osm(session_factory, nanjing_osm, ImportOptions())
    assert again.already_imported and again.batch_id == imported.batch_id
    after = session.execute(text("SELECT (SELECT count(*) FROM schools), (SELECT count(*) FROM street_edges)")).one()
    assert before == after


def test_reimport_of_changed_file_updates_not_duplicates(
    imported, session_factory, session, nanjing_osm: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    import gzip

    changed = tmp_path / "changed.osm"
    data = gzip.decompress(nanjing_osm.read_bytes()).decode()
    changed.write_text(data.replace("五老村幼儿园", "五老村幼儿园（新址）"), encoding="utf-8")
    n_before = session.execute(text("SELECT count(*) FROM schools")).scalar()
    summary = import_osm(session_factory, changed, ImportOptions())
    assert summary.added.get("schools", 0) == 0
    assert summary.updated["schools"] == 1
    assert session.execute(text("SELECT count(*) FROM schools")).scalar() == n_before
    assert "五老村幼儿园（新址）" in _schools(session)


def test_changing_the_yaml_mapping_changes_categories(
    session_factory, session, nanjing_osm: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    import shutil

    from storage.settings import PROJECT_ROOT

    data = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "data" / "mappings", data / "mappings")
    yaml_path = data / "mappings" / "osm_categories.yaml"
    text_yaml = yaml_path.read_text(encoding="utf-8")
    assert "KTV" in text_yaml
    yaml_path.write_text(text_yaml.replace("add: [entertainment]", "add: [bar]"), encoding="utf-8")
    import_osm(session_factory, nanjing_osm, ImportOptions(data_dir=data))
    cats = [c for n, c in session.execute(text("SELECT name, categories FROM premises")).all() if "KTV" in (n or "")]
    assert cats and all("entertainment" not in c for c in cats)
