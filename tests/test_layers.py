"""Imports go one way: service → storage → geo, service → geo. geo/ stays pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "geo": {
        "fastapi",
        "starlette",
        "sqlalchemy",
        "geoalchemy2",
        "psycopg",
        "procrastinate",
        "storage",
        "service",
        "uvicorn",
    },
    "storage": {"fastapi", "starlette", "service", "uvicorn"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer: str) -> None:
    offenders = {}
    for path in sorted((REPO / layer).rglob("*.py")):
        bad = _imports(path) & FORBIDDEN[layer]
        if bad:
            offenders[str(path.relative_to(REPO))] = sorted(bad)
    assert offenders == {}


def test_the_rule_bites(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import sqlalchemy\nfrom fastapi import FastAPI\n")
    assert _imports(bad) & FORBIDDEN["geo"] == {"sqlalchemy", "fastapi"}
