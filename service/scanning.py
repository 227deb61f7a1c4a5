"""Scan orchestration shared by the CLI, the API (as a background job) and the bench.

The rules in force per district come from the :class:`geo.rules.RuleRegistry` and go to SQL as data;
``storage.scan`` judges every premises set-based and stores the findings; one transaction per scan.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlalchemy.orm import Session, sessionmaker

from geo.decide import DecisionSettings
from geo.rules import RuleRegistry
from service.settings import Settings
from service.worker import Progress, handler
from storage import scan as store
from storage.database import session_scope

log = logging.getLogger(__name__)
_SHANGHAI = ZoneInfo("Asia/Shanghai")


def today() -> dt.date:
    """Today in Asia/Shanghai (the date permits and rules are judged on)."""
    return datetime.now(_SHANGHAI).date()


def scan_rules(registry: RuleRegistry, adcodes: Iterable[str | None], *, on: dt.date) -> list[store.ScanRule]:
    """The rules in force in each district (layered national → province → city → county), as SQL data."""
    out: list[store.ScanRule] = []
    for adcode in adcodes:
        in_force = registry.in_force(adcode, on=on)
        for rule in in_force.rules:
            out.append(
                store.ScanRule(
                    adcode=adcode,
                    rule_id=rule.id,
                    category=rule.category,
                    distance_m=rule.distance_m,
                    measure_from=rule.measure_from,
                    measure_to=rule.measure_to,
                    metric=rule.metric,
                    levels=rule.levels,
                    applies_new="new" in rule.applies_to,
                    existing=rule.existing,
                    effective_from=rule.effective_from,
                    lead_department=rule.lead_department,
                    cooperating_departments=rule.cooperating_departments,
                    jurisdiction_unknown="jurisdiction_unknown" in in_force.flags,
                )
            )
    return out


def run_scan(
    factory: sessionmaker[Session],
    registry: RuleRegistry,
    *,
    settings: Settings | None = None,
    decision: DecisionSettings | None = None,
    district: str | None = None,
    on: dt.date | None = None,
    token_id: int | None = None,
    actor: str | None = None,
    job_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Run one scan in one transaction; returns the scan id and its counts."""
    settings = settings or Settings()
    decision = decision or DecisionSettings(default_school_accuracy_m=settings.school_accuracy_m)
    on = on or today()
    with session_scope(factory) as session:
        scan_id = store.create_scan(
            session,
            pack_version=registry.version,
            on=on,
            district=district,
            token_id=token_id,
            actor=actor,
            job_id=job_id,
        )
        rules = scan_rules(registry, store.premises_districts(session, district=district), on=on)
        counts = store.run_scan(
            session,
            scan_id,
            rules,
            settings=store.ScanSettings(
                on=on, school_accuracy_m=settings.school_accuracy_m, campus_radius_m=decision.campus_radius_m
            ),
            district=district,
        )
        counts = store.finish_scan(session, scan_id, counts)
    log.info("scan %s: %s findings", scan_id, counts["total"])
    return {"scan_id": scan_id, "pack_version": registry.version, "scan_date": on.isoformat(), **counts}


@handler("scan")
def _scan_job(factory: sessionmaker[Session], params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    settings = Settings()
    registry = RuleRegistry.load(settings.resolved_rules_dir, default_adcode=settings.default_adcode)
    progress(0, 1)
    result = run_scan(
        factory,
        registry,
        settings=settings,
        district=params.get("district"),
        token_id=params.get("token_id"),
        actor=params.get("actor"),
    )
    progress(1, 1)
    return result


#: Export columns: (property, Chinese header, English header).
EXPORT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("id", "编号", "finding id"),
    ("status", "状态", "status"),
    ("category", "类别", "category"),
    ("rule_id", "规则", "rule"),
    ("premises_id", "场所编号", "premises id"),
    ("premises_name", "场所名称", "premises name"),
    ("permit_no", "许可证号", "permit"),
    ("school_id", "学校编号", "school id"),
    ("school_name", "学校名称", "school"),
    ("campus_id", "校区编号", "campus id"),
    ("distance_m", "距离(米)", "distance (m)"),
    ("limit_m", "限值(米)", "limit (m)"),
    ("u_m", "不确定度(米)", "uncertainty (m)"),
    ("margin_m", "差值(米)", "margin (m)"),
    ("method", "测量方式", "method"),
    ("due_date", "整改期限", "due date"),
    ("district", "行政区划", "district"),
    ("lead_department", "牵头单位", "lead department"),
    ("cooperating_departments", "配合单位", "cooperating departments"),
    ("flags", "标记", "flags"),
    ("lon", "经度", "longitude"),
    ("lat", "纬度", "latitude"),
)


def export_rows(features: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Header (Chinese + English) and one row per finding for CSV and XLSX."""
    header = [f"{zh} {en}" for _, zh, en in EXPORT_COLUMNS]
    rows = []
    for feat in features:
        props = dict(feat["properties"], id=feat["id"])
        lon, lat = feat["geometry"]["coordinates"][:2]
        props.update(lon=lon, lat=lat)
        row = []
        for key, _, _ in EXPORT_COLUMNS:
            value = props.get(key)
            row.append(";".join(value) if isinstance(value, list) else value)
        rows.append(row)
    return header, rows


def findings_csv(features: list[dict[str, Any]]) -> bytes:
    """UTF-8 with BOM (so that Excel opens the Chinese text), Chinese + English headers."""
    header, rows = export_rows(features)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return "\ufeff".encode() + buf.getvalue().encode("utf-8")


def findings_xlsx(features: list[dict[str, Any]]) -> bytes:
    """An XLSX workbook (openpyxl) with one sheet of findings."""
    header, rows = export_rows(features)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("findings 排查结果")
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
