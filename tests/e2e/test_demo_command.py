"""`safezone demo` refuses a database that is not there or not migrated before it generates the city."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from service.cli import app
from storage.database import _script_heads, drop_database, ensure_database


def _demo(url: str, state_dir: Path):  # noqa: ANN202
    env = {"DATABASE_URL": url, "SAFEZONE_STATE_DIR": str(state_dir), "COLUMNS": "400"}
    return CliRunner().invoke(app, ["demo", "--schools", "5", "--premises", "50", "--seed", "3"], env=env)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_demo_names_a_missing_database_and_generates_nothing(database_url: str, tmp_path: Path) -> None:
    name = f"safezone_nodb_{os.getpid()}"
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    result = _demo(url, tmp_path)
    out = _flat(result.output)
    assert result.exit_code != 0, out
    assert f'database "{name}" does not exist' in out, out
    assert "run `safezone db up` first" in out, out
    assert not (tmp_path / "demo").exists()  # failed before generating a file


def test_demo_names_an_unmigrated_database(database_url: str, tmp_path: Path) -> None:
    name = f"safezone_bare_{os.getpid()}"
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    assert ensure_database(url)
    try:
        result = _demo(url, tmp_path)
        out = _flat(result.output)
        assert result.exit_code != 0, out
        assert "the database is at migration none" in out, out
        assert _script_heads()[0] in out, out
        assert not (tmp_path / "demo").exists()
    finally:
        drop_database(url)
