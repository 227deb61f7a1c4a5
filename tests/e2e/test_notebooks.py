"""Every notebook in ``notebooks/`` runs top to bottom (nbclient, the venv's ``python3`` kernel) on the e2e database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.e2e

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CELL_TIMEOUT_S = 300


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        parts.append(cell.source)
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(parts)


def _images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))


def _run(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    # raises CellExecutionError (naming the cell and the traceback) on any error
    NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    return nb


@pytest.fixture(scope="module")
def executed(e2e_url: str, nanjing_osm: Path) -> Iterator[dict[str, nbformat.NotebookNode]]:
    """Every notebook, executed once against the e2e database (with the real Nanjing extract)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", e2e_url)
        mp.setenv("SAFEZONE_SHARED_DIR", str(nanjing_osm.parents[2]))
        yield {path.name: _run(path) for path in sorted(NOTEBOOKS.glob("*.ipynb"))}


def test_every_notebook_runs_without_error_and_credits_osm(executed: dict[str, nbformat.NotebookNode]) -> None:
    assert "nanjing_city_analysis.ipynb" in executed
    for name, nb in executed.items():
        assert "© OpenStreetMap contributors" in _text(nb), name


def test_city_analysis_shows_zones_findings_charts_and_map(executed: dict[str, nbformat.NotebookNode]) -> None:
    nb = executed["nanjing_city_analysis.ipynb"]
    text = _text(nb)
    assert "schools," in text and " zones" in text and "findings at" in text
    assert _images(nb) >= 2  # the two charts
    assert "leaflet" in text.lower() and "OpenStreetMap" in text  # the folium map, with its attribution
    assert "https://unpkg.com" not in text and "cdn.jsdelivr" not in text  # offline: no CDN in the map
    for name in ("import_osm", "run_scan", "zone_specs_for", "offline_map"):  # the package's code, not a copy
        assert name in text
