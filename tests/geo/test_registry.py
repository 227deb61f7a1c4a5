"""Reading the registries' files: permits, schools, cameras, districts, the category mapping, rejects."""

from __future__ import annotations

import csv
from datetime import date, datetime, time
from pathlib import Path

import geopandas as gpd
import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import Point, Polygon

from geo.coords import from_wgs84
from geo.errors import CoordinateError, InvalidInput, MappingError
from geo.registry import (
    DEFAULT_PERMIT_MAPPING,
    group_premises,
    load_permit_mapping,
    parse_cameras,
    parse_districts,
    parse_levels,
    parse_permits,
    parse_schools,
    read_table,
    write_rejects,
)
from geo.uscc import validate_uscc

GEOD = Geod(ellps="WGS84")

# Valid unified social credit codes (GB 32100-2015, embedded GB 11714 check digit).
USCC_STORE = "91320102MA1N2B3C89"
USCC_DYE = "913201023024385182"
USCC_CAFE = "91320102MA1W7Q8R9A"

EN = [
    "permit_id",
    "category",
    "name",
    "address",
    "uscc",
    "lon",
    "lat",
    "crs",
    "issued",
    "expires",
    "status",
    "protection_distance_m",
    "footprint",
    "accuracy_m",
]
ZH = [
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
    "卫生防护距离",
    "经营范围坐标",
    "定位精度",
]
DYE_FOOTPRINT = "POLYGON ((118.79 32.05, 118.791 32.05, 118.791 32.051, 118.79 32.051, 118.79 32.05))"
BOW_TIE = "POLYGON ((118.78 32.04, 118.781 32.041, 118.781 32.04, 118.78 32.041, 118.78 32.04))"

# A convenience store with three permits, an internet café and a dye works with its own distance.
# Dates are written differently per row; the XLSX variant holds them as real date cells.
PERMITS = [
    ["TOB-001", "烟草专卖零售许可证", "苏果便利店", "中山路1号", USCC_STORE, "118.78", "32.04", "wgs84",
     "2021-03-01", "2026/2/28", "有效", "", "", "5"],
    ["ALC-001", "酒类商品零售", "苏果便利店", "中山路1号", USCC_STORE, "118.78001", "32.04001", "WGS84",
     "2021/3/1", "2024.2.29", "正常", "", "", ""],
    ["LOT-001", "福利彩票", "苏果便利店", "中山路1号", USCC_STORE, "118.78", "32.04002", "wgs84",
     "2021年3月1日", "20251231", "", "", "", "2.5"],
    ["NET-001", "网吧", "极速网咖", "汉中路2号", USCC_CAFE, "118.7712", "32.0431", "cgcs2000",
     "20200115", "", "暂停", "", "", "10"],
    ["EIA-001", "排污许可", "新街口印染厂", "", USCC_DYE, "118.7905", "32.0505", "wgs84",
     "2019-07-01", "2029-06-30", "active", "300", DYE_FOOTPRINT, "0"],
]  # fmt: skip
DATE_COLUMNS = {8, 9}


def _write_csv(path: Path, header: list[str], rows: list[list[str]], *, encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _xlsx_cell(index: int, text: str) -> object:
    """What a registry clerk's workbook holds: real dates and numbers, text elsewhere."""
    if not text:
        return None
    if index in DATE_COLUMNS:
        return datetime.combine(read_date(text), time())
    if index in {5, 6, 11, 13}:
        return float(text)
    return text


def read_date(text: str) -> date:
    for sep in "-/.":
        if sep in text:
            y, m, d = (int(x) for x in text.split(sep))
            return date(y, m, d)
    if "年" in text:
        y, rest = text.split("年")
        m, rest = rest.split("月")
        return date(int(y), int(m), int(rest.rstrip("日")))
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def _write_xlsx(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append([_xlsx_cell(i, text) for i, text in enumerate(row)])
    workbook.save(path)
    return path


def _problems(table) -> set[tuple[int, str | None, str | None]]:
    return {(e.row, e.column, e.value) for e in table.errors}


def _permit_file(tmp_path: Path, rows: list[list[str]], name: str = "permits.csv") -> Path:
    return _write_csv(tmp_path / name, EN, rows)


def _good(**changes: str) -> list[str]:
    row = dict(zip(EN, PERMITS[0], strict=True))
    row.update(changes)
    return [row[c] for c in EN]


# --------------------------------------------------------------------------------------------------
# Encodings and formats
# --------------------------------------------------------------------------------------------------


def test_same_rows_in_utf8_bom_gbk_and_xlsx_parse_identically(tmp_path: Path) -> None:
    files = {
        "utf-8": _write_csv(tmp_path / "en.csv", EN, PERMITS),
        "utf-8-sig": _write_csv(tmp_path / "bom.csv", ZH, PERMITS, encoding="utf-8-sig"),
        "gbk": _write_csv(tmp_path / "gbk.csv", ZH, PERMITS, encoding="gbk"),
        "xlsx": _write_xlsx(tmp_path / "clerk.xlsx", ZH, PERMITS),
    }
    tables = {enc: parse_permits(path) for enc, path in files.items()}
    for encoding, table in tables.items():
        assert table.encoding == encoding
        assert table.errors == []
        assert table.total_rows == len(PERMITS)
    reference = tables["utf-8"].rows
    assert [p.permit_id for p in reference] == ["TOB-001", "ALC-001", "LOT-001", "NET-001", "EIA-001"]
    for encoding, table in tables.items():
        assert table.rows == reference, encoding

    by_id = {p.permit_id: p for p in reference}
    store = by_id["TOB-001"]
    assert (store.category, store.name, store.uscc, store.status) == (
        "tobacco",
        "苏果便利店",
        USCC_STORE,
        "active",
    )
    assert (store.issued, store.expires, store.accuracy_m) == (date(2021, 3, 1), date(2026, 2, 28), 5.0)
    assert by_id["ALC-001"].category == "alcohol"
    assert by_id["ALC-001"].expires == date(2024, 2, 29)
    assert by_id["LOT-001"].category == "lottery"
    assert by_id["LOT-001"].expires == date(2025, 12, 31)
    assert by_id["LOT-001"].status == "active"  # default
    cafe = by_id["NET-001"]
    assert (cafe.category, cafe.status, cafe.issued, cafe.expires) == (
        "internet_cafe",
        "suspended",
        date(2020, 1, 15),
        None,
    )
    dye = by_id["EIA-001"]
    assert (dye.category, dye.protection_distance_m, dye.address) == ("polluter", 300.0, None)
    assert isinstance(dye.footprint, Polygon)
    assert dye.footprint.contains(Point(118.7905, 32.0505))
    assert store.footprint is None
    # source_rows keep the raw cells as written, for rejects
    assert tables["gbk"].source_rows[2]["许可类别"] == "烟草专卖零售许可证"


def test_read_table_reports_encoding_and_keeps_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes("许可证号,场所名称\nA,甲\n,\nB,乙\n\n".encode("gbk"))
    header, rows, encoding = read_table(path)
    assert (header, encoding) == (["许可证号", "场所名称"], "gbk")
    # the blank record stays so that rows[i] is spreadsheet row i + 2; trailing blanks go
    assert rows == [
        {"许可证号": "A", "场所名称": "甲"},
        {"许可证号": "", "场所名称": ""},
        {"许可证号": "B", "场所名称": "乙"},
    ]


@pytest.mark.parametrize("content", [b"", "许可证号,许可类别,场所名称,经度,纬度\n".encode(), b"\xef\xbb\xbf\r\n"])
def test_empty_and_header_only_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "registry_2024.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match="no data rows") as info:
        parse_permits(path, crs="wgs84")
    assert "registry_2024.csv" in info.value.message_en
    assert "没有数据行" in info.value.message_zh


def test_header_only_xlsx_is_refused(tmp_path: Path) -> None:
    path = _write_xlsx(tmp_path / "empty.xlsx", ZH, [])
    with pytest.raises(InvalidInput, match="no data rows"):
        parse_permits(path)


def test_missing_required_column_is_named_in_both_languages(tmp_path: Path) -> None:
    header = [h for h in ZH if h != "纬度"]
    rows = [[c for h, c in zip(ZH, row, strict=True) if h != "纬度"] for row in PERMITS]
    with pytest.raises(InvalidInput) as info:
        parse_permits(_write_csv(tmp_path / "p.csv", header, rows))
    assert "'lat'" in info.value.message_en
    assert "纬度" in info.value.message_zh


def test_unknown_extension_and_unknown_columns(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"\.dbf"):
        parse_permits(tmp_path / "permits.dbf")
    # an unknown column is ignored; header names match case-insensitively
    path = _write_csv(tmp_path / "p.csv", [h.upper() for h in EN] + ["备注"], [PERMITS[0] + ["老店"]])
    table = parse_permits(path)
    assert [p.permit_id for p in table.rows] == ["TOB-001"]


# --------------------------------------------------------------------------------------------------
# Bad rows
# --------------------------------------------------------------------------------------------------


def test_each_bad_row_yields_exactly_its_error(tmp_path: Path) -> None:
    bad_uscc = USCC_STORE[:-1] + ("8" if USCC_STORE[-1] != "8" else "7")
    rows = [
        _good(),  # row 2: fine
        _good(permit_id="B-03", uscc=bad_uscc),  # row 3
        _good(permit_id="B-04", crs=""),  # row 4: no crs, no file-level crs
        _good(permit_id="B-05", lon="32.04", lat="118.78"),  # row 5: swapped
        _good(permit_id="B-06", lon="218.78"),  # row 6: out of range
        _good(permit_id="B-07", lon="nan"),  # row 7: NaN
        _good(permit_id="B-08", issued="2021-13-45"),  # row 8: no such date
        _good(permit_id="DUP-1"),  # row 9
        _good(permit_id="B-10", category="洗浴中心"),  # row 10: unknown category
        _good(permit_id="DUP-1"),  # row 11: duplicate of row 9
        _good(permit_id="B-12", footprint=BOW_TIE),  # row 12: self-intersecting
        _good(permit_id="B-13", issued="2022-01-01", expires="2021-12-31"),  # row 13
        _good(permit_id="B-14", status="营业中"),  # row 14
        _good(permit_id="B-15", accuracy_m="-3"),  # row 15
        _good(permit_id="B-16", name=""),  # row 16
        _good(permit_id="B-17", footprint="POLYGON ((118.78 32.04, 118.79"),  # row 17
    ]
    table = parse_permits(_permit_file(tmp_path, rows))
    assert [p.row for p in table.rows] == [2]
    assert table.total_rows == 16
    assert _problems(table) == {
        (3, "uscc", bad_uscc),
        (4, "crs", ""),
        (5, "lon/lat", "32.04,118.78"),
        (6, "lon/lat", "218.78,32.04"),
        (7, "lon/lat", "nan,32.04"),
        (8, "issued", "2021-13-45"),
        (9, "permit_id", "DUP-1"),
        (10, "category", "洗浴中心"),
        (11, "permit_id", "DUP-1"),
        (12, "footprint", BOW_TIE),
        (13, "expires", "2021-12-31"),
        (14, "status", "营业中"),
        (15, "accuracy_m", "-3"),
        (16, "name", ""),
        (17, "footprint", "POLYGON ((118.78 32.04, 118.79"),
    }
    assert len(table.errors) == 15  # exactly one per bad row
    reasons = {e.row: e for e in table.errors if e.row != 11}
    with pytest.raises(InvalidInput) as info:
        validate_uscc(bad_uscc)
    assert reasons[3].reason_en == info.value.message_en
    assert "swap" in reasons[5].reason_en.lower()
    assert "2021-13-45" in reasons[8].reason_en and "2021-13-45" in reasons[8].reason_zh
    assert "rows 9, 11" in reasons[9].reason_en
    assert "洗浴中心" in reasons[10].reason_zh
    assert "self-intersection" in reasons[12].reason_en.lower()
    assert "营业中" in reasons[14].reason_zh
    assert all(e.reason_zh and e.reason_zh != e.reason_en for e in table.errors)


def test_missing_crs_is_fixed_by_the_file_level_crs(tmp_path: Path) -> None:
    path = _permit_file(tmp_path, [_good(), _good(permit_id="NO-CRS", crs="")])
    assert _problems(parse_permits(path)) == {(3, "crs", "")}
    table = parse_permits(path, crs="wgs84")
    assert table.errors == []
    assert [p.permit_id for p in table.rows] == ["TOB-001", "NO-CRS"]
    # a row's own crs wins over the file-level one
    gcj = parse_permits(path, crs="gcj02").rows
    assert gcj[0].lon == table.rows[0].lon
    assert abs(gcj[1].lon - table.rows[1].lon) > 0.003


def test_unknown_crs_cell_and_option(tmp_path: Path) -> None:
    table = parse_permits(_permit_file(tmp_path, [_good(crs="mars")]))
    assert _problems(table) == {(2, "crs", "mars")}
    assert "mars" in table.errors[0].reason_en
    with pytest.raises(CoordinateError):
        parse_permits(_permit_file(tmp_path, [_good()]), crs="EPSG:3857x")


def test_gcj02_row_lands_on_its_wgs84_original(tmp_path: Path) -> None:
    lon, lat = 118.78312, 32.04175
    glon, glat = from_wgs84(lon, lat, "gcj02")
    blon, blat = from_wgs84(lon, lat, "bd09")
    rows = [
        _good(permit_id="G", lon=repr(float(glon)), lat=repr(float(glat)), crs="火星坐标"),
        _good(permit_id="B", lon=repr(float(blon)), lat=repr(float(blat)), crs="百度"),
    ]
    table = parse_permits(_permit_file(tmp_path, rows))
    assert table.errors == []
    for permit in table.rows:
        _, _, metres = GEOD.inv(lon, lat, permit.lon, permit.lat)
        assert metres < 0.05, permit.permit_id
    # the raw input is 480-1,200 m away: converting mattered
    _, _, shift = GEOD.inv(lon, lat, glon, glat)
    assert shift > 300


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    points=st.lists(
        st.tuples(st.floats(min_value=100.0, max_value=122.0), st.floats(min_value=22.0, max_value=42.0)),
        min_size=1,
        max_size=5,
    )
)
def test_gcj02_rows_round_trip_anywhere_in_china(tmp_path: Path, points: list[tuple[float, float]]) -> None:
    rows = []
    for i, (lon, lat) in enumerate(points):
        glon, glat = from_wgs84(lon, lat, "gcj02")
        rows.append(_good(permit_id=f"G{i}", lon=repr(float(glon)), lat=repr(float(glat)), crs="gcj02"))
    table = parse_permits(_permit_file(tmp_path, rows, name="gcj.csv"))
    assert table.errors == []
    for (lon, lat), permit in zip(points, table.rows, strict=True):
        _, _, metres = GEOD.inv(lon, lat, permit.lon, permit.lat)
        assert metres < 0.05


def test_gcj02_footprint_is_converted_too(tmp_path: Path) -> None:
    ring = [(118.79, 32.05), (118.791, 32.05), (118.791, 32.051), (118.79, 32.051)]
    gcj_ring = [tuple(float(v) for v in from_wgs84(x, y, "gcj02")) for x, y in ring]
    wkt = Polygon(gcj_ring).wkt
    lon, lat = (float(v) for v in from_wgs84(118.7905, 32.0505, "gcj02"))
    row = _good(permit_id="EIA-G", category="排污许可", lon=repr(lon), lat=repr(lat), crs="gcj02", footprint=wkt)
    (permit,) = parse_permits(_permit_file(tmp_path, [row])).rows
    assert permit.footprint.contains(Point(permit.lon, permit.lat))
    assert Polygon(ring).symmetric_difference(permit.footprint).area < 1e-12


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-06-12", date(2021, 6, 12)),
        ("2021/6/2", date(2021, 6, 2)),
        ("2021.6.2", date(2021, 6, 2)),
        ("2021年6月2日", date(2021, 6, 2)),
        ("20210612", date(2021, 6, 12)),
        ("2021-06-12T00:00:00", date(2021, 6, 12)),
        ("2021-06-12 08:30:00", date(2021, 6, 12)),
    ],
)
def test_date_formats(tmp_path: Path, text: str, expected: date) -> None:
    (permit,) = parse_permits(_permit_file(tmp_path, [_good(issued=text, expires="")])).rows
    assert permit.issued == expected


@pytest.mark.parametrize("text", ["2021-02-30", "12/06/2021", "2021-6/2", "昨天", "202106"])
def test_unparseable_dates_are_row_errors(tmp_path: Path, text: str) -> None:
    table = parse_permits(_permit_file(tmp_path, [_good(issued=text, expires="")]))
    assert _problems(table) == {(2, "issued", text)}


# --------------------------------------------------------------------------------------------------
# Premises
# --------------------------------------------------------------------------------------------------


def test_three_permits_of_one_convenience_store_are_one_premises(tmp_path: Path) -> None:
    table = parse_permits(_permit_file(tmp_path, PERMITS))
    groups, errors = group_premises(table.rows)
    assert errors == []
    assert len(groups) == 3
    store = groups[0]
    assert [p.permit_id for p in store.permits] == ["TOB-001", "ALC-001", "LOT-001"]
    assert store.categories == {"tobacco", "alcohol", "lottery"}
    assert (store.name, store.address, store.uscc) == ("苏果便利店", "中山路1号", USCC_STORE)
    assert (store.lon, store.lat) == (table.rows[0].lon, table.rows[0].lat)  # the first row's location
    dye = groups[2]
    assert dye.footprint is not None and dye.categories == {"polluter"}


def test_premises_key_fallbacks_and_outliers(tmp_path: Path) -> None:
    header = [*EN, "premises_id"]
    rows = [
        _good(permit_id="A1", uscc="") + ["SHOP-9"],
        _good(permit_id="A2", uscc="", name="苏果超市", address="中山路1号B") + ["SHOP-9"],  # same id
        _good(permit_id="N1", uscc="", name="老王烟酒", address="太平南路5号") + [""],
        _good(permit_id="N2", uscc="", name="老王 烟酒", address="太平南路5号", category="酒类零售") + [""],
        # same name + address 101 m north of N1: an outlier, not a second location
        _good(permit_id="N3", uscc="", name="老王烟酒", address="太平南路5号", lat=repr(32.04 + 101 / 110_900)) + [""],
    ]
    table = parse_permits(_write_csv(tmp_path / "p.csv", header, rows))
    assert table.errors == []
    groups, errors = group_premises(table.rows)
    assert [[p.permit_id for p in g.permits] for g in groups] == [["A1", "A2"], ["N1", "N2"]]
    assert [(e.row, e.column) for e in errors] == [(6, None)]
    assert "N3" in errors[0].reason_en and "30" in errors[0].reason_en
    # 99 m is within a 100 m spread, 101 m is not
    groups, errors = group_premises(table.rows, max_spread_m=100)
    assert len(groups[1].permits) == 2 and len(errors) == 1
    groups, errors = group_premises(table.rows, max_spread_m=102)
    assert len(groups[1].permits) == 3 and errors == []


# --------------------------------------------------------------------------------------------------
# Rejects
# --------------------------------------------------------------------------------------------------


def test_write_rejects_rereads_with_reasons(tmp_path: Path) -> None:
    rows = [
        PERMITS[0],
        [*PERMITS[1][:1], "洗浴中心", *PERMITS[1][2:]],
        [*PERMITS[2][:6], "32.04", "", *PERMITS[2][8:]],
    ]
    rows[2][5] = "nan"
    table = parse_permits(_write_csv(tmp_path / "p.csv", ZH, rows, encoding="gbk"))
    out = tmp_path / "rejects.csv"
    assert write_rejects(table, out) == 2
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # opens in Excel in China
    with out.open(encoding="utf-8-sig", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert [r["error_row"] for r in records] == ["3", "4"]
    assert records[0]["许可证号"] == "ALC-001" and records[0]["error_column"] == "许可类别"
    assert records[0]["error_value"] == "洗浴中心"
    assert "unknown permit category" in records[0]["error_reason"]
    assert "洗浴中心" in records[0]["原因"]
    # row 4 has two problems, joined on one line
    assert records[1]["error_column"].split("; ") == ["经度/纬度", "坐标系"]
    # the rejects file reads back as a registry (error columns ignored) once corrected
    header, raw, encoding = read_table(out)
    assert encoding == "utf-8-sig" and header[: len(ZH)] == ZH and len(raw) == 2


# --------------------------------------------------------------------------------------------------
# Category mapping
# --------------------------------------------------------------------------------------------------


def test_mapping_covers_the_registry_strings() -> None:
    mapping = load_permit_mapping()
    expected = {
        "互联网上网服务营业场所": "internet_cafe",
        "网吧": "internet_cafe",
        "娱乐场所": "entertainment",
        "歌舞娱乐": "entertainment",
        "游艺娱乐": "entertainment",
        "酒吧": "bar",
        "彩票": "lottery",
        "福利彩票": "lottery",
        "体育彩票": "lottery",
        "烟草专卖零售许可证": "tobacco",
        "烟草制品零售": "tobacco",
        "电子烟": "tobacco",
        "酒类零售": "alcohol",
        "酒类商品零售": "alcohol",
        "食品摊贩": "food_stall",
        "流动摊点": "food_stall",
        "排污许可": "polluter",
        "危险化学品经营许可证": "hazardous",
        "烟花爆竹经营": "hazardous",
        "烟花爆竹经营(零售)许可证": "hazardous",  # half-width brackets match the full-width entry
        " 网 吧 ": "internet_cafe",
        "BAR": "bar",
        "polluter": "polluter",
    }
    assert {text: mapping.category(text) for text in expected} == expected
    assert mapping.category("酒店") is None  # a hotel is not a bar
    assert mapping.category("洗浴中心") is None


def test_changing_only_the_yaml_changes_a_rows_category(tmp_path: Path) -> None:
    path = _permit_file(tmp_path, [PERMITS[1]])
    assert parse_permits(path).rows[0].category == "alcohol"
    text = DEFAULT_PERMIT_MAPPING.read_text(encoding="utf-8")
    edited = text.replace("    - 酒类商品零售\n", "").replace("  other:\n", "  other:\n    - 酒类商品零售\n")
    assert edited != text
    custom = tmp_path / "permit_categories.yaml"
    custom.write_text(edited, encoding="utf-8")
    assert parse_permits(path, mapping=load_permit_mapping(custom)).rows[0].category == "other"


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("version: 1\ncategories:\n  casino: [赌场]\n", "categories.casino"),
        ("version: 1\ncategories:\n  bar: [酒吧]\n  alcohol: [酒吧]\n", "categories.alcohol"),
        ("version: 1\ncategory: {}\n", "categories"),
        ("version: [\n", "file"),
    ],
)
def test_bad_mapping_names_file_and_field(tmp_path: Path, yaml_text: str, field: str) -> None:
    path = tmp_path / "broken_mapping.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_permit_mapping(path)
    assert info.value.field == field
    assert "broken_mapping.yaml" in info.value.message_en


# --------------------------------------------------------------------------------------------------
# Schools
# --------------------------------------------------------------------------------------------------

SCHOOL_ZH = ["学校标识码", "学校名称", "学段", "校区", "经度", "纬度", "坐标系", "学生数", "门禁", "到校时间",
             "放学时间", "是否有证"]  # fmt: skip


def test_school_register_csv_with_chinese_levels(tmp_path: Path) -> None:
    rows = [
        ["S01", "游府西街小学", "小学", "", "118.7840", "32.0402", "wgs84", "1,200", "是", "7:50", "16:30", ""],  # noqa: E501
        ["S02", "南京市第一中学", "初中；高中", "本部", "118.7810", "32.0320", "gcj02", "2400", "", "", "", ""],  # noqa: E501
        ["S03", "金陵中学", "完全中学、中职", "河西校区", "118.7300", "32.0100", "wgs84", "", "", "", "", ""],
        ["S04", "琅琊路小学", "九年一贯制", "", "118.7700", "32.0600", "wgs84", "", "", "", "", ""],
        ["S05", "小蜜蜂看护点", "幼儿园", "", "118.7755", "32.0455", "wgs84", "", "否", "", "", "否"],
        ["S06", "某学校", "", "", "118.7700", "32.0500", "wgs84", "", "", "", "", ""],
        ["S07", "南京大学", "大学", "", "118.7800", "32.0550", "wgs84", "", "", "", "", ""],
        ["S08", "某小学", "小学", "", "118.7800", "32.0550", "wgs84", "-5", "也许", "25:00", "", ""],
    ]  # fmt: skip
    table = parse_schools(_write_csv(tmp_path / "schools.csv", SCHOOL_ZH, rows, encoding="gbk"))
    schools = {s.name: s for s in table.rows}
    assert schools["游府西街小学"].levels == {"primary"}
    assert schools["游府西街小学"].students == 1200
    assert schools["游府西街小学"].access_control is True
    assert (schools["游府西街小学"].arrival, schools["游府西街小学"].dismissal) == (time(7, 50), time(16, 30))
    assert schools["游府西街小学"].campus == "主校区"
    assert schools["游府西街小学"].point_only and schools["游府西街小学"].geometry == Point(118.784, 32.0402)
    assert schools["南京市第一中学"].levels == {"junior", "senior"}
    _, _, moved = GEOD.inv(118.781, 32.032, schools["南京市第一中学"].geometry.x, schools["南京市第一中学"].geometry.y)
    assert 300 < moved < 700  # GCJ-02 converted on entry
    assert schools["金陵中学"].levels == {"junior", "senior", "vocational"}
    assert schools["琅琊路小学"].levels == {"primary", "junior"}
    kindergarten = schools["小蜜蜂看护点"]
    assert kindergarten.levels == {"kindergarten"} and kindergarten.licensed is False
    assert kindergarten.access_control is False
    assert schools["某学校"].levels == frozenset()  # unknown level: protected by every rule
    assert _problems(table) == {
        (8, "学段", "大学"),
        (9, "学生数", "-5"),
        (9, "门禁", "也许"),
        (9, "到校时间", "25:00"),
    }


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("nine_year", {"primary", "junior"}),
        ("complete", {"junior", "senior"}),
        ("kindergarten;primary", {"kindergarten", "primary"}),
        ("特教, 中职", {"special", "vocational"}),
        ("", set()),
    ],
)
def test_parse_levels(text: str, levels: set[str]) -> None:
    assert parse_levels(text) == levels


def _outline(lon: float, lat: float, size: float = 0.002) -> Polygon:
    return Polygon([(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size)])


def test_school_geojson_with_outlines(tmp_path: Path) -> None:
    bow_tie = Polygon([(118.78, 32.04), (118.782, 32.042), (118.782, 32.04), (118.78, 32.042)])
    frame = gpd.GeoDataFrame(
        {
            "school_id": ["S1", "S2", "S3"],
            "name": ["游府西街小学", "新街口幼儿园", "坏轮廓中学"],
            "level": ["primary", "幼儿园", "初中"],
            "students": [1200, None, 800],
            "geometry": [_outline(118.784, 32.040), Point(118.7755, 32.0455), bow_tie],
        },
        crs="EPSG:4326",
    )
    path = tmp_path / "schools.geojson"
    frame.to_file(path, driver="GeoJSON")
    table = parse_schools(path)
    assert [s.school_id for s in table.rows] == ["S1", "S2"]
    s1, s2 = table.rows
    assert s1.geometry.equals(_outline(118.784, 32.040)) and not s1.point_only
    assert s1.students == 1200 and s1.levels == {"primary"}
    assert s2.point_only and s2.levels == {"kindergarten"}
    (error,) = table.errors
    assert (error.row, error.column) == (3, "geometry")
    assert "self-intersection" in error.reason_en.lower()

    # the same outlines in GCJ-02 need crs= (GeoJSON itself always says WGS84)
    gcj = frame.iloc[:1].copy()
    gcj["geometry"] = [Polygon([tuple(float(v) for v in from_wgs84(x, y, "gcj02")) for x, y in
                                _outline(118.784, 32.040).exterior.coords])]  # fmt: skip
    gcj_path = tmp_path / "schools_gcj.geojson"
    gcj.to_file(gcj_path, driver="GeoJSON")
    (campus,) = parse_schools(gcj_path, crs="gcj02").rows
    assert campus.geometry.symmetric_difference(_outline(118.784, 32.040)).area < 1e-12


def test_school_geopackage_without_crs_is_refused(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"school_id": ["S1"], "name": ["甲"], "geometry": [_outline(118.78, 32.04)]})
    path = tmp_path / "schools.gpkg"
    with pytest.warns(UserWarning, match="crs"):
        frame.to_file(path, driver="GPKG")
    with pytest.raises(CoordinateError, match="no coordinate system"):
        parse_schools(path)
    (school,) = parse_schools(path, crs="cgcs2000").rows
    assert school.geometry.equals(_outline(118.78, 32.04))


# --------------------------------------------------------------------------------------------------
# Cameras and districts
# --------------------------------------------------------------------------------------------------


def test_cameras(tmp_path: Path) -> None:
    header = ["摄像头编号", "名称", "经度", "纬度", "朝向", "视场角", "监控距离"]
    rows = [
        ["C1", "游府西街小学南门", "118.784", "32.040", "180", "90", "60"],
        ["C2", "", "118.784", "32.040", "400", "0", "-5"],
        ["C3", "", "118.784", "32.040", "0", "360", ""],
    ]
    table = parse_cameras(_write_csv(tmp_path / "cameras.csv", header, rows), crs="wgs84")
    (camera,) = table.rows
    assert (camera.camera_id, camera.direction_deg, camera.fov_deg, camera.range_m) == (
        "C1",
        180.0,
        90.0,
        60.0,
    )
    assert _problems(table) == {
        (3, "朝向", "400"),
        (3, "视场角", "0"),
        (3, "监控距离", "-5"),
        (4, "监控距离", ""),
    }


def test_districts_geojson(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {
            "adcode": ["320100", "320102", "3201", "320104"],
            "name": ["南京市", "玄武区", "坏代码", "秦淮区"],
            "level": ["市", "county", "区县", "镇"],
            "parent": ["320000", "320100", "320100", "320100"],
            "geometry": [
                _outline(118.3, 31.2, 1.0),
                _outline(118.78, 32.04, 0.1),
                _outline(118.7, 32.0, 0.1),
                _outline(118.77, 31.98, 0.1),
            ],
        },  # fmt: skip
        crs="EPSG:4490",
    )
    path = tmp_path / "districts.geojson"
    frame.to_file(path, driver="GeoJSON")
    table = parse_districts(path)
    assert [(d.adcode, d.level, d.parent) for d in table.rows] == [
        ("320100", "city", "320000"),
        ("320102", "county", "320100"),
    ]
    assert table.rows[1].geometry.contains(Point(118.784, 32.09))
    assert _problems(table) == {(3, "adcode", "3201"), (4, "level", "镇")}

    projected = tmp_path / "districts_3857.gpkg"
    frame.iloc[:2].to_crs(3857).to_file(projected, driver="GPKG")
    with pytest.raises(InvalidInput, match="EPSG:4326 or EPSG:4490"):
        parse_districts(projected)
