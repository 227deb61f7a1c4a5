"""Bulk writes inside the caller's transaction: COPY into a temporary table, then set-based SQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import sql
from sqlalchemy.orm import Session


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
