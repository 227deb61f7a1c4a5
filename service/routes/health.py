"""Liveness and readiness (no token needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from storage.database import migration_state

router = APIRouter(tags=["health"])


def _database(request: Request) -> dict[str, Any]:
    engine = request.app.state.engine
    try:
        with engine.connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar()
            server = conn.execute(text("SHOW server_version")).scalar()
        return {
            "reachable": True,
            "postgis": postgis,
            "postgresql": server,
            "migrations": migration_state(engine),
        }
    except Exception as exc:  # noqa: BLE001 - report, do not raise: this is the health endpoint
        return {"reachable": False, "error": exc.__class__.__name__}


@router.get("/health", summary="Liveness, with the database, PostGIS version and migration state")
def health(request: Request) -> dict[str, Any]:
    db = _database(request)
    ok = db["reachable"] and db["migrations"]["at_head"]
    return {"status": "ok" if ok else "degraded", "version": request.app.version, "database": db}


@router.get("/ready", summary="Readiness: database reachable, migrations at head, rule packs valid")
def ready(request: Request) -> JSONResponse:
    db = _database(request)
    checks = {
        "database": bool(db["reachable"]),
        "migrations": bool(db.get("migrations", {}).get("at_head")),
        "rule_packs": getattr(request.app.state, "rules", None) is not None,
    }
    ok = all(checks.values())
    body = {"status": "ready" if ok else "not ready", "checks": checks}
    if getattr(request.app.state, "rules", None) is not None:
        body["rule_pack_version"] = request.app.state.rules.version
    return JSONResponse(body, status_code=200 if ok else 503, headers=None if ok else {"Retry-After": "2"})
