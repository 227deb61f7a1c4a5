"""Batch pre-checks: up to 100,000 sites as JSON or as a permit-registry CSV/XLSX, run as a background job.

Each site is checked and stored as a decision like a single check; a bad site gets its own error and does
not sink the others. Results are kept compact in the job's result (one line per site).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from geo.errors import InvalidInput, SafezoneError
from geo.registry import load_permit_mapping, read_table
from geo.rules import RuleRegistry
from service.checks import CheckRequest, run_check
from service.worker import Progress, handler
from storage.database import session_scope

MAX_SITES = 100_000
CHUNK = 200

_ALIASES = {
    "permit_id": ("permit_id", "许可证号"),
    "category": ("category", "许可类别", "类别"),
    "name": ("name", "场所名称"),
    "lon": ("lon", "经度"),
    "lat": ("lat", "纬度"),
    "crs": ("crs", "坐标系"),
    "application": ("application", "申请类型"),
    "accuracy_m": ("accuracy_m", "定位精度"),
    "protection_distance_m": ("protection_distance_m", "卫生防护距离"),
    "date": ("date", "日期"),
}


def sites_from_table(path: Path, *, crs: str | None, data_dir: Path | None) -> list[dict[str, Any]]:
    """Rows of a permit-registry-like CSV/XLSX as check requests (invalid rows are kept: they fail alone)."""
    header, rows, _ = read_table(path)
    mapping = load_permit_mapping(data_dir / "mappings" / "permit_categories.yaml" if data_dir else None)
    lookup = {h.strip().lower(): h for h in header}
    cols = {
        key: next((lookup[a.lower()] for a in names if a.lower() in lookup), None) for key, names in _ALIASES.items()
    }
    for required in ("category", "lon", "lat"):
        if cols[required] is None:
            msg = f"the file has no {required!r} column ({'/'.join(_ALIASES[required])})"
            raise InvalidInput(msg, field=required, message_zh=f"文件缺少列 {'/'.join(_ALIASES[required])}")
    sites = []
    for i, raw in enumerate(rows, start=2):
        cell = {k: (raw.get(c) or "").strip() if c else "" for k, c in cols.items()}
        site: dict[str, Any] = {"_row": i, "category": mapping.category(cell["category"]) or cell["category"]}
        site["location"] = {"lon": cell["lon"], "lat": cell["lat"]}
        site["crs"] = (cell["crs"] or crs or "").lower() or None
        for key in ("name", "permit_id", "application", "accuracy_m", "protection_distance_m", "date"):
            if cell[key]:
                site[key] = cell[key]
        sites.append(site)
    return sites


def _problem(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        return {"field": field, "value": str(err.get("input"))[:100], "message_en": f"{field}: {err['msg']}",
                "message_zh": f"{field} 无效：{err['msg']}"}  # fmt: skip
    if isinstance(exc, SafezoneError):
        return exc.to_dict()
    return {"message_en": "unexpected error", "message_zh": "意外错误"}


@handler("batch_check")
def run_batch(factory: sessionmaker[Session], params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from service.app import load_rules
    from service.settings import Settings

    settings = Settings()
    rules: RuleRegistry = load_rules(settings)
    sites = params["sites"]
    total = len(sites)
    items: list[dict[str, Any]] = []
    counts = {"prohibited": 0, "review": 0, "allowed": 0, "error": 0}
    for start in range(0, total, CHUNK):
        with session_scope(factory) as session:
            for offset, site in enumerate(sites[start : start + CHUNK]):
                index = start + offset
                row = site.pop("_row", None)
                item: dict[str, Any] = {"index": index, "row": row, "permit_id": site.get("permit_id")}
                try:
                    req = CheckRequest.model_validate(site)
                    with session.begin_nested():
                        answer, _ = run_check(session, req, rules=rules, school_accuracy_m=settings.school_accuracy_m,
                                           token_id=params.get("token_id"))  # fmt: skip
                except (ValidationError, SafezoneError, ValueError) as exc:
                    item["error"] = _problem(exc)
                    counts["error"] += 1
                else:
                    blocking = [r for r in answer["rules"] if r["outcome"] != "allowed"]
                    first = blocking[0] if blocking else None
                    near = first["nearest"] if first else None
                    item.update(
                        decision_id=answer["decision_id"], outcome=answer["outcome"],
                        rules=[r["rule_id"] for r in blocking], school=near and near["school_name"],
                        distance_m=near and near["distance_m"], flags=answer["flags"],
                    )  # fmt: skip
                    counts[answer["outcome"]] += 1
                items.append(item)
        progress(min(start + CHUNK, total), total)
    return {"counts": counts, "items": items}


def results_csv(result: dict[str, Any]) -> str:
    """A job's batch results as CSV (UTF-8 with BOM for Excel)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["index 序号", "row 行", "permit_id 许可证号", "outcome 结论", "rules 规则", "school 学校",
                "distance_m 距离", "decision_id 决定编号", "error 错误"])  # fmt: skip
    for it in result.get("items", []):
        err = it.get("error") or {}
        w.writerow([
            it["index"], it.get("row") or "", it.get("permit_id") or "", it.get("outcome", "error"),
            ";".join(it.get("rules") or []), it.get("school") or "", it.get("distance_m") or "",
            it.get("decision_id") or "", err.get("message_en", ""),
        ])  # fmt: skip
    return "\ufeff" + out.getvalue()
