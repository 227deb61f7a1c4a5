"""Tokens, users and departments. Tokens are stored as SHA-256 hashes only."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from geo.errors import InvalidInput, NotFound
from storage.models import Department, Token

ROLES: tuple[str, ...] = (
    "admin",
    "education",
    "market_supervision",
    "culture_tourism",
    "tobacco",
    "urban_management",
    "public_security",
    "licensing_client",
    "viewer",
)

#: Departments known out of the box (a rule pack may name more; they are added on start-up).
DEPARTMENTS: dict[str, tuple[str, str]] = {
    "education": ("教育局", "Education bureau"),
    "market_supervision": ("市场监督管理局", "Market supervision"),
    "culture_tourism": ("文化广电旅游局", "Culture and tourism"),
    "tobacco": ("烟草专卖局", "Tobacco monopoly bureau"),
    "urban_management": ("城市管理局", "Urban management"),
    "public_security": ("公安局", "Public security"),
    "ecology_environment": ("生态环境局", "Ecology and environment"),
    "emergency_management": ("应急管理局", "Emergency management"),
}


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: str
    department: str | None
    prefix: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_departments(session: Session, extra: dict[str, str] | None = None) -> None:
    """Insert the known departments (and ``extra`` id → Chinese name) if missing."""
    rows = [{"id": k, "name_zh": zh, "name_en": en} for k, (zh, en) in DEPARTMENTS.items()]
    for key, zh in (extra or {}).items():
        if key not in DEPARTMENTS:
            rows.append({"id": key, "name_zh": zh, "name_en": key.replace("_", " ").capitalize()})
    session.execute(insert(Department).values(rows).on_conflict_do_nothing(index_elements=["id"]))


def create_token(
    session: Session, *, role: str, name: str, department: str | None = None, replace: bool = False
) -> tuple[str, TokenInfo]:
    """Create a token; returns the clear token (shown once) and its record.

    ``replace`` revokes the live tokens of the same name first (so re-running a set-up script does not
    pile up tokens).
    """
    if role not in ROLES:
        msg = f"unknown role {role!r}; choose one of: {', '.join(ROLES)}"
        raise InvalidInput(msg, field="role", value=role, message_zh=f"未知角色 {role!r}")
    ensure_departments(session)
    if department is not None and session.get(Department, department) is None:
        msg = f"unknown department {department!r}"
        raise InvalidInput(msg, field="department", value=department, message_zh=f"未知部门 {department!r}")
    if replace:
        session.execute(
            update(Token)
            .where(Token.name == name, Token.revoked_at.is_(None))
            .values(revoked_at=dt.datetime.now(dt.UTC))
        )
        forget_tokens()
    clear = "sz_" + secrets.token_urlsafe(32)
    row = Token(token_hash=hash_token(clear), prefix=clear[:10], name=name, role=role, department_id=department)
    session.add(row)
    session.flush()
    return clear, TokenInfo(row.id, name, role, department, row.prefix)


def revoke_token(session: Session, *, token_id: int) -> None:
    row = session.get(Token, token_id)
    if row is None:
        msg = f"no token with id {token_id}"
        raise NotFound(msg, field="id", value=token_id)
    row.revoked_at = row.revoked_at or dt.datetime.now(dt.UTC)
    session.flush()
    forget_tokens()


def list_tokens(session: Session) -> list[dict[str, object]]:
    rows = session.scalars(select(Token).order_by(Token.id)).all()
    return [
        {
            "id": r.id,
            "name": r.name,
            "role": r.role,
            "department": r.department_id,
            "prefix": r.prefix,
            "created_at": r.created_at.isoformat(),
            "revoked": r.revoked_at is not None,
        }
        for r in rows
    ]


def lookup_token(session: Session, clear: str) -> TokenInfo | None:
    """The live token with this value, or None."""
    row = session.scalars(
        select(Token).where(Token.token_hash == hash_token(clear), Token.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    return TokenInfo(row.id, row.name, row.role, row.department_id, row.prefix)


# --- a short-lived cache of looked-up tokens ----------------------------------------------------------------

_cache: dict[str, tuple[float, TokenInfo | None]] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 10_000


def forget_tokens() -> None:
    """Drop every cached token of this process (called on revocation)."""
    with _cache_lock:
        _cache.clear()


def remembered_token(clear: str) -> tuple[bool, TokenInfo | None]:
    """(True, the token or None) when this process remembers the lookup, else (False, None); no I/O."""
    hit = _cache.get(hash_token(clear))
    if hit is not None and hit[0] > time.monotonic():
        return True, hit[1]
    return False, None


def lookup_token_cached(factory: sessionmaker[Session], clear: str, *, ttl_s: float) -> TokenInfo | None:
    """:func:`lookup_token`, remembered for ``ttl_s`` seconds (0: always ask the database).

    A token revoked in this process is forgotten at once; one revoked by another process (the CLI, another
    API replica) stops working here within ``ttl_s``. Unknown tokens are remembered too, so a flood of
    bad tokens does not become a flood of queries.
    """
    if ttl_s <= 0:
        with factory() as session:
            return lookup_token(session, clear)
    found, info = remembered_token(clear)
    if found:
        return info
    key = hash_token(clear)
    now = time.monotonic()
    with factory() as session:
        info = lookup_token(session, clear)
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = (now + ttl_s, info)
    return info
