"""401/403 for every route × every role, generated from the app's own route table.

Each route's permission is read from its dependencies (the ``permission`` attribute that
``service.auth.requires`` and ``service.maps.page_access`` set); a route with none must be on the short
public list below, so a new route cannot slip in without a permission — or without being tested here.
"""

from __future__ import annotations

import typing
import uuid
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from service.auth import POLICY
from storage.access import ROLES

PUBLIC = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}
PROBLEM = "application/problem+json"


def _permissions(dependant: Any) -> set[str]:
    found: set[str] = set()
    for sub in dependant.dependencies:
        perm = getattr(sub.call, "permission", None)
        if perm:
            found.add(perm)
        found |= _permissions(sub)
    return found


def _sample(annotation: Any) -> str:
    """A value of the right type for a path parameter (the object need not exist)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return str(args[0])
    if annotation is int:
        return "1"
    if annotation is uuid.UUID:
        return str(uuid.uuid4())
    return "x"


def route_table(app: Any) -> list[tuple[str, str, str, frozenset[str]]]:
    """(method, path template, concrete url, permissions) for every HTTP route of the app."""
    rows = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        path = ctx.path or getattr(route, "path", "")
        methods = sorted(getattr(ctx._effective_route, "methods", None) or getattr(route, "methods", None) or set())
        if not isinstance(route, APIRoute):
            for method in methods:
                if method != "HEAD":
                    rows.append((method, path, path, frozenset()))
            continue
        url = path
        for param in route.dependant.path_params:
            url = url.replace("{" + param.name + "}", _sample(param.field_info.annotation))
        perms = frozenset(_permissions(route.dependant))
        for method in methods:
            rows.append((method, path, url, perms))
    return rows


@pytest.fixture
def table(client) -> list[tuple[str, str, str, frozenset[str]]]:  # noqa: ANN001
    return route_table(client.app)


def test_every_route_declares_a_permission_or_is_public(table) -> None:  # noqa: ANN001
    undeclared = {(m, p) for m, p, _, perms in table if not perms} - PUBLIC
    assert not undeclared, f"routes without a permission (add requires(...) or make them public here): {undeclared}"
    for _, path, _, perms in table:
        assert perms <= POLICY.keys(), f"{path} declares a permission missing from POLICY: {perms - POLICY.keys()}"
    assert len([row for row in table if row[3]]) >= 10  # the table really was read


def test_no_token_or_a_bad_token_is_401_on_every_protected_route(client, table) -> None:  # noqa: ANN001
    for method, path, url, perms in table:
        if not perms:
            continue
        for headers in ({}, {"Authorization": "Bearer sz_not-a-token"}):
            r = client.request(method, url, headers=headers)
            assert r.status_code == 401, f"{method} {path} with {headers or 'no token'}: {r.status_code} {r.text[:200]}"
            assert r.headers["content-type"].startswith(PROBLEM)
            assert r.headers.get("www-authenticate") == "Bearer"


def test_every_role_gets_exactly_what_the_policy_grants(client, auth, table) -> None:  # noqa: ANN001
    headers = {role: auth(role) for role in ROLES}
    checked = 0
    for method, path, url, perms in table:
        if not perms:
            continue
        for role in ROLES:
            r = client.request(method, url, headers=headers[role])
            allowed = all(role in POLICY[p] for p in perms)
            if allowed:
                assert r.status_code not in (401, 403), f"{role} refused on {method} {path}: {r.text[:300]}"
                assert r.status_code < 500, f"{role} on {method} {path}: {r.status_code} {r.text[:300]}"
            else:
                assert r.status_code == 403, f"{role} not refused on {method} {path}: {r.status_code}"
                assert r.headers["content-type"].startswith(PROBLEM)
                assert role in r.json()["detail"]
            checked += 1
    assert checked >= 10 * len(ROLES)


def test_public_routes_need_no_token(client, table) -> None:  # noqa: ANN001
    for method, path, url, _perms in table:
        if (method, path) in PUBLIC and "{" not in path:
            r = client.request(method, url)
            assert r.status_code in (200, 503), f"{method} {path}: {r.status_code}"


def test_a_role_cannot_read_another_tokens_job(client, session, make_token) -> None:  # noqa: ANN001
    from storage.access import lookup_token
    from storage.jobs import enqueue

    owner_clear = make_token("market_supervision", name="owner")
    other_clear = make_token("market_supervision", name="other")
    admin_clear = make_token("admin", name="boss")
    owner = lookup_token(session, owner_clear)
    job_id = enqueue(session, kind="ping", params={"message": "mine"}, token_id=owner.id)
    session.commit()

    def get(clear: str):  # noqa: ANN202
        return client.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {clear}"})

    mine = get(owner_clear)
    assert mine.status_code == 200
    assert (mine.json()["id"], mine.json()["kind"]) == (str(job_id), "ping")
    stranger = get(other_clear)
    assert stranger.status_code == 404
    assert stranger.headers["content-type"].startswith(PROBLEM)
    assert "ping" not in stranger.text
    assert get(admin_clear).json()["id"] == str(job_id)
