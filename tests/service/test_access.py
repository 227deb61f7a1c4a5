"""Tokens and roles against protected endpoints: 401 without, 403 with a role that may not, 200 else."""

from __future__ import annotations

import pytest

from service.auth import POLICY
from storage.access import ROLES, revoke_token

PROBLEM = "application/problem+json"

# (path, permission the route declares)
PROTECTED = [
    ("/v1/schools", "read:schools"),
    ("/v1/premises", "read:premises"),
    ("/v1/districts", "read:districts"),
]


@pytest.mark.parametrize("path", [p for p, _ in PROTECTED])
def test_no_token_is_401(client, path: str) -> None:  # noqa: ANN001
    r = client.get(path)
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["status"] == 401


def test_unknown_token_is_401(client) -> None:  # noqa: ANN001
    r = client.get("/v1/schools", headers={"Authorization": "Bearer sz_not-a-real-token"})
    assert r.status_code == 401


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("path", "permission"), PROTECTED)
def test_each_role(client, auth, role: str, path: str, permission: str) -> None:  # noqa: ANN001
    r = client.get(path, headers=auth(role))
    if role in POLICY[permission]:
        assert r.status_code == 200, r.text
        assert r.json()["type"] == "FeatureCollection"
    else:
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == PROBLEM
        assert role in r.json()["detail"]


def test_viewer_cannot_read_trader_names(client, auth) -> None:  # noqa: ANN001
    assert client.get("/v1/premises", headers=auth("viewer")).status_code == 403
    assert client.get("/v1/premises", headers=auth("market_supervision")).status_code == 200


def test_revoked_token_is_401(client, session, make_token) -> None:  # noqa: ANN001
    from storage.access import lookup_token

    clear = make_token("admin", name="to-revoke")
    assert client.get("/v1/schools", headers={"Authorization": f"Bearer {clear}"}).status_code == 200
    revoke_token(session, token_id=lookup_token(session, clear).id)
    session.commit()
    assert client.get("/v1/schools", headers={"Authorization": f"Bearer {clear}"}).status_code == 401


def test_tokens_are_stored_hashed(session, make_token) -> None:  # noqa: ANN001
    from sqlalchemy import text

    clear = make_token("viewer", name="hashed")
    stored = session.execute(text("SELECT token_hash, prefix FROM tokens WHERE name = 'hashed'")).one()
    assert clear not in stored.token_hash
    assert len(stored.token_hash) == 64
    assert clear.startswith(stored.prefix)


def test_open_endpoints_need_no_token(client) -> None:  # noqa: ANN001
    assert client.get("/health").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    r = client.get("/static/vendor/leaflet-1.9.4/leaflet.js")
    assert r.status_code == 200


def test_unknown_role_refused(session) -> None:  # noqa: ANN001
    from geo.errors import InvalidInput
    from storage.access import create_token

    with pytest.raises(InvalidInput, match="superuser"):
        create_token(session, role="superuser", name="x")
