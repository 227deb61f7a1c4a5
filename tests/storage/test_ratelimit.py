"""Rate counts shared through PostgreSQL: exact within a process, one sync per caller at a time, shared
between processes (two counters here, as two replicas of the API would hold)."""

from __future__ import annotations

import threading
import uuid

import pytest

from storage.database import make_engine, make_sessionmaker, session_scope
from storage.ratelimit import RateCounter


@pytest.fixture
def scope(database_url: str):  # noqa: ANN201
    engine = make_engine(database_url, pool_size=2)
    factory = make_sessionmaker(engine)
    yield lambda: session_scope(factory)
    engine.dispose()


def test_one_sync_at_a_time_and_exact_counts_while_it_runs(scope) -> None:  # noqa: ANN001
    key = uuid.uuid4().hex
    counter = RateCounter(sync_every_s=0)  # every hit would be due, but for the sync in flight
    count, _, due = counter.hit(key)
    assert (count, due) == (1, True)

    # while that sync waits for the database, other requests are counted and none starts a second sync
    entered, release = threading.Event(), threading.Event()

    def slow_scope():  # noqa: ANN202
        entered.set()
        release.wait(5)
        return scope()

    syncing = threading.Thread(target=counter.sync, args=(key, slow_scope))
    syncing.start()
    assert entered.wait(5)
    seen = [counter.hit(key) for _ in range(5)]
    assert [c for c, _, _ in seen] == [2, 3, 4, 5, 6]  # the hit in flight still counts
    assert not any(due for _, _, due in seen)
    release.set()
    syncing.join(5)
    assert counter.hit(key)[:3:2] == (7, True)  # the sync is done: the next hit may start one


def test_two_replicas_learn_each_others_counts(scope) -> None:  # noqa: ANN001
    key = uuid.uuid4().hex
    a, b = RateCounter(sync_every_s=0), RateCounter(sync_every_s=0)
    for _ in range(3):
        a.hit(key)
    assert a.sync(key, scope) == 3
    for _ in range(2):
        b.hit(key)
    assert b.sync(key, scope) == 5  # b learns a's three
    assert a.hit(key)[0] == 4  # a has not synced since: it knows only its own
    assert a.sync(key, scope) == 6


def test_a_failed_sync_keeps_the_hits_for_the_next(scope) -> None:  # noqa: ANN001
    key = uuid.uuid4().hex
    counter = RateCounter(sync_every_s=60)

    def broken():  # noqa: ANN202
        raise ConnectionError("database away")

    assert counter.hit(key)[2] is True
    counter.hit(key)
    with pytest.raises(ConnectionError):
        counter.sync(key, broken)
    count, _, due = counter.hit(key)
    assert (count, due) == (3, True)  # nothing lost, and a sync is due again at once
    assert counter.sync(key, scope) == 3


def test_a_skipped_sync_is_asked_for_again() -> None:
    key = uuid.uuid4().hex
    counter = RateCounter(sync_every_s=60)
    assert counter.hit(key)[2] is True
    assert counter.hit(key)[2] is False  # one sync at a time
    counter.skip_sync(key)  # no room for it
    count, _, due = counter.hit(key)
    assert (count, due) == (3, True)
