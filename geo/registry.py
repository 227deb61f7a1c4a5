"""Read the registries' files: permits, schools, cameras and districts.

Every reader checks each row and collects *all* problems as :class:`RowError` (row number as the user
sees it in a spreadsheet, the column as written in the header, the bad value, a reason in English and
Chinese) instead of stopping at the first one; rows with a problem are left out of
:attr:`ParsedTable.rows` and can be written back with :func:`write_rejects`. Problems with the file as a
whole (no data rows, a missing required column, an unknown file type, no coordinate system) raise
:class:`~geo.errors.InvalidInput`.

Every coordinate carries its system (``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09``) — per row in a
``crs`` column or per file with the ``crs`` option — and is converted to WGS84 on entry.

Permit-registry category strings are mapped to the canonical categories by a YAML file
(``data/mappings/permit_categories.yaml``), never by code: see :func:`load_permit_mapping`.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd
import pyogrio
import shapely
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from geo.coords import check_lonlat, geometry_to_wgs84, parse_crs, to_wgs84
from geo.errors import CoordinateError, InvalidInput, MappingError, SafezoneError
from geo.levels import LEVELS
from geo.uscc import validate_uscc
from geo.vocabulary import CATEGORIES, Category

T = TypeVar("T")

#: Permit statuses.
STATUSES: tuple[str, ...] = ("active", "expired", "revoked", "suspended")

DEFAULT_PERMIT_MAPPING = Path(__file__).resolve().parent.parent / "data" / "mappings" / "permit_categories.yaml"

_TABLE_SUFFIXES = {".csv", ".txt", ".xlsx", ".xlsm"}
_VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp"}
_ERROR_COLUMNS = ("error_row", "error_column", "error_value", "error_reason", "原因")
_GEOD = Geod(ellps="WGS84")


# --------------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in one row of an input file.

    Attributes
    ----------
    row
        The row number a user sees in a spreadsheet (header = row 1, first data row = 2); for
        GeoJSON/GeoPackage files the 1-based feature number.
    column
        The column as written in the file's header (``None`` when the problem is the whole row).
    value
        The bad cell, as written.
    reason_en, reason_zh
        What is wrong, in English and in Chinese.
    """

    row: int
    column: str | None
    value: str | None
    reason_en: str
    reason_zh: str


@dataclass
class ParsedTable(Generic[T]):
    """The outcome of reading a file: the good rows, every problem, and the raw cells to write rejects.

    Attributes
    ----------
    rows
        The parsed records of the rows without any problem, in file order.
    errors
        Every problem found, ordered by row.
    encoding
        The text encoding that decoded the file (``"xlsx"`` or ``"vector"`` for those formats).
    total_rows
        The number of non-blank data rows in the file.
    source_rows
        The raw cells of each data row by row number (header name → cell text; for vector files
        also ``geometry`` as WKT). A read-only mapping that builds each dict on access, so that a
        million-row file keeps only its compact records (about 1 KB a row).
    """

    rows: list[T]
    errors: list[RowError]
    encoding: str
    total_rows: int
    source_rows: Mapping[int, dict[str, str]]

    @property
    def rejected_rows(self) -> list[int]:
        """The row numbers with at least one problem, ascending."""
        return sorted({e.row for e in self.errors})


@dataclass(frozen=True, slots=True)
class PermitRow:
    """One permit of a permit-registry file, validated, with its location in WGS84."""

    row: int
    permit_id: str
    category: str
    name: str
    address: str | None
    uscc: str | None
    premises_key: str
    lon: float
    lat: float
    crs: str
    issued: date | None
    expires: date | None
    applied: date | None
    status: str
    protection_distance_m: float | None
    footprint: Polygon | None
    accuracy_m: float


@dataclass
class PremisesGroup:
    """The permits held at one premises (a convenience store may hold tobacco, alcohol and lottery)."""

    key: str
    name: str
    address: str | None
    uscc: str | None
    lon: float
    lat: float
    footprint: Polygon | None
    permits: list[PermitRow]

    @property
    def categories(self) -> frozenset[str]:
        """The categories of all permits at this premises."""
        return frozenset(p.category for p in self.permits)


@dataclass(frozen=True, slots=True)
class SchoolRow:
    """One campus of a school register, validated; geometry in WGS84 (outline, or a point)."""

    row: int
    school_id: str
    name: str
    levels: frozenset[str]
    campus: str
    geometry: BaseGeometry
    point_only: bool
    students: int | None
    boarders: int | None
    staff: int | None
    guards: int | None
    access_control: bool | None
    arrival: time | None
    dismissal: time | None
    opened: date | None
    closed: date | None
    accuracy_m: float
    licensed: bool


@dataclass(frozen=True, slots=True)
class CameraRow:
    """One camera: WGS84 position, direction (0 = north, clockwise), field of view and range."""

    row: int
    camera_id: str
    name: str | None
    lon: float
    lat: float
    direction_deg: float
    fov_deg: float
    range_m: float


@dataclass(frozen=True, slots=True)
class DistrictRow:
    """One administrative district (GB/T 2260 adcode) with its WGS84 boundary."""

    row: int
    adcode: str
    name: str
    level: str
    parent: str | None
    geometry: Polygon | MultiPolygon


# --------------------------------------------------------------------------------------------------
# Columns
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    id: str
    alias: str
    required: bool = False


_PERMIT_COLUMNS = (
    _Column("permit_id", "许可证号", True),
    _Column("category", "许可类别", True),
    _Column("name", "场所名称", True),
    _Column("address", "地址"),
    _Column("uscc", "统一社会信用代码"),
    _Column("premises_id", "场所编号"),
    _Column("lon", "经度", True),
    _Column("lat", "纬度", True),
    _Column("crs", "坐标系"),
    _Column("issued", "发证日期"),
    _Column("expires", "有效期至"),
    _Column("applied", "申请日期"),
    _Column("status", "状态"),
    _Column("protection_distance_m", "卫生防护距离"),
    _Column("footprint", "经营范围坐标"),
    _Column("accuracy_m", "定位精度"),
)

_SCHOOL_COLUMNS = (
    _Column("school_id", "学校标识码", True),
    _Column("name", "学校名称", True),
    _Column("level", "学段"),
    _Column("campus", "校区"),
    _Column("lon", "经度", True),
    _Column("lat", "纬度", True),
    _Column("crs", "坐标系"),
    _Column("students", "学生数"),
    _Column("boarders", "寄宿生数"),
    _Column("staff", "教职工数"),
    _Column("guards", "保安人数"),
    _Column("access_control", "门禁"),
    _Column("arrival", "到校时间"),
    _Column("dismissal", "放学时间"),
    _Column("opened", "开办日期"),
    _Column("closed", "停办日期"),
    _Column("accuracy_m", "定位精度"),
    _Column("licensed", "是否有证"),
)

_CAMERA_COLUMNS = (
    _Column("camera_id", "摄像头编号", True),
    _Column("name", "名称"),
    _Column("lon", "经度", True),
    _Column("lat", "纬度", True),
    _Column("crs", "坐标系"),
    _Column("direction_deg", "朝向", True),
    _Column("fov_deg", "视场角", True),
    _Column("range_m", "监控距离", True),
)

_DISTRICT_COLUMNS = (
    _Column("adcode", "行政区划代码", True),
    _Column("name", "名称", True),
    _Column("level", "级别", True),
    _Column("parent", "上级行政区划代码"),
)


def _header_key(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip().lstrip("\ufeff").casefold()


@dataclass(frozen=True)
class _Columns:
    names: dict[str, str]  # column id → the header name as written
    index: dict[str, int]  # column id → position in a record


def _resolve_columns(
    header: Sequence[str], columns: Sequence[_Column], path: Path, *, optional: frozenset[str] = frozenset()
) -> _Columns:
    """Map each canonical column id to the header name as written in the file and its position."""
    by_key: dict[str, _Column] = {}
    for col in columns:
        by_key[_header_key(col.id)] = col
        by_key[_header_key(col.alias)] = col
    found: dict[str, str] = {}
    index: dict[str, int] = {}
    for position, name in enumerate(header):
        known = by_key.get(_header_key(name))
        if known is None:
            continue  # an unknown column is ignored
        if known.id in found:
            msg = f"{path.name}: columns {found[known.id]!r} and {name!r} both mean {known.id!r}"
            zh = f"{path.name}：列“{found[known.id]}”与“{name}”重复，均表示“{known.alias}”"
            raise InvalidInput(msg, message_zh=zh, field=name)
        found[known.id] = name
        index[known.id] = position
    for col in columns:
        if col.required and col.id not in optional and col.id not in found:
            msg = f"{path.name}: the required column {col.id!r} ({col.alias}) is missing"
            zh = f"{path.name}：缺少必填列“{col.alias}”（{col.id}）"
            raise InvalidInput(msg, message_zh=zh, field=col.id)
    if header and header[-1] == "geometry" and "geometry" not in found:  # vector files
        found["geometry"], index["geometry"] = "geometry", len(header) - 1
    return _Columns(found, index)


# --------------------------------------------------------------------------------------------------
# Reading tables
# --------------------------------------------------------------------------------------------------


def _no_data(path: Path) -> InvalidInput:
    msg = f"the file has no data rows: {path.name}"
    zh = f"文件没有数据行：{path.name}"
    return InvalidInput(msg, message_zh=zh, field="file", value=path.name)


def _decode(data: bytes, path: Path) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        candidates: tuple[str, ...] = ("utf-8-sig",)
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ("utf-16",)
    else:
        candidates = ("utf-8", "gbk", "gb18030")
    for encoding in candidates:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    msg = f"{path.name}: the file is neither UTF-8 nor GBK/GB18030 text"
    zh = f"{path.name}：文件编码既不是 UTF-8 也不是 GBK/GB18030"
    raise InvalidInput(msg, message_zh=zh, field="file", value=path.name)


def _read_csv(path: Path) -> tuple[list[str], list[list[str]], str]:
    text, encoding = _decode(path.read_bytes(), path)
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return (records[0] if records else []), records[1:], encoding


def _cell_to_str(value: Any) -> str:
    """An XLSX or vector-attribute cell as the text a user would have typed."""
    if value is None or value is pd.NaT:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        if float(value).is_integer() and abs(float(value)) < 1e15:
            return str(int(value))
        return repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    if hasattr(value, "isoformat") and hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return _cell_to_str(value.to_pydatetime())
    return str(value)


def _read_xlsx(path: Path) -> tuple[list[str], list[list[str]], str]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
        msg = f"{path.name}: not a readable XLSX workbook ({exc})"
        zh = f"{path.name}：无法读取的 XLSX 工作簿（{exc}）"
        raise InvalidInput(msg, message_zh=zh, field="file", value=path.name) from exc
    try:
        sheet = workbook.worksheets[0]
        records = [[_cell_to_str(v) for v in values] for values in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
    return (records[0] if records else []), records[1:], "xlsx"


def read_table(path: Path) -> tuple[list[str], list[dict[str, str]], str]:
    """Read a CSV or XLSX file into its header and rows of raw strings.

    CSV files may be UTF-8 with or without BOM, or GBK/GB18030 (as exported by Excel on Chinese
    Windows); the first encoding that decodes the whole file strictly is used. In XLSX files date cells
    become ISO strings and whole numbers lose their ``.0``.

    Parameters
    ----------
    path
        A ``.csv`` (or tab-separated ``.txt``) or ``.xlsx`` file.

    Returns
    -------
    header, rows, encoding
        The header names as written; one dict per data record (header name → stripped cell text,
        blank records kept so that ``rows[i]`` is spreadsheet row ``i + 2``; trailing blank records
        dropped); the encoding name (``"xlsx"`` for workbooks).

    Raises
    ------
    InvalidInput
        An unknown file type, an undecodable file, or a file without data rows.
    """
    header, records, encoding = _read_records(Path(path))
    names = [(i, h) for i, h in enumerate(header) if h]
    return header, [{h: record[i] for i, h in names} for record in records], encoding


def _read_records(path: Path) -> tuple[list[str], list[list[str]], str]:
    """Like :func:`read_table` but rows as lists of stripped cells, padded to the header's width."""
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xlsm"}:
        header, records, encoding = _read_xlsx(path)
    elif suffix in {".csv", ".txt"}:
        header, records, encoding = _read_csv(path)
    else:
        msg = f"{path.name}: unsupported file type {suffix or '(none)'!r}; expected .csv or .xlsx"
        zh = f"{path.name}：不支持的文件类型“{suffix}”，应为 .csv 或 .xlsx"
        raise InvalidInput(msg, message_zh=zh, field="file", value=path.name)
    header = [h.strip().lstrip("\ufeff") for h in header]
    while records and not any(c.strip() for c in records[-1]):
        records.pop()
    if not any(h for h in header) or not records:
        raise _no_data(path)
    width = len(header)
    for i, record in enumerate(records):
        if len(record) < width:
            record = record + [""] * (width - len(record))
        records[i] = [c.strip() for c in record[:width]]
    return header, records, encoding


class _SourceRows(Mapping[int, dict[str, str]]):
    """Row number → raw cells, built on access from the compact records (a million rows fit)."""

    def __init__(self, header: list[str], records: list[list[str]], first_row: int) -> None:
        self._names = [(i, h) for i, h in enumerate(header) if h]
        self._records = records
        self._first = first_row

    def _record(self, row: int) -> list[str] | None:
        index = row - self._first
        if not isinstance(row, int) or not 0 <= index < len(self._records):
            return None
        record = self._records[index]
        return record if any(record) else None

    def __getitem__(self, row: int) -> dict[str, str]:
        record = self._record(row)
        if record is None:
            raise KeyError(row)
        return {h: record[i] for i, h in self._names}

    def __contains__(self, row: object) -> bool:
        return isinstance(row, int) and self._record(row) is not None

    def __iter__(self) -> Iterator[int]:
        return (i + self._first for i, record in enumerate(self._records) if any(record))

    def __len__(self) -> int:
        return sum(1 for record in self._records if any(record))


def _read_vector(path: Path) -> tuple[list[str], list[list[str]], list[Any], Any]:
    try:
        frame = pyogrio.read_dataframe(path)
    except Exception as exc:  # pyogrio raises its own DataSourceError / DataLayerError
        msg = f"{path.name}: not a readable vector file ({exc})"
        zh = f"{path.name}：无法读取的矢量文件（{exc}）"
        raise InvalidInput(msg, message_zh=zh, field="file", value=path.name) from exc
    if len(frame) == 0:
        raise _no_data(path)
    geometry_name = frame.geometry.name
    columns = [str(c) for c in frame.columns if c != geometry_name]
    geometries = list(frame.geometry)
    records = [
        [*(_cell_to_str(v).strip() for v in values), "" if geom is None else geom.wkt]
        for values, geom in zip(frame[columns].itertuples(index=False, name=None), geometries, strict=True)
    ]
    return [*columns, "geometry"], records, geometries, frame


def _vector_system(path: Path, frame: Any, crs: str | None) -> tuple[str, list[Any] | None]:
    """The coordinate system of a vector file's geometries, and reprojected geometries if needed."""
    epsg = frame.crs.to_epsg() if frame.crs is not None else None
    if crs is not None:
        system = parse_crs(crs, field="crs")
        if frame.crs is not None and epsg not in (4326, 4490):
            msg = f"{path.name}: the file's CRS {frame.crs.to_string()!r} conflicts with crs={crs!r}"
            zh = f"{path.name}：文件坐标系“{frame.crs.to_string()}”与指定的坐标系“{crs}”不一致"
            raise CoordinateError(msg, message_zh=zh, field="crs", value=crs)
        return system, None
    if epsg == 4326:
        return "wgs84", None
    if epsg == 4490:
        return "cgcs2000", None
    if frame.crs is None:
        msg = f"{path.name}: the file has no coordinate system; give crs (wgs84, cgcs2000, gcj02, bd09)"
        zh = f"{path.name}：文件没有坐标系，请指定坐标系（wgs84、cgcs2000、gcj02、bd09）"
        raise CoordinateError(msg, message_zh=zh, field="crs", value=None)
    return "wgs84", list(frame.to_crs(4326).geometry)


# --------------------------------------------------------------------------------------------------
# Cell parsers
# --------------------------------------------------------------------------------------------------


class _CellError(Exception):
    def __init__(self, en: str, zh: str) -> None:
        super().__init__(en)
        self.en = en
        self.zh = zh


_MISSING = object()


class _Row:
    """The cells of one data row and the errors found in it."""

    __slots__ = ("cells", "cols", "index", "row", "errors", "bad")

    def __init__(self, cells: list[str], cols: _Columns, row: int, errors: list[RowError]):
        self.cells = cells
        self.cols = cols.names
        self.index = cols.index
        self.row = row
        self.errors = errors
        self.bad = False

    def column(self, col_id: str) -> str:
        return self.cols.get(col_id, col_id)

    def text(self, col_id: str) -> str:
        index = self.index.get(col_id)
        return self.cells[index] if index is not None else ""

    def error(self, col_id: str | None, value: str | None, en: str, zh: str) -> None:
        column = self.column(col_id) if col_id is not None else None
        self.errors.append(RowError(self.row, column, value, en, zh))
        self.bad = True

    def required(self, col_id: str, what_zh: str) -> str:
        value = self.text(col_id)
        if not value:
            column = self.column(col_id)
            self.error(col_id, value, f"{column!r} is required but empty", f"“{column}”（{what_zh}）不能为空")
        return value

    def get(self, col_id: str, parser: Callable[[str], Any], default: Any = None) -> Any:
        value = self.text(col_id)
        if not value:
            return default
        try:
            return parser(value)
        except _CellError as exc:
            self.error(col_id, value, exc.en, exc.zh)
            return _MISSING

    def from_exception(self, col_id: str, value: str | None, exc: SafezoneError) -> None:
        self.error(col_id, value, exc.message_en, exc.message_zh)


def _number(text: str) -> float:
    """Any float, NaN and infinities included (coordinates: ``check_lonlat`` reports those)."""
    try:
        return float(text)
    except ValueError:
        raise _CellError(f"{text!r} is not a number", f"“{text}”不是数字") from None


def _float(text: str) -> float:
    value = _number(text)
    if not math.isfinite(value):
        raise _CellError(f"{text!r} is not a finite number", f"“{text}”不是有限数值")
    return value


def _non_negative(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise _CellError(f"{text!r} is negative; metres must be 0 or more", f"“{text}”为负数，米数不能小于 0")
    return value


def _positive(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise _CellError(f"{text!r} must be greater than 0", f"“{text}”必须大于 0")
    return value


def _count(text: str) -> int:
    value = _float(re.sub(r"(?<=\d)[,，](?=\d{3})", "", text))
    if not value.is_integer() or value < 0:
        raise _CellError(f"{text!r} is not a whole number of 0 or more", f"“{text}”不是非负整数")
    return int(value)


_DATE_PATTERNS = (
    re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"),
    re.compile(r"(\d{4})(年)(\d{1,2})月(\d{1,2})日?"),
    re.compile(r"(\d{4})()(\d{2})(\d{2})"),
)


@lru_cache(maxsize=65536)
def _date_or_none(text: str) -> date | None:
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            try:
                return date(int(match[1]), int(match[3]), int(match[4]))
            except ValueError:
                return None
    return None


def _date(text: str) -> date:
    value = _date_or_none(text.strip())
    if value is None:
        raise _CellError(
            f"{text!r} is not a date (YYYY-MM-DD, YYYY/M/D, YYYY.M.D, YYYY年M月D日 or YYYYMMDD)",
            f"“{text}”不是有效日期（应为 YYYY-MM-DD、YYYY/M/D、YYYY.M.D、YYYY年M月D日 或 YYYYMMDD）",
        )
    return value


_TIME_RE = re.compile(r"(\d{1,2})[:：](\d{2})(?:[:：](\d{2})(?:\.\d+)?)?")


def _time(text: str) -> time:
    match = _TIME_RE.fullmatch(text)
    try:
        if match is None:
            raise ValueError
        return time(int(match[1]), int(match[2]), int(match[3] or 0))
    except ValueError:
        raise _CellError(f"{text!r} is not a time of day (HH:MM)", f"“{text}”不是有效时间（应为 HH:MM）") from None


_BOOLS = {
    **dict.fromkeys(("是", "有", "true", "yes", "y", "1", "t"), True),
    **dict.fromkeys(("否", "无", "没有", "false", "no", "n", "0", "f"), False),
}


def _bool(text: str) -> bool:
    value = _BOOLS.get(text.strip().casefold())
    if value is None:
        raise _CellError(f"{text!r} is not yes/no (是/否, true/false)", f"“{text}”不是“是/否”")
    return value


_STATUS_ALIASES = {
    **dict.fromkeys(("active", "有效", "正常", "在用"), "active"),
    **dict.fromkeys(("expired", "过期", "已过期", "失效", "已失效"), "expired"),
    **dict.fromkeys(("revoked", "注销", "吊销", "撤销", "已注销", "已吊销", "已撤销"), "revoked"),
    **dict.fromkeys(("suspended", "暂停", "已暂停", "停业"), "suspended"),
}


def _status(text: str) -> str:
    value = _STATUS_ALIASES.get(text.strip().casefold())
    if value is None:
        raise _CellError(
            f"{text!r} is not a permit status (active, expired, revoked, suspended)",
            f"“{text}”不是有效的许可状态（有效、过期、注销/吊销/撤销、暂停）",
        )
    return value


_LEVEL_ALIASES: dict[str, frozenset[str]] = {
    **{level: frozenset({level}) for level in LEVELS},
    "nine_year": frozenset({"primary", "junior"}),
    "complete": frozenset({"junior", "senior"}),
    "幼儿园": frozenset({"kindergarten"}),
    "学前": frozenset({"kindergarten"}),
    "学前教育": frozenset({"kindergarten"}),
    "小学": frozenset({"primary"}),
    "初中": frozenset({"junior"}),
    "初级中学": frozenset({"junior"}),
    "高中": frozenset({"senior"}),
    "高级中学": frozenset({"senior"}),
    "九年一贯制": frozenset({"primary", "junior"}),
    "九年一贯制学校": frozenset({"primary", "junior"}),
    "完全中学": frozenset({"junior", "senior"}),
    "十二年一贯制": frozenset({"primary", "junior", "senior"}),
    "中职": frozenset({"vocational"}),
    "中等职业学校": frozenset({"vocational"}),
    "特教": frozenset({"special"}),
    "特殊教育": frozenset({"special"}),
}
_LEVEL_SPLIT = re.compile(r"[;；,，、]")


def parse_levels(text: str) -> frozenset[str]:
    """School levels from ids or Chinese names, several separated by ``;`` ``；`` ``,`` or ``、``.

    ``nine_year`` (九年一贯制) expands to {primary, junior} and ``complete`` (完全中学) to
    {junior, senior}; an empty text is the empty set (level unknown).

    Raises
    ------
    InvalidInput
        A part that names no known level.
    """
    levels: set[str] = set()
    for part in _LEVEL_SPLIT.split(text):
        part = part.strip()
        if not part:
            continue
        found = _LEVEL_ALIASES.get(part.casefold())
        if found is None:
            msg = (
                f"unknown school level {part!r}; expected {', '.join(LEVELS)}, nine_year, complete "
                "or 幼儿园/小学/初中/高中/九年一贯制/完全中学/中职/特教"
            )
            zh = f"未知学段“{part}”，应为幼儿园、小学、初中、高中、九年一贯制、完全中学、中职或特教"
            raise InvalidInput(msg, message_zh=zh, field="level", value=part)
        levels |= found
    return frozenset(levels)


def _levels(text: str) -> frozenset[str]:
    try:
        return parse_levels(text)
    except InvalidInput as exc:
        raise _CellError(exc.message_en, exc.message_zh) from None


def _wkt_polygon(text: str, *, multi: bool) -> BaseGeometry:
    try:
        geom = shapely.from_wkt(text)
    except shapely.errors.GEOSException as exc:
        raise _CellError(f"{text!r} is not valid WKT ({exc})", f"“{text}”不是有效的 WKT（{exc}）") from None
    return _check_polygon(geom, text, multi=multi)


def _check_polygon(geom: Any, text: str, *, multi: bool) -> BaseGeometry:
    allowed = (Polygon, MultiPolygon) if multi else (Polygon,)
    kind = "a polygon or multipolygon" if multi else "a polygon"
    if geom is None or geom.is_empty:
        raise _CellError(f"the geometry is empty: {text!r}", f"几何图形为空：“{text}”")
    if not isinstance(geom, allowed):
        raise _CellError(
            f"{geom.geom_type} is not {kind}: {text[:80]!r}", f"{geom.geom_type} 不是多边形：“{text[:80]}”"
        )
    if not geom.is_valid:
        reason = explain_validity(geom)
        raise _CellError(
            f"invalid polygon ({reason}): {text[:80]!r}", f"多边形无效（{reason}，如边自相交）：“{text[:80]}”"
        )
    minx, miny, maxx, maxy = geom.bounds
    if not (minx >= -180 and maxx <= 180 and miny >= -90 and maxy <= 90):
        raise _CellError(
            f"the polygon's coordinates are not degrees of longitude/latitude: {text[:80]!r}",
            f"多边形坐标不是经纬度：“{text[:80]}”",
        )
    return geom


# --------------------------------------------------------------------------------------------------
# Permit category mapping
# --------------------------------------------------------------------------------------------------


def _normalise_label(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).casefold()


class _MappingFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    categories: dict[Category, list[str]]


class PermitCategoryMapping:
    """Registry category strings (许可类别) → canonical categories.

    Matching ignores case, whitespace and full-width/half-width differences; the canonical ids map to
    themselves. Build one with :func:`load_permit_mapping`.

    Parameters
    ----------
    labels
        Category id → the registry strings that mean it.
    source
        Where the mapping came from (for messages).
    """

    def __init__(self, labels: Mapping[str, Sequence[str]], *, source: str = "<dict>") -> None:
        table: dict[str, str] = {_normalise_label(c): c for c in CATEGORIES}
        for category, strings in labels.items():
            if category not in CATEGORIES:
                msg = f"{source}: unknown category {category!r}; expected one of {', '.join(CATEGORIES)}"
                zh = f"{source}：未知类别“{category}”"
                raise MappingError(msg, message_zh=zh, field=f"categories.{category}", value=category)
            for text in strings:
                key = _normalise_label(text)
                if not key:
                    continue
                previous = table.get(key)
                if previous is not None and previous != category:
                    msg = f"{source}: {text!r} is mapped to both {previous!r} and {category!r}"
                    zh = f"{source}：“{text}”同时映射到“{previous}”和“{category}”"
                    raise MappingError(msg, message_zh=zh, field=f"categories.{category}", value=text)
                table[key] = category
        for category, strings in labels.items():
            table.update(dict.fromkeys((t for t in strings if t.strip() == t), category))
        self._table = table
        self.source = source

    def category(self, value: str) -> str | None:
        """The canonical category of a registry string, or ``None`` when it is not mapped."""
        found = self._table.get(value)  # the common case: written exactly as listed
        return found if found is not None else self._table.get(_normalise_label(value))

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"PermitCategoryMapping({len(self._table)} strings from {self.source})"


def load_permit_mapping(path: Path | None = None) -> PermitCategoryMapping:
    """Load the permit category mapping (YAML), validated.

    Parameters
    ----------
    path
        The YAML file; default ``data/mappings/permit_categories.yaml``.

    Raises
    ------
    MappingError
        An unreadable file, a YAML error, an unknown category or key, or a string mapped twice; the
        message names the file and the field.
    """
    if path is None:
        return _default_mapping()
    return _load_mapping(Path(path))


@lru_cache(maxsize=1)
def _default_mapping() -> PermitCategoryMapping:
    return _load_mapping(DEFAULT_PERMIT_MAPPING)


def _load_mapping(path: Path) -> PermitCategoryMapping:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read the category mapping ({exc})"
        zh = f"{path}：无法读取类别映射文件（{exc}）"
        raise MappingError(msg, message_zh=zh, field="file", value=str(path)) from exc
    try:
        model = _MappingFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p != "[key]") or "(root)"
        msg = f"{path}: field {where}: {first['msg']} (got {first.get('input')!r})"
        zh = f"{path}：字段 {where} 无效：{first['msg']}（值：{first.get('input')!r}）"
        raise MappingError(msg, message_zh=zh, field=where, value=first.get("input")) from exc
    labels: dict[str, Sequence[str]] = {str(k): v for k, v in model.categories.items()}
    return PermitCategoryMapping(labels, source=path.name)


# --------------------------------------------------------------------------------------------------
# Coordinates of table rows
# --------------------------------------------------------------------------------------------------


class _CrsCache:
    """``parse_crs`` once per distinct cell text; the file-level system when a row has none."""

    def __init__(self, file_crs: str | None) -> None:
        self.file_crs = parse_crs(file_crs, field="crs") if file_crs is not None else None
        self._known: dict[str, str] = {}

    def system(self, r: _Row) -> str | None:
        text = r.text("crs")
        if not text:
            if self.file_crs is None:
                column = r.column("crs")
                r.error(
                    "crs",
                    "",
                    f"no coordinate system: {column!r} is empty and no file-level crs was given "
                    "(wgs84, cgcs2000, gcj02, bd09)",
                    f"缺少坐标系：“{column}”为空且未指定文件坐标系（wgs84、cgcs2000、gcj02、bd09）",
                )
            return self.file_crs
        found = self._known.get(text)
        if found is None:
            try:
                found = parse_crs(text, field=r.column("crs"), row=r.row)
            except CoordinateError as exc:
                r.from_exception("crs", text, exc)
                return None
            self._known[text] = found
        return found


def _lonlat(r: _Row) -> tuple[float, float] | None:
    lon_text, lat_text = r.text("lon"), r.text("lat")
    lon = r.get("lon", _number, _MISSING)
    lat = r.get("lat", _number, _MISSING)
    for col_id, text in (("lon", lon_text), ("lat", lat_text)):
        if not text:
            column = r.column(col_id)
            r.error(col_id, "", f"{column!r} is required but empty", f"“{column}”（经纬度）不能为空")
    if lon is _MISSING or lat is _MISSING or not lon_text or not lat_text:
        return None
    column = f"{r.column('lon')}/{r.column('lat')}"
    try:
        check_lonlat(lon, lat, field=column, row=r.row)
    except CoordinateError as exc:
        r.errors.append(RowError(r.row, column, f"{lon_text},{lat_text}", exc.message_en, exc.message_zh))
        r.bad = True
        return None
    return lon, lat


def _convert_points(points: dict[int, tuple[float, float, str]]) -> dict[int, tuple[float, float]]:
    """Convert row → (lon, lat, system) to WGS84, one vectorised call per system."""
    groups: dict[str, list[int]] = defaultdict(list)
    for row, (_, _, system) in points.items():
        groups[system].append(row)
    out: dict[int, tuple[float, float]] = {}
    for system, rows in groups.items():
        lon = np.fromiter((points[r][0] for r in rows), dtype=float, count=len(rows))
        lat = np.fromiter((points[r][1] for r in rows), dtype=float, count=len(rows))
        wlon, wlat = to_wgs84(lon, lat, system)
        wlon, wlat = np.asarray(wlon, dtype=float), np.asarray(wlat, dtype=float)
        for i, r in enumerate(rows):
            out[r] = (float(wlon[i]), float(wlat[i]))
    return out


_FOOTPRINT = 6  # index of the footprint in the second part of a pending permit


def _convert_footprints(
    pending: dict[int, Any], shapes: dict[str, list[int]], errors: list[RowError], column: str
) -> None:
    """Convert the footprints of each coordinate system to WGS84 in one vectorised call per system."""
    for system, rows in shapes.items():
        rows = [row for row in rows if row in pending]
        geoms = np.array([pending[row][1][_FOOTPRINT] for row in rows], dtype=object)
        try:
            converted = list(geometry_to_wgs84_many(geoms, system))
        except SafezoneError:
            converted = []
            for row, geom in zip(rows, geoms, strict=True):
                try:
                    converted.append(geometry_to_wgs84(geom, system))
                except SafezoneError as exc:
                    errors.append(RowError(row, column, geom.wkt[:80], exc.message_en, exc.message_zh))
                    converted.append(None)
        for row, geom in zip(rows, converted, strict=True):
            if geom is None:
                pending.pop(row, None)
                continue
            first, second = pending[row]
            pending[row] = (first, (*second[:_FOOTPRINT], geom, *second[_FOOTPRINT + 1 :]))


def geometry_to_wgs84_many(geoms: np.ndarray, system: str) -> np.ndarray:
    """Many geometries to WGS84 at once (all their vertices in one vectorised conversion)."""

    def convert(xy: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs84(xy[:, 0], xy[:, 1], system)
        return np.column_stack([lon, lat])

    return shapely.transform(geoms, convert)


def _to_wgs84_geometry(r: _Row, col_id: str, geom: BaseGeometry, system: str) -> BaseGeometry | None:
    if system == "wgs84":
        return geom
    try:
        return geometry_to_wgs84(geom, system)
    except SafezoneError as exc:
        r.from_exception(col_id, geom.wkt[:80], exc)
        return None


def _blank(cells: list[str]) -> bool:
    return not any(cells)


def _sorted_errors(errors: list[RowError]) -> list[RowError]:
    return sorted(errors, key=lambda e: e.row)


# --------------------------------------------------------------------------------------------------
# Permits
# --------------------------------------------------------------------------------------------------


def _premises_key(premises_id: str, uscc: str | None, name: str, address: str | None) -> str:
    if premises_id:
        return f"premises_id:{premises_id}"
    address_key = "".join((address or "").split())
    if uscc:
        return f"uscc:{uscc}|{address_key}"
    return f"name:{''.join(name.split())}|{address_key}"


def parse_permits(
    path: Path, *, crs: str | None = None, mapping: PermitCategoryMapping | None = None
) -> ParsedTable[PermitRow]:
    """Read and validate a permit-registry file (CSV or XLSX).

    Parameters
    ----------
    path
        The file; header names are the English ids or the Chinese aliases (许可证号, 许可类别, …).
    crs
        The file-level coordinate system (the ``--crs`` option), used for rows without one.
    mapping
        The category mapping; default :func:`load_permit_mapping`.

    Returns
    -------
    ParsedTable[PermitRow]
        The valid permits (WGS84) and a :class:`RowError` for every problem: an empty required cell,
        an unknown category, a bad credit code, a missing/unknown coordinate system, coordinates that
        are not numbers / out of range / swapped, an unparseable date, an expiry before issue, an
        unknown status, a duplicate permit id (every row that has it), an invalid footprint, a
        negative distance or accuracy.

    Raises
    ------
    InvalidInput
        For the file as a whole (see :func:`read_table`), or an unknown ``crs`` option.
    """
    path = Path(path)
    mapping = mapping if mapping is not None else load_permit_mapping()
    systems = _CrsCache(crs)
    header, raw_rows, encoding = _read_records(path)
    cols = _resolve_columns(header, _PERMIT_COLUMNS, path)
    errors: list[RowError] = []
    total = 0
    pending: dict[int, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}  # fields before / after lon, lat
    points: dict[int, tuple[float, float, str]] = {}
    shapes: dict[str, list[int]] = {}  # rows with a footprint to convert, by coordinate system
    by_id: dict[str, list[int]] = defaultdict(list)
    uscc_col = cols.names.get("uscc", "uscc")
    valid_uscc: dict[str, str] = {}  # a store's code repeats on each of its permits

    for index, cells in enumerate(raw_rows):
        if _blank(cells):
            continue
        row = index + 2
        total += 1
        r = _Row(cells, cols, row, errors)
        permit_id = r.required("permit_id", "许可证号")
        if permit_id:
            by_id[permit_id].append(row)
        category_text = r.required("category", "许可类别")
        category = mapping.category(category_text) if category_text else None
        if category_text and category is None:
            r.error(
                "category",
                category_text,
                f"unknown permit category {category_text!r} (not in {mapping.source})",
                f"未知许可类别“{category_text}”（类别映射 {mapping.source} 中没有）",
            )
        name = r.required("name", "场所名称")
        address = r.text("address") or None
        uscc_text = r.text("uscc")
        uscc = valid_uscc.get(uscc_text) if uscc_text else None
        if uscc_text and uscc is None:
            try:
                uscc = valid_uscc[uscc_text] = validate_uscc(uscc_text, field=uscc_col, row=row)
            except InvalidInput as exc:
                r.from_exception("uscc", uscc_text, exc)
        lonlat = _lonlat(r)
        system = systems.system(r)
        issued = r.get("issued", _date)
        expires = r.get("expires", _date)
        applied = r.get("applied", _date)
        if isinstance(issued, date) and isinstance(expires, date) and expires < issued:
            r.error(
                "expires",
                r.text("expires"),
                f"expires {expires.isoformat()} is before issued {issued.isoformat()}",
                f"有效期至 {expires.isoformat()} 早于发证日期 {issued.isoformat()}",
            )
        status = r.get("status", _status, "active")
        protection = r.get("protection_distance_m", _non_negative)
        accuracy = r.get("accuracy_m", _non_negative, 0.0)
        footprint = r.get("footprint", lambda t: _wkt_polygon(t, multi=False))
        if r.bad or lonlat is None or system is None:
            continue
        points[row] = (lonlat[0], lonlat[1], system)
        if isinstance(footprint, BaseGeometry) and system != "wgs84":
            shapes.setdefault(system, []).append(row)
        pending[row] = (
            (
                permit_id,
                category,
                name,
                address,
                uscc,
                _premises_key(r.text("premises_id"), uscc, name, address),
            ),
            (
                r.text("crs") or crs,
                issued,
                expires,
                applied,
                status,
                protection,
                footprint,
                accuracy,
            ),
        )

    id_column = cols.names["permit_id"]
    for permit_id, rows in by_id.items():
        if len(rows) < 2:
            continue
        listed = ", ".join(str(x) for x in rows)
        for row in rows:
            errors.append(
                RowError(
                    row,
                    id_column,
                    permit_id,
                    f"duplicate permit_id {permit_id!r}: rows {listed}",
                    f"许可证号“{permit_id}”重复：第 {listed} 行",
                )
            )
            pending.pop(row, None)
            points.pop(row, None)

    wgs = _convert_points(points)
    _convert_footprints(pending, shapes, errors, cols.names.get("footprint") or "footprint")
    permits = [
        PermitRow(row, *pending[row][0], wgs[row][0], wgs[row][1], *pending[row][1])  # type: ignore[call-arg]
        for row in sorted(pending)
    ]
    return ParsedTable(permits, _sorted_errors(errors), encoding, total, _SourceRows(header, raw_rows, 2))


def group_premises(
    rows: Sequence[PermitRow], *, max_spread_m: float = 30.0
) -> tuple[list[PremisesGroup], list[RowError]]:
    """Group permits into premises.

    The key is the premises id if given, else the credit code + address, else name + address
    (:attr:`PermitRow.premises_key`). The premises takes the first row's name, address, code and
    location, and the first footprint given.

    Parameters
    ----------
    rows
        Parsed permits.
    max_spread_m
        Every row of a group must lie within this geodesic distance of the group's first row; an
        outlier gets a :class:`RowError` and is left out of the group.

    Returns
    -------
    groups, errors
        The premises in order of first appearance, and the outliers.
    """
    if max_spread_m < 0 or not math.isfinite(max_spread_m):
        msg = f"max_spread_m must be a finite distance of 0 or more, got {max_spread_m!r}"
        raise InvalidInput(msg, message_zh=f"max_spread_m 必须是非负有限距离，实际为 {max_spread_m!r}")
    first: dict[str, PermitRow] = {}
    for permit in rows:
        first.setdefault(permit.premises_key, permit)
    heads = [first[p.premises_key] for p in rows]
    errors: list[RowError] = []
    if rows:
        _, _, dist = _GEOD.inv(
            np.array([h.lon for h in heads]),
            np.array([h.lat for h in heads]),
            np.array([p.lon for p in rows]),
            np.array([p.lat for p in rows]),
        )
    else:
        dist = np.array([])
    groups: dict[str, PremisesGroup] = {}
    for permit, head, d in zip(rows, heads, np.atleast_1d(dist), strict=True):
        if d > max_spread_m:
            errors.append(
                RowError(
                    permit.row,
                    None,
                    f"{permit.lon:.6f},{permit.lat:.6f}",
                    f"permit {permit.permit_id!r} lies {d:.0f} m from its premises (row {head.row}, "
                    f"{head.name!r}); at most {max_spread_m:g} m allowed",
                    f"许可“{permit.permit_id}”距所属场所（第 {head.row} 行“{head.name}”）{d:.0f} 米，"
                    f"超过允许的 {max_spread_m:g} 米",
                )
            )
            continue
        group = groups.get(permit.premises_key)
        if group is None:
            group = groups[permit.premises_key] = PremisesGroup(
                key=permit.premises_key,
                name=permit.name,
                address=permit.address,
                uscc=permit.uscc,
                lon=permit.lon,
                lat=permit.lat,
                footprint=permit.footprint,
                permits=[],
            )
        elif group.footprint is None:
            group.footprint = permit.footprint
        group.permits.append(permit)
    return list(groups.values()), errors


# --------------------------------------------------------------------------------------------------
# Schools
# --------------------------------------------------------------------------------------------------


def _is_vector(path: Path) -> bool:
    return path.suffix.lower() in _VECTOR_SUFFIXES


def parse_schools(path: Path, *, crs: str | None = None) -> ParsedTable[SchoolRow]:
    """Read and validate a school register.

    Parameters
    ----------
    path
        A CSV/XLSX table with ``lon``/``lat`` (and ``crs``) — each campus a point, flagged
        ``point_only`` — or a GeoJSON/GeoPackage whose geometries are campus outlines (or points).
    crs
        The coordinate system of rows without one (tables), or of the file's geometries (required for
        GCJ-02/BD-09 vector data, which has no EPSG code; it overrides the GeoJSON default of WGS84).

    Returns
    -------
    ParsedTable[SchoolRow]
        The valid campuses (WGS84) and every problem: an empty id or name, an unknown level, bad
        coordinates, an empty or invalid (self-intersecting) outline, a bad count, flag, time or date,
        a duplicate school id + campus.

    Raises
    ------
    InvalidInput
        For the file as a whole; :class:`~geo.errors.CoordinateError` when a vector file has no
        coordinate system and none is given.
    """
    path = Path(path)
    vector = _is_vector(path)
    if vector:
        header, raw_rows, geometries, frame = _read_vector(path)
        system, reprojected = _vector_system(path, frame, crs)
        geometries = reprojected if reprojected is not None else geometries
        cols = _resolve_columns(header, _SCHOOL_COLUMNS, path, optional=frozenset({"lon", "lat"}))
        encoding, first_row = "vector", 1
        systems = None
    else:
        systems = _CrsCache(crs)
        header, raw_rows, encoding = _read_records(path)
        cols = _resolve_columns(header, _SCHOOL_COLUMNS, path)
        geometries, system, first_row = [], "", 2

    errors: list[RowError] = []
    total = 0
    pending: dict[int, dict[str, Any]] = {}
    points: dict[int, tuple[float, float, str]] = {}
    seen: dict[tuple[str, str], int] = {}

    for index, cells in enumerate(raw_rows):
        if not vector and _blank(cells):
            continue
        row = index + first_row
        total += 1
        r = _Row(cells, cols, row, errors)
        school_id = r.required("school_id", "学校标识码")
        name = r.required("name", "学校名称")
        levels = r.get("level", _levels, frozenset())
        campus = r.text("campus") or "主校区"
        values = {
            "school_id": school_id,
            "name": name,
            "levels": levels,
            "campus": campus,
            "students": r.get("students", _count),
            "boarders": r.get("boarders", _count),
            "staff": r.get("staff", _count),
            "guards": r.get("guards", _count),
            "access_control": r.get("access_control", _bool),
            "arrival": r.get("arrival", _time),
            "dismissal": r.get("dismissal", _time),
            "opened": r.get("opened", _date),
            "closed": r.get("closed", _date),
            "accuracy_m": r.get("accuracy_m", _non_negative, 0.0),
            "licensed": r.get("licensed", _bool, True),
        }
        opened, closed = values["opened"], values["closed"]
        if isinstance(opened, date) and isinstance(closed, date) and closed < opened:
            r.error(
                "closed",
                r.text("closed"),
                f"closed {closed.isoformat()} is before opened {opened.isoformat()}",
                f"停办日期 {closed.isoformat()} 早于开办日期 {opened.isoformat()}",
            )
        if school_id:
            key = (school_id, campus)
            if key in seen:
                r.error(
                    "school_id",
                    school_id,
                    f"duplicate school {school_id!r} campus {campus!r}: also in row {seen[key]}",
                    f"学校“{school_id}”校区“{campus}”重复：第 {seen[key]} 行已有",
                )
            else:
                seen[key] = row
        if vector:
            geom = geometries[index]
            try:
                geom = _vector_geometry(geom)
            except _CellError as exc:
                r.error("geometry", r.text("geometry")[:80], exc.en, exc.zh)
                continue
            geom = _to_wgs84_geometry(r, "geometry", geom, system)
            if r.bad or geom is None:
                continue
            values["geometry"] = geom
            values["point_only"] = isinstance(geom, Point)
        else:
            lonlat = _lonlat(r)
            row_system = systems.system(r) if systems is not None else None
            if r.bad or lonlat is None or row_system is None:
                continue
            points[row] = (lonlat[0], lonlat[1], row_system)
            values["point_only"] = True
        if r.bad:
            continue
        pending[row] = values

    for row, (lon, lat) in _convert_points(points).items():
        pending[row]["geometry"] = Point(lon, lat)
    schools = [SchoolRow(row=row, **pending[row]) for row in sorted(pending)]
    return ParsedTable(schools, _sorted_errors(errors), encoding, total, _SourceRows(header, raw_rows, first_row))


def _vector_geometry(geom: Any) -> BaseGeometry:
    if geom is None or geom.is_empty:
        raise _CellError("the feature has no geometry", "要素没有几何图形")
    if isinstance(geom, Point):
        x, y = geom.x, geom.y
        if not (math.isfinite(x) and math.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90):
            raise _CellError(f"the point {geom.wkt!r} is not a longitude/latitude", f"点“{geom.wkt}”不是经纬度")
        return geom
    return _check_polygon(geom, geom.wkt, multi=True)


# --------------------------------------------------------------------------------------------------
# Cameras
# --------------------------------------------------------------------------------------------------


def _direction(text: str) -> float:
    value = _float(text)
    if not 0 <= value <= 360:
        raise _CellError(f"direction {text!r} is not between 0 and 360 degrees", f"朝向“{text}”不在 0–360 度之间")
    return value


def _fov(text: str) -> float:
    value = _float(text)
    if not 0 < value <= 360:
        raise _CellError(
            f"field of view {text!r} must be more than 0 and at most 360 degrees",
            f"视场角“{text}”必须大于 0 且不超过 360 度",
        )
    return value


def parse_cameras(path: Path, *, crs: str | None = None) -> ParsedTable[CameraRow]:
    """Read and validate a camera register (CSV or XLSX).

    Parameters
    ----------
    path
        The file: ``camera_id`` 摄像头编号, ``name`` 名称, ``lon``/``lat``/``crs``, ``direction_deg``
        朝向 (0 = north, clockwise, 0–360), ``fov_deg`` 视场角 (0 < f ≤ 360), ``range_m`` 监控距离 (> 0).
    crs
        The file-level coordinate system for rows without one.

    Returns
    -------
    ParsedTable[CameraRow]
        The valid cameras (WGS84) and every problem.
    """
    path = Path(path)
    systems = _CrsCache(crs)
    header, raw_rows, encoding = _read_records(path)
    cols = _resolve_columns(header, _CAMERA_COLUMNS, path)
    errors: list[RowError] = []
    total = 0
    pending: dict[int, dict[str, Any]] = {}
    points: dict[int, tuple[float, float, str]] = {}
    seen: dict[str, int] = {}
    for index, cells in enumerate(raw_rows):
        if _blank(cells):
            continue
        row = index + 2
        total += 1
        r = _Row(cells, cols, row, errors)
        camera_id = r.required("camera_id", "摄像头编号")
        if camera_id in seen:
            r.error(
                "camera_id",
                camera_id,
                f"duplicate camera_id {camera_id!r}: also in row {seen[camera_id]}",
                f"摄像头编号“{camera_id}”重复：第 {seen[camera_id]} 行已有",
            )
        elif camera_id:
            seen[camera_id] = row
        values = {
            "camera_id": camera_id,
            "name": r.text("name") or None,
            "direction_deg": r.get("direction_deg", _direction),
            "fov_deg": r.get("fov_deg", _fov),
            "range_m": r.get("range_m", _positive),
        }
        for col_id in ("direction_deg", "fov_deg", "range_m"):
            if values[col_id] is None:
                r.required(col_id, {"direction_deg": "朝向", "fov_deg": "视场角", "range_m": "监控距离"}[col_id])
        lonlat = _lonlat(r)
        system = systems.system(r)
        if r.bad or lonlat is None or system is None:
            continue
        points[row] = (lonlat[0], lonlat[1], system)
        pending[row] = values
    wgs = _convert_points(points)
    cameras = [CameraRow(row=row, lon=wgs[row][0], lat=wgs[row][1], **pending[row]) for row in sorted(pending)]
    return ParsedTable(cameras, _sorted_errors(errors), encoding, total, _SourceRows(header, raw_rows, 2))


# --------------------------------------------------------------------------------------------------
# Districts
# --------------------------------------------------------------------------------------------------

_DISTRICT_LEVELS = {
    **dict.fromkeys(("province", "省", "省级", "直辖市"), "province"),
    **dict.fromkeys(("city", "市", "地级", "地级市", "市级"), "city"),
    **dict.fromkeys(("county", "区县", "县", "区", "县级", "县级市"), "county"),
}
_ADCODE = re.compile(r"\d{6}")


def _adcode(text: str) -> str:
    if not _ADCODE.fullmatch(text):
        raise _CellError(f"adcode {text!r} is not 6 digits (GB/T 2260)", f"行政区划代码“{text}”不是 6 位数字")
    return text


def _district_level(text: str) -> str:
    value = _DISTRICT_LEVELS.get(text.strip().casefold())
    if value is None:
        raise _CellError(
            f"district level {text!r} is not province, city or county", f"行政级别“{text}”不是省、市或区县"
        )
    return value


def parse_districts(path: Path) -> ParsedTable[DistrictRow]:
    """Read and validate administrative districts (GeoJSON or GeoPackage, EPSG:4326 or EPSG:4490).

    Parameters
    ----------
    path
        The file: ``adcode`` (6 digits), ``name``, ``level`` (province/city/county or 省/市/区县),
        ``parent`` (an adcode or empty), polygon or multipolygon boundaries.

    Returns
    -------
    ParsedTable[DistrictRow]
        The valid districts and every problem (bad adcode or level, empty or invalid boundary,
        duplicate adcode). Row numbers are 1-based feature numbers.

    Raises
    ------
    InvalidInput
        Not a vector file, no features, a required attribute missing; :class:`~geo.errors.CoordinateError`
        for a CRS other than EPSG:4326/4490.
    """
    path = Path(path)
    if not _is_vector(path):
        msg = f"{path.name}: districts must be a GeoJSON or GeoPackage file, not {path.suffix!r}"
        zh = f"{path.name}：行政区划必须是 GeoJSON 或 GeoPackage 文件，而不是“{path.suffix}”"
        raise InvalidInput(msg, message_zh=zh, field="file", value=path.name)
    header, raw_rows, geometries, frame = _read_vector(path)
    epsg = frame.crs.to_epsg() if frame.crs is not None else None
    if epsg not in (4326, 4490):
        shown = frame.crs.to_string() if frame.crs is not None else "none"
        msg = f"{path.name}: districts must be in EPSG:4326 or EPSG:4490, the file's CRS is {shown!r}"
        zh = f"{path.name}：行政区划必须为 EPSG:4326 或 EPSG:4490 坐标系，文件坐标系为“{shown}”"
        raise CoordinateError(msg, message_zh=zh, field="crs", value=shown)
    cols = _resolve_columns(header, _DISTRICT_COLUMNS, path)
    errors: list[RowError] = []
    total = 0
    districts: list[DistrictRow] = []
    seen: dict[str, int] = {}
    for index, cells in enumerate(raw_rows):
        row = index + 1
        total += 1
        r = _Row(cells, cols, row, errors)
        adcode = r.required("adcode", "行政区划代码") and r.get("adcode", _adcode)
        name = r.required("name", "名称")
        level = r.required("level", "级别") and r.get("level", _district_level)
        parent = r.get("parent", _adcode)
        if isinstance(adcode, str) and adcode:
            if adcode in seen:
                r.error(
                    "adcode",
                    adcode,
                    f"duplicate adcode {adcode!r}: also in feature {seen[adcode]}",
                    f"行政区划代码“{adcode}”重复：第 {seen[adcode]} 个要素已有",
                )
            else:
                seen[adcode] = row
        try:
            geom = _check_polygon(geometries[index], r.text("geometry"), multi=True)
        except _CellError as exc:
            r.error("geometry", r.text("geometry")[:80], exc.en, exc.zh)
            continue
        if r.bad:
            continue
        districts.append(DistrictRow(row, adcode, name, level, parent or None, geom))
    return ParsedTable(districts, errors, "vector", total, _SourceRows(header, raw_rows, 1))


# --------------------------------------------------------------------------------------------------
# Rejects
# --------------------------------------------------------------------------------------------------


def write_rejects(table: ParsedTable[Any], path: Path) -> int:
    """Write the rejected rows with their reasons, for the registry office to correct and re-import.

    The CSV (UTF-8 with BOM, so that Excel on Chinese Windows opens it) has the rows' original cells
    followed by ``error_row``, ``error_column``, ``error_value``, ``error_reason`` (English) and
    ``原因`` (Chinese); a row with several problems is one line with the problems joined by ``; ``.

    Parameters
    ----------
    table
        A parsed file.
    path
        Where to write the CSV.

    Returns
    -------
    int
        The number of rejected rows written.
    """
    by_row: dict[int, list[RowError]] = defaultdict(list)
    for error in table.errors:
        by_row[error.row].append(error)
    header: list[str] = []
    seen: set[str] = set(_ERROR_COLUMNS)
    for row in sorted(by_row):
        for name in table.source_rows.get(row, {}):
            if name not in seen:
                seen.add(name)
                header.append(name)
    with Path(path).open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*header, *_ERROR_COLUMNS])
        for row in sorted(by_row):
            cells = table.source_rows.get(row, {})
            problems = by_row[row]
            writer.writerow(
                [
                    *(cells.get(name, "") for name in header),
                    row,
                    "; ".join(e.column or "" for e in problems),
                    "; ".join(e.value or "" for e in problems),
                    "; ".join(e.reason_en for e in problems),
                    "；".join(e.reason_zh for e in problems),
                ]
            )
    return len(by_row)
