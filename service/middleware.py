"""Request plumbing: request ids, structured JSON logs, body size and rate limits, the audit trail.

One pure ASGI middleware (no buffering of reads; writes are buffered so that their audit row is committed
before the answer leaves):

- ``X-Request-ID``: taken from the request when it is a sane token, else made; returned on every answer
  and written on every log line of the request;
- body size: ``Content-Length`` above ``SAFEZONE_MAX_BODY_MB`` → 413 at once; a chunked body is counted;
- rate limit: per token, ``SAFEZONE_RATE_LIMIT_PER_MIN`` requests per minute, counted in PostgreSQL
  (shared by every replica) → 429 with ``Retry-After``; when the database is away the limit lets the
  request through (the handler answers 503 anyway);
- audit: every write (POST/PUT/PATCH/DELETE) and so every check — who (token id, name, role), when,
  what (method, path, route, status, object ids), from where (client address), request id. The row is
  committed before the answer is sent; if it cannot be, a successful write answers 503 instead (retry
  with the same ``Idempotency-Key`` to get the first answer back);
- one JSON access-log line per request, and the request metrics.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import hashlib
import json
import logging
import re
import sys
import time
import uuid
from typing import Any

import anyio
from fastapi import FastAPI, Request
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import problem
from storage import audit as audit_store
from storage import ratelimit
from storage.database import make_sessionmaker, session_scope

log = logging.getLogger("safezone.access")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_UNLIMITED_PREFIXES = ("/health", "/ready", "/metrics", "/static/", "/openapi.json", "/docs", "/redoc")
_MAX_AUDITED_BODY = 2 * 1024 * 1024


class OpsSettings(BaseSettings):
    """Limits and logging (environment, ``SAFEZONE_`` prefix)."""

    model_config = SettingsConfigDict(env_prefix="SAFEZONE_", extra="ignore")

    rate_limit_per_min: int = Field(6000, ge=1, description="requests per token and minute")
    max_body_mb: float = Field(50.0, gt=0, description="largest request body (uploads included)")
    log_json: bool = True
    log_level: str = "INFO"

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


# --- logging ---------------------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and any ``extra`` fields."""

    _STD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            out["request_id"] = rid
        for key, value in vars(record).items():
            if key not in self._STD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners and servers swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(settings: OpsSettings) -> None:
    """JSON lines on stderr for the whole process (once; later calls only set the level)."""
    root = logging.getLogger()
    if settings.log_json and not any(getattr(h, "_safezone", False) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
        handler._safezone = True  # type: ignore[attr-defined]
        for h in [h for h in root.handlers if type(h) is logging.StreamHandler]:
            root.removeHandler(h)
        root.addHandler(handler)
    root.setLevel(settings.log_level.upper())


# --- the middleware ---------------------------------------------------------------------------------------


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit // (1024 * 1024)} MB")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _caller_key(scope: Scope) -> str | None:
    """The rate-limit key: a hash of the bearer token (header, or ``?token=`` on map pages)."""
    auth = _header(scope, b"authorization") or ""
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not token:
        query = scope.get("query_string", b"").decode("latin-1")
        token = next((p[6:] for p in query.split("&") if p.startswith("token=")), "")
    if not token:
        return None
    return "t:" + hashlib.sha256(token.encode()).hexdigest()[:40]


def _object_ids(scope: Scope, body: bytes, content_type: str) -> dict[str, Any]:
    data: Any = None
    if body and "json" in content_type and len(body) <= _MAX_AUDITED_BODY:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
    return _ids_of(scope, data)


def _ids_of(scope: Scope, data: Any) -> dict[str, Any]:
    """The ids an audit row names: the path's parameters and the answer's ``id``/``*_id`` fields."""
    ids: dict[str, Any] = {str(k): str(v) for k, v in (scope.get("path_params") or {}).items()}
    if isinstance(data, dict):
        for key, value in data.items():
            named = key == "id" or key.endswith("_id")
            if named and isinstance(value, (str, int)) and not isinstance(value, bool):
                ids[key] = str(value)
    return ids


def audit_row_for(request: Request, answer: dict[str, Any], *, status: int = 200, prefix: str = "") -> dict[str, Any]:
    """This request's audit row, for the handler to write in its own transaction (``storage.audit.insert_sql``).

    For the hot path (pre-checks): the row commits with the answer, in the same statement as the decision.
    The middleware then writes no row of its own for a successful answer; a failed one (the transaction
    rolled back) still gets its row from it.
    """
    scope = request.scope
    tok = getattr(request.state, "token", None)
    started = scope.get("state", {}).get("started")
    row = audit_store.params(
        method=scope["method"], path=scope["path"], status=status, token_id=getattr(tok, "id", None),
        token_name=getattr(tok, "name", None), role=getattr(tok, "role", None), route=_route(scope),
        object_ids=_ids_of(scope, answer), client=(scope.get("client") or (None,))[0],
        request_id=request_id_var.get(), idempotency_key=_header(scope, b"idempotency-key"),
        duration_ms=None if started is None else round((time.perf_counter() - started) * 1000, 2), prefix=prefix,
    )  # fmt: skip
    request.state.audited = True
    return row


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    return path or "unmatched"


#: rate-limit syncs waiting or running, at most (each holds a small task; two run at a time)
_MAX_PENDING_SYNCS = 64


class OpsMiddleware:
    """Request id, limits, audit, access log and metrics around every HTTP request."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.counter = ratelimit.RateCounter()
        self._syncs: set[asyncio.Future[int]] = set()
        self._limiter: anyio.CapacityLimiter | None = None  # made in the event loop
        self._sync_sessions: sessionmaker[Session] | None = None  # made with the engine, in the lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.fastapi_app.state
        ops: OpsSettings = state.ops
        incoming = _header(scope, b"x-request-id")
        rid = incoming if incoming and _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        started = time.perf_counter()
        scope.setdefault("state", {})["started"] = started
        method, path = scope["method"], scope["path"]
        status_box = {"status": 500}
        try:
            response_started = False

            async def send_with_id(message: Message) -> None:
                nonlocal response_started
                if message["type"] == "http.response.start":
                    response_started = True
                    status_box["status"] = message["status"]
                    message.setdefault("headers", [])
                    message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
                await send(message)

            refusal = await self._refuse(scope, ops)
            if refusal is not None:
                await refusal(scope, receive, send_with_id)
                return
            receive = self._counting(receive, ops.max_body_bytes)
            if method in _WRITES:
                await self._audited(scope, receive, send_with_id, rid, started)
            else:
                try:
                    await self.app(scope, receive, send_with_id)
                except BodyTooLarge as exc:
                    if response_started:
                        raise
                    await _problem_413(exc)(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = _route(scope)
            status = status_box["status"]
            metrics = getattr(state, "metrics", None)
            if metrics is not None:
                metrics.observe_request(method=method, route=route, status=status, seconds=seconds)
            tok = (scope.get("state") or {}).get("token")
            log.info(
                "%s %s %s",
                method,
                path,
                status,
                extra={
                    "request_id": rid,
                    "method": method, "path": path, "route": route, "status": status,
                    "duration_ms": round(seconds * 1000, 2), "token_id": getattr(tok, "id", None),
                    "client": (scope.get("client") or (None,))[0],
                },
            )  # fmt: skip
            request_id_var.reset(token)

    async def _refuse(self, scope: Scope, ops: OpsSettings) -> Any:
        """A 413 or 429 answer when a limit is exceeded, else None."""
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > ops.max_body_bytes:
            self._count_rejected("body_size")
            return _problem_413(BodyTooLarge(ops.max_body_bytes))
        if scope["path"].startswith(_UNLIMITED_PREFIXES):
            return None
        key = _caller_key(scope)
        if key is None:
            return None
        count, window_end, due = self.counter.hit(key)
        if due:
            self._sync_soon(key)
        if count <= ops.rate_limit_per_min:
            return None
        self._count_rejected("rate_limit")
        retry = ratelimit.seconds_until(window_end)
        return problem(
            429,
            "Too many requests",
            f"more than {ops.rate_limit_per_min} requests a minute with this token; retry in {retry} s",
            type_="/problems/ratelimited",
            headers={"Retry-After": str(retry)},
            message_zh=f"该令牌每分钟请求超过 {ops.rate_limit_per_min} 次，请 {retry} 秒后重试",
            limit=ops.rate_limit_per_min,
        )

    def _sync_soon(self, key: str) -> None:
        """Share ``key``'s count in the background: no request waits for the database's count.

        Syncs run two at a time, in threads and on connections of their own (requests keep theirs), and at
        most ``_MAX_PENDING_SYNCS`` wait: beyond that (a flood of new tokens, say) a caller's count stays in
        this process until one of its later requests finds room.
        """
        if len(self._syncs) >= _MAX_PENDING_SYNCS:
            self.counter.skip_sync(key)
            return
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(2)
        task = asyncio.ensure_future(anyio.to_thread.run_sync(self._sync, key, limiter=self._limiter))
        self._syncs.add(task)  # held until done (the loop keeps only weak references to tasks)
        task.add_done_callback(self._synced)

    def _sync(self, key: str) -> int:
        # a connection of its own, outside any request's transaction
        if self._sync_sessions is None:
            self._sync_sessions = make_sessionmaker(self.fastapi_app.state.engine)
        factory = self._sync_sessions
        return self.counter.sync(key, lambda: session_scope(factory))

    def _synced(self, task: asyncio.Future[int]) -> None:
        self._syncs.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # fail open: the count stays in this process until the database is back
            log.warning("rate limit not shared: %s", task.exception().__class__.__name__)

    def _count_rejected(self, reason: str) -> None:
        metrics = getattr(self.fastapi_app.state, "metrics", None)
        if metrics is not None:
            metrics.rejected.labels(reason).inc()

    @staticmethod
    def _counting(receive: Receive, limit: int) -> Receive:
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return wrapped

    async def _audited(self, scope: Scope, receive: Receive, send: Send, rid: str, started: float) -> None:
        """Run a write, buffer its answer, commit its audit row, then send the answer."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffer(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            else:
                await send(message)

        try:
            await self.app(scope, receive, buffer)
        except BodyTooLarge as exc:
            start, chunks = None, []
            await _problem_413(exc)(scope, receive, buffer)
        if start is None:
            return
        body = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
        status = start["status"]
        if status < 400 and (scope.get("state") or {}).get("audited"):
            self._observe(scope, status)
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        try:
            await anyio.to_thread.run_sync(self._write_audit, scope, status, body, headers, rid, started)
        except Exception as exc:  # noqa: BLE001
            log.error("audit row not written: %s", exc.__class__.__name__)
            if status < 400:
                response = problem(
                    503,
                    "Service unavailable",
                    "the answer could not be recorded; retry with the same Idempotency-Key",
                    type_="/problems/unavailable",
                    headers={"Retry-After": "2"},
                    message_zh="无法记录审计日志，请使用相同的 Idempotency-Key 重试",
                )
                await response(scope, receive, send)
                return
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _write_audit(
        self, scope: Scope, status: int, body: bytes, headers: dict[str, str], rid: str, started: float
    ) -> None:
        tok = (scope.get("state") or {}).get("token")
        content_type = headers.get("content-type", "")
        ids = _object_ids(scope, body, content_type)
        self._observe(scope, status)
        with session_scope(self.fastapi_app.state.sessionmaker) as session:
            audit_store.record(
                session, method=scope["method"], path=scope["path"], status=status, token_id=getattr(tok, "id", None),
                token_name=getattr(tok, "name", None), role=getattr(tok, "role", None), route=_route(scope),
                object_ids=ids, client=(scope.get("client") or (None,))[0], request_id=rid,
                idempotency_key=_header(scope, b"idempotency-key"),
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )  # fmt: skip

    def _observe(self, scope: Scope, status: int) -> None:
        """Count a pre-check's outcome (the handler leaves it in the request's state)."""
        seen = (scope.get("state") or {}).get("check_outcome")
        metrics = getattr(self.fastapi_app.state, "metrics", None)
        if status < 400 and seen is not None and metrics is not None:
            outcome, category = seen
            metrics.observe_check(outcome=str(outcome), category=str(category))


def _problem_413(exc: BodyTooLarge) -> Any:
    return problem(
        413,
        "Payload too large",
        str(exc.detail),
        type_="/problems/toolarge",
        message_zh=f"请求体超过上限：{exc.detail}",
    )


def install(app: FastAPI, settings: OpsSettings | None = None) -> None:
    """Attach the middleware (outermost but for error handling) and configure JSON logs."""
    ops = settings or OpsSettings()
    app.state.ops = ops
    configure_logging(ops)
    app.add_middleware(OpsMiddleware, fastapi_app=app)
