"""Pre-checks without an Idempotency-Key run on the event loop, on the loop's own pool (committed data, the app's
real lifespan): the same answers as the session path, stored with their audit rows in one statement; bad input
writes nothing; a connection the database dropped answers 503 once and the next check succeeds."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import delete, text

from service.app import create_app
from service.checks import CheckRequest, differences, evaluate_request
from service.settings import Settings
from storage.access import create_token
from storage.database import make_engine, make_sessionmaker
from storage.models import School, Token
from storage.settings import DatabaseSettings
from tests.factories import add_school, offset, square

SW = (110.3300, 25.3100)  # Guilin, away from the other tests' places
SIDE_M = 120.0
NAME = "事件循环小学"


def test_checks_on_the_event_loop(e2e_url: str) -> None:
    engine = make_engine(e2e_url, pool_size=2)
    factory = make_sessionmaker(engine)
    with factory() as s:
        school_id = add_school(s, name=NAME, outline=square(*SW, SIDE_M), levels=["primary"]).id
        checker, checker_row = create_token(s, role="licensing_client", name="loop-checks")
        reader, reader_row = create_token(s, role="admin", name="loop-reader")
        s.commit()
        token_ids = [checker_row.id, reader_row.id]
    app = create_app(Settings(), DatabaseSettings(database_url=e2e_url, pool_size=2))
    try:
        with TestClient(app) as client:
            assert app.state.loop_pool is not None
            headers = {"Authorization": f"Bearer {checker}"}
            east_edge = offset(*SW, east_m=SIDE_M)[0]
            for d in (49.0, 50.0, 51.0, 199.0, 200.0, 201.0):
                lon, lat = offset(east_edge, SW[1], east_m=d, north_m=SIDE_M / 2)
                body = {"category": "internet_cafe", "location": {"lon": lon, "lat": lat}, "crs": "wgs84"}
                r = client.post("/v1/checks", json=body, headers=headers)
                assert r.status_code == 200, r.text
                answer = r.json()
                rule = next(x for x in answer["rules"] if x["rule_id"] == "internet_cafe.school")
                assert rule["nearest"]["school_name"] == NAME
                assert abs(rule["nearest"]["distance_m"] - d) < 0.1, (d, rule["nearest"]["distance_m"])
                with factory() as s:  # the session path, on the same data and rules
                    same = evaluate_request(
                        s, CheckRequest.model_validate(body), rules=app.state.rules,
                        school_accuracy_m=app.state.settings.school_accuracy_m,
                    )  # fmt: skip
                    assert same["outcome"] == answer["outcome"]
                    assert differences(answer, same) == [], d
                    audit = s.execute(
                        text("SELECT path, status, token_id FROM audit_log WHERE request_id = :r"),
                        {"r": r.headers["x-request-id"]},
                    ).all()
                    assert audit == [("/v1/checks", 200, checker_row.id)]
                stored = client.get(
                    f"/v1/decisions/{answer['decision_id']}", headers={"Authorization": f"Bearer {reader}"}
                ).json()
                assert {k: v for k, v in stored.items() if k != "inputs"} == answer
                assert stored["inputs"]["location"] == body["location"]

            with factory() as s:
                before = s.execute(text("SELECT count(*) FROM decisions")).scalar()
            r = client.post(
                "/v1/checks", json={"category": "internet_cafe", "location": {"lon": 110.34, "lat": 91.0},
                                    "crs": "wgs84"}, headers=headers,
            )  # fmt: skip
            assert r.status_code == 422 and r.json()["field"] == "location" and "91" in r.text, r.text
            with factory() as s:
                assert s.execute(text("SELECT count(*) FROM decisions")).scalar() == before

            metrics = client.get("/metrics").text  # one connection made, idle between the sequential checks
            assert 'safezone_db_loop_pool_connections{state="size"} 2.0' in metrics
            assert 'safezone_db_loop_pool_connections{state="open"} 1.0' in metrics
            assert 'safezone_db_loop_pool_connections{state="in_use"} 0.0' in metrics

            # the database drops the loop pool's connection (a restart, an administrator): 503 once, then 200
            pids = [conn.info.backend_pid for conn, *_ in app.state.loop_pool._idle]  # noqa: SLF001
            assert pids
            with engine.connect() as other:
                for pid in pids:
                    assert other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
            body = {"category": "bar", "location": {"lon": SW[0], "lat": SW[1]}, "crs": "wgs84"}
            r = client.post("/v1/checks", json=body, headers=headers)
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/problem+json") and r.headers["retry-after"]
            r = client.post("/v1/checks", json=body, headers=headers)
            assert r.status_code == 200, r.text
    finally:
        with factory() as s:
            s.execute(text("DELETE FROM audit_log WHERE token_id = ANY(:t)"), {"t": token_ids})
            s.execute(text("DELETE FROM decisions WHERE token_id = ANY(:t)"), {"t": token_ids})
            s.execute(delete(Token).where(Token.id.in_(token_ids)))
            s.execute(delete(School).where(School.id == school_id))
            s.commit()
        engine.dispose()
