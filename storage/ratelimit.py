"""Rate limits shared through PostgreSQL: requests counted per caller in fixed one-minute windows.

The count lives in the database so that every replica of the API shares it. A request does not pay a
round trip for it, nor wait for one: each process counts its callers' requests in memory and adds them to
the shared row at most every ``sync_every_s`` (and on a caller's first request of each minute), in the
background and one sync per caller at a time, learning the other replicas' counts in the same statement.
A replica therefore sees the others' requests up to about ``sync_every_s`` late; within one process the
count is exact, syncs in flight included.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

WINDOW_S = 60
KEEP_WINDOWS = 5


@dataclass
class _Window:
    start: dt.datetime
    shared: int = 0  # the database's count at the last sync (this process's flushed hits included)
    pending: int = 0  # this process's hits not yet added to it
    inflight: int = 0  # hits being added by the sync in flight
    syncing: bool = False  # a sync is in flight (one per caller at a time)
    synced_at: float = float("-inf")

    @property
    def count(self) -> int:
        return self.shared + self.inflight + self.pending


def window_start(now: dt.datetime) -> dt.datetime:
    return now.replace(second=0, microsecond=0)


def add(session: Session, *, key: str, start: dt.datetime, n: int) -> int:
    """Add ``n`` requests to ``key``'s window starting at ``start``; returns the window's count.

    The counter row is hot (every replica updates it), so its transaction does not wait for the WAL flush:
    a counter lost in a crash costs nothing, a lock held during an fsync costs throughput.
    """
    session.execute(text("SET LOCAL synchronous_commit = off"))
    count = session.execute(
        text(
            "INSERT INTO rate_windows (key, window_start, count) VALUES (:key, :start, :n) "
            "ON CONFLICT (key, window_start) DO UPDATE SET count = rate_windows.count + :n "
            "RETURNING count"
        ),
        {"key": key, "start": start, "n": n},
    ).scalar_one()
    if count == n:
        session.execute(
            text("DELETE FROM rate_windows WHERE key = :key AND window_start < :oldest"),
            {"key": key, "oldest": start - dt.timedelta(seconds=WINDOW_S * KEEP_WINDOWS)},
        )
    return int(count)


class RateCounter:
    """Per-caller counts of one process, shared with the others through :func:`add`."""

    def __init__(self, *, sync_every_s: float = 1.0, max_keys: int = 100_000) -> None:
        self.sync_every_s = sync_every_s
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def hit(self, key: str, *, now: dt.datetime | None = None) -> tuple[int, dt.datetime, bool]:
        """Count one request: (the count so far, the window's end, whether to start a :meth:`sync` now).

        Only one caller is told to sync at a time; the others go on counting until it is done.
        """
        now = now or dt.datetime.now(dt.UTC)
        start = window_start(now)
        with self._lock:
            w = self._windows.get(key)
            if w is None or w.start != start:
                if len(self._windows) >= self.max_keys:
                    self._windows.clear()
                w = self._windows[key] = _Window(start)
            w.pending += 1
            due = not w.syncing and (
                w.synced_at == float("-inf") or time.monotonic() - w.synced_at >= self.sync_every_s
            )
            w.syncing = w.syncing or due
            return w.count, start + dt.timedelta(seconds=WINDOW_S), due

    def skip_sync(self, key: str) -> None:
        """Give up the sync :meth:`hit` asked for (no room for it now): a later hit asks again."""
        with self._lock:
            w = self._windows.get(key)
            if w is not None:
                w.syncing = False

    def sync(self, key: str, session_scope: Callable[[], AbstractContextManager[Session]]) -> int:
        """Add this process's pending hits of ``key`` to the shared count; returns the up-to-date count."""
        with self._lock:
            w = self._windows.get(key)
            if w is None:
                return 0
            n, start = w.pending, w.start
            w.pending -= n
            w.inflight += n
            w.synced_at = time.monotonic()
            w.syncing = True
        try:
            with session_scope() as session:
                shared = add(session, key=key, start=start, n=n) if n else w.shared
        except Exception:
            with self._lock:
                w.pending += n  # counted again at the next sync
                w.inflight -= n
                w.synced_at = float("-inf")
                w.syncing = False
            raise
        with self._lock:
            w.inflight -= n
            w.shared = max(w.shared, shared)
            w.syncing = False
            return w.count


def seconds_until(end: dt.datetime, *, now: dt.datetime | None = None) -> int:
    now = now or dt.datetime.now(dt.UTC)
    return max(1, int((end - now).total_seconds() + 0.999))
