"""Bulk writes inside the caller's transaction: COPY into a temporary table, then set-based SQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.orm import Session

#: below this many rows written, a plan made on stale statistics costs little whatever it is
_ANALYZE_FROM_ROWS = 1_000
_KNOWN_ROWS = text("SELECT reltuples FROM pg_class WHERE oid = CAST(:table AS regclass)")


def copy_into_temp(
    session: Session,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[Any]],
    *,
    unlogged: bool = False,
) -> int:
    """Create ``table`` as a temporary table (dropped at commit) and COPY ``rows`` into it.

    ``unlogged``: an unlogged table in the first schema of the search path instead (parallel workers can read
    it; the caller drops it).

    ``columns`` are (name, PostgreSQL type) pairs fixed by the calling code; values are sent by COPY,
    never interpolated. Returns the number of rows copied.
    """
    raw = session.connection().connection.driver_connection
    ident = sql.Identifier(table)
    col_defs = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in columns)
    col_names = sql.SQL(", ").join(sql.Identifier(n) for n, _ in columns)
    n = 0
    with raw.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
        create = "CREATE UNLOGGED TABLE {} ({})" if unlogged else "CREATE TEMP TABLE {} ({}) ON COMMIT DROP"
        cur.execute(sql.SQL(create).format(ident, col_defs))
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(ident, col_names)) as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        cur.execute(sql.SQL("ANALYZE {}").format(ident))
    return n


def analyze_if_outgrown(session: Session, table: str, written: int) -> bool:
    """ANALYZE ``table`` when this transaction wrote more rows into it than its statistics know of.

    The rest of an import's transaction joins what it just wrote (permits to premises, the premises grid's
    recount). Statistics that know of fewer rows than were written mislead the planner: after a vacuum of
    an emptied table (say, an import rolled back) ``reltuples`` is 0, every row counts as one, and a nested
    loop over 150,000 premises rescans 150,000 staged permits for each. ANALYZE in the transaction sees its
    own rows. It holds its lock until the commit, so only large writes into tables that outgrew their
    statistics pay for it; a routine import into a known table does not. Returns whether it ran.
    """
    if written < _ANALYZE_FROM_ROWS:
        return False
    if session.execute(_KNOWN_ROWS, {"table": table}).scalar_one() >= written:
        return False
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cur:
        cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    return True
