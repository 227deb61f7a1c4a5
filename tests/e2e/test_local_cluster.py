"""The project's own PostgreSQL cluster across clones: a clone deleted and made again at the same path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from storage.localdb import LocalCluster


@pytest.mark.skipif(os.geteuid() != 0, reason="only root keeps the cluster outside an unreachable clone")
def test_a_new_clone_at_the_same_path_replaces_the_orphaned_cluster(tmp_path: Path) -> None:
    clone = tmp_path / "clone"  # under pytest's 0700 folder: the postgres user cannot reach it
    first = LocalCluster(clone / ".safezone", db_name="orphan")
    first.start()
    outside = first.root
    try:
        assert not outside.is_relative_to(clone), outside
        shutil.rmtree(clone)  # the clone goes; its cluster, still running, stays outside it
        second = LocalCluster(clone / ".safezone", db_name="orphan")
        second.start()  # used to fail: initdb into the earlier clone's non-empty data folder
        assert second.root == outside
        engine = create_engine(second.url("postgres"))
        with engine.connect() as conn:  # the new clone's password opens it
            assert conn.execute(text("SELECT current_user")).scalar_one() == "safezone"
        engine.dispose()
    finally:
        LocalCluster(clone / ".safezone", db_name="orphan").destroy()
        shutil.rmtree(outside, ignore_errors=True)
