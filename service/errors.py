"""RFC 9457 problem+json for every error, mapped from the domain exceptions in one place."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo.errors import (
    Conflict,
    CoordinateError,
    Forbidden,
    GeometryError,
    InvalidInput,
    MappingError,
    NotFound,
    RulePackError,
    SafezoneError,
    TooLarge,
    Unavailable,
)

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"

#: Status code by exception class (the most specific class wins).
DEFAULT_STATUS_CODES: dict[type[Exception], int] = {
    CoordinateError: 422,
    GeometryError: 422,
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    Forbidden: 403,
    TooLarge: 413,
    Unavailable: 503,
    RulePackError: 500,
    MappingError: 500,
    SafezoneError: 400,
}

_TITLES_ZH = {
    400: "请求错误",
    401: "未认证",
    403: "无权访问",
    404: "未找到",
    405: "方法不允许",
    409: "冲突",
    413: "请求过大",
    415: "不支持的媒体类型",
    422: "输入无效",
    429: "请求过于频繁",
    500: "服务器内部错误",
    503: "服务暂不可用",
}


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    body.update({k: _jsonable(v) for k, v in extra.items() if v is not None})
    body.setdefault("message_en", detail)
    body.setdefault("message_zh", _TITLES_ZH.get(status, title))
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def status_for(exc: Exception) -> int:
    for cls in type(exc).__mro__:
        if cls in DEFAULT_STATUS_CODES:
            return DEFAULT_STATUS_CODES[cls]
    return 500


async def _safezone_error(request: Request, exc: SafezoneError) -> JSONResponse:
    status = status_for(exc)
    if status >= 500:
        log.error("server error", exc_info=exc)
    headers = {"Retry-After": "1"} if status == 503 else None
    slug = type(exc).__name__.lower()
    return problem(status, exc.title, exc.message_en, type_=f"/problems/{slug}", headers=headers, **exc.to_dict())


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value][:20]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in list(value.items())[:20]}
    if isinstance(value, bytes):
        return value[:200].decode("utf-8", errors="replace")
    return str(value)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or None
    msg = first.get("msg", "invalid input")
    value = _jsonable(first.get("input"))
    detail = f"{field}: {msg}" if field else msg
    if "input" in first:
        detail += f" (got {value!r})"
    return problem(
        422,
        "Invalid input",
        detail,
        type_="/problems/invalidinput",
        field=field,
        value=value,
        message_en=detail,
        message_zh=f"输入无效：{field or '请求'} — {msg}",
        errors=[{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")} for e in errors[:50]],
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    title = {401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed"}.get(
        exc.status_code, "Error"
    )
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem(exc.status_code, title, detail, headers=getattr(exc, "headers", None))


async def _db_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc.__class__.__name__)
    return problem(
        503,
        "Service unavailable",
        "the database is not reachable right now; retry shortly",
        type_="/problems/unavailable",
        headers={"Retry-After": "2"},
        message_zh="数据库暂时不可用，请稍后重试",
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return problem(500, "Internal server error", "an unexpected error occurred; it has been logged")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(SafezoneError, _safezone_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, _db_unavailable)
    app.add_exception_handler(PoolTimeout, _db_unavailable)
    app.add_exception_handler(DBAPIError, _db_dbapi)
    app.add_exception_handler(Exception, _unexpected)


async def _db_dbapi(request: Request, exc: Exception) -> JSONResponse:
    if getattr(exc, "connection_invalidated", False):
        return await _db_unavailable(request, exc)
    if isinstance(exc, DataError):
        return _db_bad_value(exc)
    return await _unexpected(request, exc)


def _db_bad_value(exc: DataError) -> JSONResponse:
    """A value the database cannot take (SQLSTATE class 22: NUL bytes, a number out of range…): the caller's."""
    reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
    log.info("rejected a value the database cannot store: %s", reason)
    return problem(
        422,
        "Invalid input",
        f"a value in the request cannot be stored or compared: {reason}",
        type_="/problems/invalidinput",
        message_zh=f"请求中的某个值无效（超出范围或含有不允许的字符）：{reason}",
    )


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {"type": "string"},
        "row": {"type": "integer"},
        "value": {},
        "message_en": {"type": "string"},
        "message_zh": {"type": "string"},
    },
    "additionalProperties": True,
}
_DOCUMENTED = {
    "400": "Bad request",
    "401": "No valid token",
    "403": "The token's role may not do this",
    "404": "Not found",
    "409": "Conflict",
    "413": "Request body too large",
    "422": "Invalid input (names the field, row and value)",
    "429": "Too many requests (Retry-After)",
    "503": "Database unavailable (Retry-After)",
}


def document_problems(app: FastAPI) -> None:
    """Declare the problem+json answers on every operation of the OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = _PROBLEM_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                for code, description in _DOCUMENTED.items():
                    responses[code] = {"description": description, "content": content}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
