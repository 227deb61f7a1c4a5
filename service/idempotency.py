"""``Idempotency-Key`` on writes: a retried request gets the first answer back and writes nothing twice.

Keys are per token and stored in PostgreSQL (``storage.idempotency``). Two dependencies:

- :data:`IdempotencyDep` for handlers that write through the request's session (checks, batch checks):
  the key is claimed in that same transaction and the answer stored in it, so the decision and the key
  commit together — or neither does;
- :data:`OwnTransactionIdempotencyDep` for handlers that run their own transactions (imports): the key
  is claimed in a transaction of its own, released if the request fails, completed with the answer.

A handler ends with ``return idem.save(answer)``. A retry with the same key and the same request gets the
stored answer (header ``Idempotent-Replayed: true``); the same key with a different request is a 422; a
key whose first request is still running is a 409.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import UploadFile

from geo.errors import Conflict, InvalidInput
from service.auth import current_token
from service.deps import SessionDep
from storage import idempotency as store
from storage.access import TokenInfo
from storage.database import session_scope

KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"

KeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=KEY_PATTERN,
        description="any unique string (≤ 200 printable ASCII characters); a retry with it returns the first answer",
    ),
]


class IdempotentReplay(Exception):  # noqa: N818 - not an error: it carries the stored answer
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__("replay")
        self.status = status
        self.body = body


@dataclass
class Idempotency:
    """The claimed key of this request (``key`` None: the request had none)."""

    key: str | None
    token_id: int
    session: Session | None = None
    factory: sessionmaker[Session] | None = None
    saved: bool = False

    def save(self, answer: dict[str, Any], *, status: int = 200) -> dict[str, Any]:
        """Store ``answer`` under the key (if any) and return it."""
        if self.key is None:
            return answer
        if self.session is not None:
            store.complete(self.session, token_id=self.token_id, key=self.key, status=status, response=answer)
        elif self.factory is not None:
            with session_scope(self.factory) as session:
                store.complete(session, token_id=self.token_id, key=self.key, status=status, response=answer)
        self.saved = True
        return answer


async def _fingerprint(request: Request) -> str:
    """A hash of what makes two requests the same: method, path, query and body (uploads by content)."""
    digest = hashlib.sha256(f"{request.method} {request.url.path}?{request.url.query}\n".encode())
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        for name, value in sorted(form.multi_items(), key=lambda kv: kv[0]):
            digest.update(name.encode() + b"\0")
            if isinstance(value, UploadFile):
                digest.update((value.filename or "").encode() + b"\0")
                await value.seek(0)
                while chunk := await value.read(1 << 20):
                    digest.update(chunk)
                await value.seek(0)
            else:
                digest.update(str(value).encode())
            digest.update(b"\0")
    else:
        digest.update(await request.body())
    return digest.hexdigest()


def _check(stored: store.Stored | None, fingerprint: str, key: str) -> None:
    if stored is None:
        return
    if stored.fingerprint != fingerprint:
        msg = f"Idempotency-Key {key!r} was used for a different request"
        raise InvalidInput(msg, field="Idempotency-Key", value=key, message_zh=f"幂等键 {key!r} 已用于另一个不同的请求")
    if stored.status != "done" or stored.response is None:
        msg = f"the request with Idempotency-Key {key!r} is still running; retry shortly"
        zh = f"幂等键 {key!r} 的请求仍在处理中，请稍后重试"
        raise Conflict(msg, field="Idempotency-Key", value=key, message_zh=zh)
    raise IdempotentReplay(stored.response_status or 200, stored.response)


def claim(session: Session, request: Request, token: TokenInfo, fingerprint: str, key: str | None) -> Idempotency:
    """Claim ``key`` in ``session``'s transaction (for handlers that open their own session)."""
    return same_transaction(request, session, token, fingerprint, key)


async def fingerprint_if_keyed(request: Request, key: KeyHeader = None) -> str:
    """The request's fingerprint when it carries an ``Idempotency-Key``, else ``""`` (the body unread)."""
    return await _fingerprint(request) if key is not None else ""


def same_transaction(
    request: Request,
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(current_token)],
    fingerprint: Annotated[str, Depends(_fingerprint)],
    key: KeyHeader = None,
) -> Idempotency:
    if key is None:
        return Idempotency(None, token.id)
    stored = store.claim(
        session, token_id=token.id, key=key, fingerprint=fingerprint, method=request.method, path=request.url.path
    )
    _check(stored, fingerprint, key)
    return Idempotency(key, token.id, session=session)


def own_transaction(
    request: Request,
    token: Annotated[TokenInfo, Depends(current_token)],
    fingerprint: Annotated[str, Depends(_fingerprint)],
    key: KeyHeader = None,
) -> Iterator[Idempotency]:
    if key is None:
        yield Idempotency(None, token.id)
        return
    factory = request.app.state.sessionmaker
    with session_scope(factory) as session:
        stored = store.claim(
            session, token_id=token.id, key=key, fingerprint=fingerprint, method=request.method, path=request.url.path
        )
    _check(stored, fingerprint, key)
    ctx = Idempotency(key, token.id, factory=factory)
    try:
        yield ctx
    finally:
        if not ctx.saved:
            with session_scope(factory) as session:
                store.release(session, token_id=token.id, key=key)


IdempotencyDep = Annotated[Idempotency, Depends(same_transaction)]
OwnTransactionIdempotencyDep = Annotated[Idempotency, Depends(own_transaction, scope="function")]


async def _replay(request: Request, exc: IdempotentReplay) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"}
    if isinstance(exc.body.get("href"), str) and exc.status == 202:
        headers["Location"] = exc.body["href"]
    return JSONResponse(exc.body, status_code=exc.status, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(IdempotentReplay, _replay)  # type: ignore[arg-type]
