"""Importing the permit registry: encodings, bad rows rejected whole, skip-invalid, idempotency, grouping."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest
from pyproj import Geod
from sqlalchemy import text

from geo.coords import point_from_wgs84
from geo.uscc import make_uscc
from service.importing import ImportOptions, ImportRejected, import_permits

GEOD = Geod(ellps="WGS84")
LON, LAT = 118.7790, 32.0410  # Nanjing, near 南京市第五中学
HEADER_EN = ["permit_id", "category", "name", "address", "uscc", "lon", "lat", "crs", "issued", "expires", "status"]
HEADER_ZH = [
    "许可证号",
    "许可类别",
    "场所名称",
    "地址",
    "统一社会信用代码",
    "经度",
    "纬度",
    "坐标系",
    "发证日期",
    "有效期至",
    "状态",
]
CODE = make_uscc(division="320104", body8="MA1X2Y3W")


def _rows(crs: str = "wgs84") -> list[list[str]]:
    def at(lon: float, lat: float) -> tuple[str, str]:
        x, y = point_from_wgs84(lon, lat, crs) if crs in ("gcj02", "bd09") else (lon, lat)
        return f"{x:.10f}", f"{y:.10f}"

    shop = at(LON, LAT)
    cafe = at(LON + 0.002, LAT + 0.001)
    return [
        ["XK-001", "烟草制品零售", "便民烟酒店", "中山路1号", CODE, *shop, crs, "2019-05-01", "2027-04-30", "有效"],
        ["XK-002", "酒类零售", "便民烟酒店", "中山路1号", CODE, *shop, crs, "2019/5/1", "", "有效"],
        ["XK-003", "体育彩票", "便民烟酒店", "中山路1号", CODE, *shop, crs, "2020年3月2日", "", "active"],
        ["WB-100", "互联网上网服务营业场所", "星海网吧", "中山路9号", "", *cafe, crs, "20220101", "", "有效"],
    ]


def _csv(path: Path, header: list[str], rows: list[list[str]], encoding: str) -> Path:
    with open(path, "w", newline="", encoding=encoding) as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


def _state(session) -> list[tuple]:  # noqa: ANN001
    return session.execute(
        text(
            """SELECT p.permit_id, p.category, p.issued, p.status, pr.name, round(ST_X(pr.geom)::numeric, 9),
                      round(ST_Y(pr.geom)::numeric, 9)
               FROM permits p JOIN premises pr ON pr.id = p.premises_id ORDER BY p.permit_id"""
        )
    ).all()


@pytest.mark.parametrize("form", ["utf-8", "utf-8-sig", "gbk", "xlsx"])
def test_each_encoding_gives_the_same_store(form: str, tmp_path: Path, session_factory, session) -> None:  # noqa: ANN001
    if form == "xlsx":
        path = tmp_path / "permits.xlsx"
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.append(HEADER_ZH)
        for r in _rows():
            ws.append(r)
        wb.save(path)
    else:
        path = _csv(tmp_path / "permits.csv", HEADER_ZH if form == "gbk" else HEADER_EN, _rows(), form)
    summary = import_permits(session_factory, path, ImportOptions())
    assert summary.added == {"premises": 2, "permits": 4}
    state = _state(session)
    assert [r[0] for r in state] == ["WB-100", "XK-001", "XK-002", "XK-003"]
    assert {r[1] for r in state if r[4] == "便民烟酒店"} == {"tobacco", "alcohol", "lottery"}
    assert str(state[1][2]) == "2019-05-01" and str(state[3][2]) == "2020-03-02"
    assert float(state[1][5]) == pytest.approx(LON, abs=1e-9)


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_shifted_coordinates_land_on_their_wgs84_origin(crs: str, tmp_path: Path, session_factory, session) -> None:  # noqa: ANN001
    path = _csv(tmp_path / "p.csv", HEADER_EN, _rows(crs), "utf-8")
    import_permits(session_factory, path, ImportOptions())
    lon, lat = session.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM premises WHERE name = '便民烟酒店'")).one()
    _, _, dist = GEOD.inv(lon, lat, LON, LAT)
    assert dist < 0.05


def test_three_permits_of_one_store_are_one_premises(tmp_path: Path, session_factory, session) -> None:  # noqa: ANN001
    import_permits(session_factory, _csv(tmp_path / "p.csv", HEADER_EN, _rows(), "utf-8"), ImportOptions())
    n, uscc = session.execute(
        text("SELECT count(*), min(pr.uscc) FROM permits p JOIN premises pr ON pr.id = p.premises_id "
             "WHERE pr.name = '便民烟酒店' GROUP BY pr.id")
    ).one()  # fmt: skip
    assert n == 3 and uscc == CODE


BAD = {
    "bad check digit": (4, CODE[:-1] + ("0" if CODE[-1] != "0" else "1"), "uscc"),
    "missing crs": (7, "", "crs"),
    "swapped": (5, "32.041", "lon"),
    "out of range": (6, "95.5", "lat"),
    "date": (8, "2019-13-45", "issued"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_row_rejects_the_whole_file(case: str, tmp_path: Path, session_factory, session) -> None:  # noqa: ANN001
    col, value, name = BAD[case]
    rows = _rows()
    rows[2][col] = value
    if case == "swapped":
        rows[2][6] = "118.779"
    path = _csv(tmp_path / "p.csv", HEADER_EN, rows, "utf-8")
    before = session.execute(text("SELECT count(*) FROM import_batches")).scalar()
    with pytest.raises(ImportRejected) as info:
        import_permits(session_factory, path, ImportOptions())
    err = info.value.errors[0]
    assert err.row == 4  # header is row 1: the third data row
    assert name in (err.column or "")
    assert _state(session) == []
    assert session.execute(text("SELECT count(*) FROM import_batches")).scalar() == before


def test_duplicate_permit_id_names_both_rows(tmp_path: Path, session_factory, session) -> None:  # noqa: ANN001
    rows = _rows()
    rows[3][0] = "XK-001"
    with pytest.raises(ImportRejected) as info:
        import_permits(session_factory, _csv(tmp_path / "p.csv", HEADER_EN, rows, "utf-8"), ImportOptions())
    assert {e.row for e in info.value.errors} >= {2, 5}
    assert _state(session) == []


def test_file_level_crs_fills_missing_row_crs(tmp_path: Path, session_factory, session) -> None:  # noqa: ANN001
    rows = _rows("gcj02")
    for r in rows:
        r[7] = ""
    import_permits(session_factory, _csv(tmp_path / "p.csv", HEADER_EN, rows, "utf-8"), ImportOptions(crs="gcj02"))
    assert len(_state(session)) == 4


def test_skip_invalid_loads_good_rows_and_writes_rejects(tmp_path: Path, session_factory, session) -> None:  # noqa: ANN001
    rows = _rows()
    rows[3][8] = "not a date"
    rejects = tmp_path / "rejects.csv"
    summary = import_permits(
        session_factory, _csv(tmp_path / "p.csv", HEADER_EN, rows, "utf-8"),
        ImportOptions(skip_invalid=True, rejects_path=rejects),
    )  # fmt: skip
    assert [r[0] for r in _state(session)] == ["XK-001", "XK-002", "XK-003"]
    assert summary.skipped["rows"] == 1
    raw = rejects.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    back = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert len(back) == 1 and back[0]["permit_id"] == "WB-100" and "not a date" in back[0]["error_value"]


def test_same_file_twice_adds_nothing_and_upsert_by_permit_id(tmp_path: Path, session_factory, session) -> None:  # noqa: ANN001
    path = _csv(tmp_path / "p.csv", HEADER_EN, _rows(), "utf-8")
    import_permits(session_factory, path, ImportOptions())
    again = import_permits(session_factory, path, ImportOptions())
    assert again.already_imported
    rows = _rows()
    rows[3][10] = "注销"
    changed = import_permits(session_factory, _csv(tmp_path / "p2.csv", HEADER_EN, rows, "utf-8"), ImportOptions())
    assert changed.added.get("permits", 0) == 0 and changed.updated["permits"] == 1
    state = {r[0]: r[3] for r in _state(session)}
    assert state["WB-100"] == "revoked" and len(state) == 4


def test_every_single_character_change_of_a_code_is_rejected(tmp_path: Path, session_factory) -> None:  # noqa: ANN001
    from geo.uscc import USCC_CHARSET

    rows = []
    for pos in range(18):
        for ch in USCC_CHARSET:
            if ch != CODE[pos]:
                bad = CODE[:pos] + ch + CODE[pos + 1 :]
                rows.append([f"P{pos}-{ch}", "tobacco", "店", "", bad, f"{LON}", f"{LAT}", "wgs84", "", "", ""])
    with pytest.raises(ImportRejected) as info:
        import_permits(session_factory, _csv(tmp_path / "p.csv", HEADER_EN, rows, "utf-8"), ImportOptions())
    assert len({e.row for e in info.value.errors}) == len(rows) == 18 * 30


def test_admin_imports_through_the_api(client, auth, tmp_path: Path, session) -> None:  # noqa: ANN001
    path = _csv(tmp_path / "p.csv", HEADER_EN, _rows(), "utf-8")
    with open(path, "rb") as fh:
        r = client.post("/v1/imports/permits", headers=auth("admin"), files={"file": ("p.csv", fh, "text/csv")})
    assert r.status_code == 200, r.text
    assert r.json()["added"] == {"premises": 2, "permits": 4}
    with open(path, "rb") as fh:
        r = client.post("/v1/imports/permits", headers=auth("market_supervision"), files={"file": ("p.csv", fh)})
    assert r.status_code == 403


def test_api_rejection_is_a_problem_naming_row_column_value(client, auth, tmp_path: Path, session) -> None:  # noqa: ANN001
    rows = _rows()
    rows[1][7] = "mars2000"
    path = _csv(tmp_path / "p.csv", HEADER_EN, rows, "utf-8")
    with open(path, "rb") as fh:
        r = client.post("/v1/imports/permits", headers=auth("admin"), files={"file": ("p.csv", fh, "text/csv")})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["row"] == 3 and body["field"] == "crs" and body["value"] == "mars2000"
    assert body["errors"][0]["reason_zh"]
    assert _state(session) == []


def _estimated_rows(session, table: str) -> float:  # noqa: ANN001
    plan = session.execute(text(f"EXPLAIN (FORMAT JSON) SELECT * FROM {table}")).scalar()
    return plan[0]["Plan"]["Plan Rows"]


def test_an_import_larger_than_the_statistics_know_refreshes_them(tmp_path: Path, session_factory, session) -> None:  # noqa: ANN001
    # a vacuum after a rolled-back import leaves reltuples = 0 over the emptied pages: the planner counts each
    # table as one row and the rest of the import's transaction joins what it wrote in nested loops
    session.execute(
        text(
            "UPDATE pg_class SET reltuples = 0, relpages = greatest(relpages, 1)"
            " WHERE relname IN ('premises', 'permits')"
        )
    )
    assert _estimated_rows(session, "premises") == 1 and _estimated_rows(session, "permits") == 1
    n = 2_000
    rows = [
        [f"TB-{i:05d}", "烟草制品零售", f"烟酒店{i}", "", "", f"{LON + (i % 50) * 0.0003:.6f}",
         f"{LAT + (i // 50) * 0.0003:.6f}", "wgs84", "2020-01-01", "", "有效"]
        for i in range(n)
    ]  # fmt: skip
    summary = import_permits(session_factory, _csv(tmp_path / "big.csv", HEADER_EN, rows, "utf-8"), ImportOptions())
    assert summary.added == {"premises": n, "permits": n}
    assert _estimated_rows(session, "premises") >= n
    assert _estimated_rows(session, "permits") >= n
