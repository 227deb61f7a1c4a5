"""``safezone import …``: OSM, permits, districts, schools, cameras."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import OperationalError

from geo.errors import SafezoneError
from service import importing
from service.settings import Settings
from storage.database import make_engine, make_sessionmaker, migration_state, resolve_url

import_app = typer.Typer(no_args_is_help=True, help="Import data (each import is one transaction, idempotent).")

CrsOpt = Annotated[
    str | None,
    typer.Option("--crs", help="coordinate system for rows without one: wgs84, cgcs2000, gcj02, bd09"),
]
SkipOpt = Annotated[
    bool, typer.Option("--skip-invalid", help="load the good rows; write the rejected ones to --rejects")
]
RejectsOpt = Annotated[
    Path | None, typer.Option("--rejects", help="where to write rejected rows (default: FILE.rejects.csv)")
]
FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="the file to import")]


def _run(kind: str, fn: Callable[..., importing.store.ImportSummary], *args, **kwargs) -> None:  # noqa: ANN002, ANN003
    from service.cli import err, fail

    engine = make_engine(resolve_url(), pool_size=2, statement_timeout_ms=0)  # imports may run for minutes
    factory = make_sessionmaker(engine)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=err, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(f"import {kind}", total=None)

        def progress(stage: str, done: int, total: int | None) -> None:
            bar.update(task, description=f"import {kind}: {stage}", completed=done, total=total)

        try:
            if "progress" in fn.__code__.co_varnames:
                kwargs["progress"] = progress
            summary = fn(factory, *args, **kwargs)
        except importing.ImportRejected as exc:
            bar.stop()
            err.print(f"[bold red]rejected:[/] {len(exc.errors)} problems; nothing was imported")
            for e in exc.errors[:50]:
                err.print(f"  row {e.row}  column {e.column or '-'}  value {e.value!r}: {e.reason_en} / {e.reason_zh}")
            if len(exc.errors) > 50:
                err.print(f"  … and {len(exc.errors) - 50} more (use --skip-invalid --rejects FILE to get them all)")
            engine.dispose()
            raise typer.Exit(2) from None
        except SafezoneError as exc:
            bar.stop()
            engine.dispose()
            fail(f"{exc.message_en} / {exc.message_zh}")
    engine.dispose()
    _print_summary(summary)


def _print_summary(summary: importing.store.ImportSummary) -> None:
    from service.cli import err

    if summary.already_imported:
        err.print(f"[yellow]already imported[/] (batch {summary.batch_id}): nothing added")
    else:
        err.print(f"[green]imported[/] {summary.kind} from {summary.source} as batch {summary.batch_id}")
    for what in sorted(set(summary.added) | set(summary.updated)):
        err.print(f"  {what}: {summary.added.get(what, 0)} added, {summary.updated.get(what, 0)} updated")
    for why, n in summary.skipped.items():
        err.print(f"  skipped {why}: {n}")
    for note in summary.notes:
        err.print(f"  {note}")
    print(json.dumps(summary.as_dict(), ensure_ascii=False))


def _opts(crs: str | None = None, skip: bool = False, rejects: Path | None = None, file: Path | None = None):  # noqa: ANN202
    if skip and rejects is None and file is not None:
        rejects = file.with_name(file.name + ".rejects.csv")
    return importing.ImportOptions(
        created_by="cli", skip_invalid=skip, rejects_path=rejects, crs=crs, data_dir=Settings().data_dir
    )


@import_app.command("osm")
def import_osm(
    file: Annotated[Path | None, typer.Argument(exists=True, dir_okay=False, help=".osm, .osm.gz or .osm.bz2")] = None,
    place: Annotated[
        str | None, typer.Option(help="fetch a place through osmnx instead (needs internet access)")
    ] = None,
) -> None:
    """Schools, campuses, gates, premises, water, police posts and the walkable streets from OpenStreetMap."""
    from service.cli import fail

    if (file is None) == (place is None):
        fail("give either an OSM FILE or --place NAME")
    _run("osm", importing.import_osm, file, _opts(), place=place)


@import_app.command("permits")
def import_permits(
    file: FileArg, crs: CrsOpt = None, skip_invalid: SkipOpt = False, rejects: RejectsOpt = None
) -> None:
    """The permit registry (CSV in UTF-8/UTF-8 with BOM/GBK, or XLSX); columns in the README."""
    _run("permits", importing.import_permits, file, _opts(crs, skip_invalid, rejects, file))


@import_app.command("districts")
def import_districts(file: FileArg, skip_invalid: SkipOpt = False, rejects: RejectsOpt = None) -> None:
    """District boundaries (GeoJSON or GeoPackage with adcode, name, level, parent)."""
    _run("districts", importing.import_districts, file, _opts(None, skip_invalid, rejects, file))


@import_app.command("schools")
def import_schools(
    file: FileArg, crs: CrsOpt = None, skip_invalid: SkipOpt = False, rejects: RejectsOpt = None
) -> None:
    """The education bureau's school register (CSV/XLSX with coordinates, or GeoJSON/GeoPackage outlines)."""
    _run("schools", importing.import_schools, file, _opts(crs, skip_invalid, rejects, file))


@import_app.command("cameras")
def import_cameras(
    file: FileArg, crs: CrsOpt = None, skip_invalid: SkipOpt = False, rejects: RejectsOpt = None
) -> None:
    """Cameras (CSV/XLSX: camera_id, name, lon, lat, crs, direction_deg, fov_deg, range_m)."""
    _run("cameras", importing.import_cameras, file, _opts(crs, skip_invalid, rejects, file))


@import_app.command("grid")
def rebuild_grid() -> None:
    """Rebuild the premises grid (the low-zoom premises tiles) from scratch; every import keeps it up to date,
    so this is only needed after premises or permits were changed by hand in SQL."""
    from service.cli import err
    from storage import premises_grid
    from storage.database import session_scope

    engine = make_engine(resolve_url(), pool_size=1, statement_timeout_ms=0)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            done = premises_grid.refresh_all(session)
    finally:
        engine.dispose()
    err.print(done.note())


_DB_UP = "run `safezone db up` first / 请先运行 safezone db up"


def demo(
    schools: Annotated[int, typer.Option(help="number of schools")] = 120,
    premises: Annotated[int, typer.Option(help="number of premises")] = 3000,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same city)")] = 7,
) -> None:
    """Generate and load the deterministic synthetic demo city (idempotent)."""
    import time

    from service.cli import err, fail
    from service.demo import load_demo
    from storage.settings import DatabaseSettings

    settings = Settings()
    workdir = DatabaseSettings().state_dir / "demo" / f"s{seed}-{schools}-{premises}"
    engine = make_engine(resolve_url(), pool_size=2, statement_timeout_ms=0)  # imports may run for minutes
    # the database must be there and migrated before the city is generated (a minute and more at scale)
    try:
        state = migration_state(engine)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[-1] if exc.orig else str(exc)
        fail(f"cannot reach the database ({reason}): {_DB_UP}")
    if not state["at_head"]:
        engine.dispose()
        fail(f"the database is at migration {state['current'] or 'none'}, not {state['head']}: {_DB_UP}")
    t0 = time.monotonic()

    def progress(stage: str) -> None:
        err.print(f"  demo: {stage} ({time.monotonic() - t0:.0f} s)")

    try:
        summaries = load_demo(
            make_sessionmaker(engine), schools=schools, premises=premises, seed=seed, workdir=workdir,
            data_dir=settings.data_dir, progress=progress,
        )  # fmt: skip
    except SafezoneError as exc:
        fail(f"{exc.message_en} / {exc.message_zh}")
    finally:
        engine.dispose()
    for s in summaries:
        _print_summary(s)
    err.print(f"demo city loaded in {time.monotonic() - t0:.1f} s (files in {workdir})")
