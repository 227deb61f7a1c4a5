"""The audit listing: a page of audit rows with a ``next`` link (keyset on the row id, newest first)."""

from __future__ import annotations

from typing import Any

from fastapi import Request


def page(request: Request, entries: list[dict[str, Any]], *, next_before: int | None) -> dict[str, Any]:
    """The answer of ``GET /v1/audit``: entries and links (``rel=next`` while older rows remain)."""
    links = [{"rel": "self", "type": "application/json", "href": str(request.url)}]
    if next_before is not None:
        links.append(
            {
                "rel": "next",
                "type": "application/json",
                "href": str(request.url.include_query_params(before=next_before)),
            }
        )
    return {"entries": entries, "count": len(entries), "links": links}
