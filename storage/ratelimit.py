"""Rate limits in PostgreSQL: requests counted per caller in fixed one-minute windows.

The count lives in the database so that every replica of the API shares it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session

WINDOW_S = 60
KEEP_WINDOWS = 5


def hit(session: Session, *, key: str) -> tuple[int, dt.datetime]:
    """Count one request for ``key`` in the current window; returns the count so far and the window's end.

    The counter row is hot (every request of one token updates it), so its transaction does not wait for
    the WAL flush: a counter lost in a crash costs nothing, a lock held during an fsync costs throughput.
    """
    session.execute(text("SET LOCAL synchronous_commit = off"))
    row = session.execute(
        text(
            "INSERT INTO rate_windows (key, window_start, count) VALUES (:key, date_trunc('minute', now()), 1) "
            "ON CONFLICT (key, window_start) DO UPDATE SET count = rate_windows.count + 1 "
            "RETURNING count, window_start"
        ),
        {"key": key},
    ).one()
    count, start = int(row[0]), row[1]
    if count == 1:
        session.execute(
            text("DELETE FROM rate_windows WHERE key = :key AND window_start < :oldest"),
            {"key": key, "oldest": start - dt.timedelta(seconds=WINDOW_S * KEEP_WINDOWS)},
        )
    return count, start + dt.timedelta(seconds=WINDOW_S)


def seconds_until(end: dt.datetime, *, now: dt.datetime | None = None) -> int:
    now = now or dt.datetime.now(dt.UTC)
    return max(1, int((end - now).total_seconds() + 0.999))
