"""Access control: bearer tokens, roles, and the permission each route declares.

Routes declare what they need — ``Depends(requires("read:premises"))`` — and this module alone decides
which roles hold that permission. 401 without a valid token, 403 with a role that may not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import anyio
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from storage.access import ROLES, TokenInfo, lookup_token_cached, remembered_token

ALL_ROLES = frozenset(ROLES)
_READERS_OF_TRADERS = frozenset(
    {
        "admin",
        "education",
        "market_supervision",
        "culture_tourism",
        "tobacco",
        "urban_management",
        "public_security",
    }
)

#: Which roles hold each permission. The README prints this table.
POLICY: dict[str, frozenset[str]] = {
    "read:schools": ALL_ROLES - {"licensing_client"},
    "read:districts": ALL_ROLES,
    "read:premises": _READERS_OF_TRADERS,
    "read:rules": ALL_ROLES,
    "write:schools": frozenset({"admin", "education"}),
    "write:imports": frozenset({"admin"}),
    "check": frozenset({"admin", "market_supervision", "culture_tourism", "tobacco", "licensing_client"}),
    "read:decisions": frozenset({"admin", "market_supervision", "culture_tourism", "tobacco", "licensing_client"}),
    "read:jobs": ALL_ROLES,
    "read:ogc": ALL_ROLES,  # the OGC API's own pages; each collection then needs its /v1 read permission
    "read:maps": ALL_ROLES - {"licensing_client"},
    "read:open_areas": ALL_ROLES,  # zones only, no names: public-safe
    "read:findings": _READERS_OF_TRADERS,
    "write:scans": frozenset({"admin", "education", "market_supervision", "urban_management"}),
    "read:audit": frozenset({"admin"}),
    "read:cases": _READERS_OF_TRADERS,
    "write:cases": _READERS_OF_TRADERS,
    "report:field": frozenset({"admin", "urban_management", "public_security", "education", "market_supervision"}),
    "read:reports": _READERS_OF_TRADERS,
    "admin": frozenset({"admin"}),
    "plan:patrols": frozenset({"admin", "public_security", "urban_management", "education"}),
    "read:cameras": frozenset({"admin", "public_security", "education"}),
}

_bearer = HTTPBearer(auto_error=False, description="API token from `safezone token create`")


async def current_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenInfo:
    """The caller's token; 401 when missing or not valid.

    Asynchronous: a token this process remembers costs no thread hop; only a lookup goes to a thread.
    """
    if credentials is None or not credentials.credentials:
        raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    state = request.app.state
    ttl = state.settings.token_cache_s
    found, info = remembered_token(credentials.credentials) if ttl > 0 else (False, None)
    if not found:
        info = await anyio.to_thread.run_sync(
            lambda: lookup_token_cached(state.sessionmaker, credentials.credentials, ttl_s=ttl)
        )
    if info is None:
        raise HTTPException(401, "the token is not valid or has been revoked", headers={"WWW-Authenticate": "Bearer"})
    request.state.token = info
    return info


def requires(permission: str) -> Callable[..., TokenInfo]:
    """A dependency that lets through only tokens whose role holds ``permission``."""
    if permission not in POLICY:
        msg = f"unknown permission {permission!r}"
        raise ValueError(msg)
    allowed = POLICY[permission]

    async def _check(token: Annotated[TokenInfo, Depends(current_token)]) -> TokenInfo:
        if token.role not in allowed:
            raise HTTPException(403, f"role {token.role!r} may not {permission}")
        return token

    _check.permission = permission  # type: ignore[attr-defined]
    return _check
