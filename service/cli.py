"""The ``safezone`` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import time
from typing import Annotated

import typer
from rich.console import Console

from geo.errors import SafezoneError
from storage.database import (
    ensure_database,
    make_engine,
    make_sessionmaker,
    migrate,
    migration_state,
    resolve_url,
    session_scope,
)
from storage.localdb import LocalCluster, LocalDatabaseError
from storage.settings import DatabaseSettings

app = typer.Typer(no_args_is_help=True, help="safezone: student safety zones around schools (PostGIS service).")
db_app = typer.Typer(no_args_is_help=True, help="The database: the project's local PostGIS, or DATABASE_URL.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens (stored hashed; shown once).")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")


def _register_imports() -> None:
    from service.cli_import import demo, import_app

    app.add_typer(import_app, name="import")
    app.command("demo")(demo)


_register_imports()

err = Console(stderr=True)
out = Console()


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _cluster(settings: DatabaseSettings) -> LocalCluster:
    return LocalCluster(settings.state_dir, db_name=settings.db_name)


def _factory():  # noqa: ANN202
    url = resolve_url()
    engine = make_engine(url, pool_size=2, statement_timeout_ms=0)  # operator commands may run for minutes
    return engine, make_sessionmaker(engine)


def prepare_database(settings: DatabaseSettings | None = None, *, db_name: str | None = None) -> str:
    """Start the local cluster (unless DATABASE_URL is set), create the database, migrate to head."""
    settings = settings or DatabaseSettings()
    if settings.database_url:
        url = resolve_url(settings)
    else:
        cluster = _cluster(settings)
        cluster.start()
        url = cluster.url(db_name)
    if db_name and settings.database_url:
        from sqlalchemy.engine import make_url

        url = make_url(url).set(database=db_name).render_as_string(hide_password=False)
    ensure_database(url)
    migrate(url)
    return url


@db_app.command("up")
def db_up() -> None:
    """Create and start the local PostGIS if needed, create the database, migrate it to head."""
    settings = DatabaseSettings()
    try:
        t0 = time.monotonic()
        url = prepare_database(settings)
    except LocalDatabaseError as exc:
        fail(str(exc), 1)
    where = "DATABASE_URL" if settings.database_url else f"local cluster in {_cluster(settings).root}"
    engine = make_engine(url, pool_size=1)
    state = migration_state(engine)
    engine.dispose()
    err.print(f"database ready ({where}), migrations at {', '.join(state['current'])} in {time.monotonic() - t0:.1f} s")


@db_app.command("down")
def db_down() -> None:
    """Stop the local PostGIS (does nothing with DATABASE_URL)."""
    settings = DatabaseSettings()
    if settings.database_url:
        err.print("DATABASE_URL is set: the database is not managed by safezone; nothing stopped")
        return
    stopped = _cluster(settings).stop()
    err.print("stopped" if stopped else "not running")


@db_app.command("status")
def db_status() -> None:
    """Whether the database is up, where, and its migration state."""
    settings = DatabaseSettings()
    info: dict[str, object] = {}
    if settings.database_url:
        info["managed"] = False
    else:
        cluster = _cluster(settings)
        info.update(
            managed=True,
            initialised=cluster.initialised(),
            running=cluster.running(),
            data_dir=str(cluster.data_dir),
            port=cluster.port,
        )
    try:
        engine = make_engine(resolve_url(settings), pool_size=1)
        info["migrations"] = migration_state(engine)
        engine.dispose()
        info["reachable"] = True
    except Exception as exc:  # noqa: BLE001
        info["reachable"] = False
        info["error"] = str(exc).splitlines()[0]
    out.print_json(json.dumps(info))
    if not info["reachable"]:
        raise typer.Exit(1)


@db_app.command("url")
def db_url(
    name: Annotated[str | None, typer.Option(help="another database in the same cluster")] = None,
) -> None:
    """Print the database URL (SQLAlchemy form, psycopg 3 driver)."""
    try:
        url = resolve_url()
    except RuntimeError as exc:
        fail(str(exc), 1)
    if name:
        from sqlalchemy.engine import make_url

        url = make_url(url).set(database=name).render_as_string(hide_password=False)
    print(url)


@token_app.command("create")
def token_create(
    role: Annotated[
        str,
        typer.Option(
            help="admin, education, market_supervision, culture_tourism, tobacco, "
            "urban_management, public_security, licensing_client, viewer"
        ),
    ],
    name: Annotated[str, typer.Option(help="who or what holds the token")] = "cli",
    department: Annotated[str | None, typer.Option(help="department id (e.g. market_supervision)")] = None,
    replace: Annotated[bool, typer.Option(help="revoke live tokens with the same name first")] = False,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from storage.access import create_token

    engine, factory = _factory()
    try:
        with session_scope(factory) as session:
            clear, info = create_token(session, role=role, name=name, department=department, replace=replace)
    except SafezoneError as exc:
        fail(exc.message_en)
    finally:
        engine.dispose()
    err.print(f"token {info.id} for {name!r} (role {role}); it is shown only once:")
    print(clear)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="the token's id (see `token list`)")]) -> None:
    """Revoke a token."""
    from storage.access import revoke_token

    engine, factory = _factory()
    try:
        with session_scope(factory) as session:
            revoke_token(session, token_id=token_id)
    except SafezoneError as exc:
        fail(exc.message_en)
    finally:
        engine.dispose()
    err.print(f"token {token_id} revoked")


@token_app.command("list")
def token_list() -> None:
    """List tokens (id, name, role, department, prefix, revoked)."""
    from storage.access import list_tokens

    engine, factory = _factory()
    with session_scope(factory) as session:
        rows = list_tokens(session)
    engine.dispose()
    out.print_json(json.dumps(rows))


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def default_workers() -> int:
    """``safezone serve``'s server processes when not told: one per CPU, at most 4."""
    return min(4, os.cpu_count() or 1)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(envvar="SAFEZONE_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SAFEZONE_PORT")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(envvar="SAFEZONE_WORKERS", help="server processes (default: one per CPU, at most 4)", min=1),
    ] = None,
) -> None:
    """Serve the HTTP API (and the map pages)."""
    import uvicorn

    from service.app import load_rules
    from service.settings import Settings

    if not port_is_free(host, port):
        fail(f"port {port} on {host} is taken (is safezone already serving?); choose another with --port", 1)
    try:
        load_rules(Settings())
    except SafezoneError as exc:
        fail(exc.message_en, 1)
    err.print(f"serving on http://{host}:{port}  (OpenAPI: http://{host}:{port}/docs)")
    workers = workers or default_workers()
    uvicorn.run("service.main:app", host=host, port=port, workers=workers, log_level="info", access_log=False)


@app.command("worker")
def worker(
    concurrency: Annotated[int, typer.Option(help="jobs run at once")] = 2,
    once: Annotated[bool, typer.Option(help="run the jobs waiting now, then exit")] = False,
) -> None:
    """Run background jobs (batch checks, scans, deadlines, webhooks) from the PostgreSQL queue."""
    from service.worker import make_job_app

    url = resolve_url()
    engine = make_engine(url, pool_size=concurrency + 1, statement_timeout_ms=0)  # scans and imports are long
    job_app = make_job_app(url, make_sessionmaker(engine))

    async def _run() -> None:
        async with job_app.open_async():
            await job_app.run_worker_async(concurrency=concurrency, wait=not once, install_signal_handlers=not once)

    err.print("worker started" + (" (until the queue is empty)" if once else ""))
    asyncio.run(_run())
    engine.dispose()


from service import scanning as _scanning  # noqa: E402 - registers the "scan" job handler for `safezone worker`


@app.command("scan")
def scan(
    district: Annotated[
        str | None, typer.Option(help="scan only this adcode (a city or province includes its counties)")
    ] = None,
) -> None:
    """Scan every registered premises against the zones (DESIGN's truth table) and store the findings."""
    from geo.rules import RuleRegistry
    from service.settings import Settings

    settings = Settings()
    try:
        registry = RuleRegistry.load(settings.resolved_rules_dir, default_adcode=settings.default_adcode)
        engine, factory = _factory()
        t0 = time.monotonic()
        result = _scanning.run_scan(factory, registry, settings=settings, district=district, actor="cli")
        engine.dispose()
    except SafezoneError as exc:
        fail(exc.message_en, 2)
    elapsed = time.monotonic() - t0
    out.print(
        f"scan {result['scan_id']} ({result['scan_date']}, rules {result['pack_version']}): {result['total']} "
        f"findings from {result['candidates']} candidates (premises × rule × campus within reach) in {elapsed:.1f} s"
    )
    for status, n in sorted(result["by_status"].items()):
        per_category = ", ".join(f"{c} {k}" for c, k in sorted(result["table"][status].items()))
        out.print(f"  {status:14} {n:8}  {per_category}")
    summary = {k: result[k] for k in ("scan_id", "by_status", "by_category", "warnings")}
    out.print(json.dumps(summary, ensure_ascii=False))


@app.command("prune-scans")
def prune_scans(
    keep: Annotated[int, typer.Option(help="finished scans to keep in each scope (the city, each district)")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be dropped, drop nothing")] = False,
) -> None:
    """Drop old scans with their findings and warnings; keeps the latest KEEP of each scope and every scan a
    ledger case cites."""
    from storage import scan as scan_store
    from storage.database import session_scope

    if keep < 1:
        fail(f"--keep must be at least 1 (the latest scan stays), not {keep} / --keep 至少为 1", 2)
    engine, factory = _factory()
    try:
        with session_scope(factory) as session:
            dropped = scan_store.prune_scans(session, keep=keep, dry_run=dry_run)
    finally:
        engine.dispose()
    for r in dropped:
        scope = r["district"] or "city"
        size = r["bytes"] / 1e6
        out.print(f"  scan {r['id']:>6}  {r['scan_date']}  {scope:6}  {r['findings']:>9} findings  {size:9.1f} MB")
    total = sum(r["bytes"] for r in dropped) / 1e6
    verb = "would drop" if dry_run else "dropped"
    out.print(f"{verb} {len(dropped)} scans ({total:.1f} MB); kept the latest {keep} per scope and the cases' scans")


ledger_app = typer.Typer(no_args_is_help=True, help="The risk ledger (台账): overdue clock, scans → cases, staffing.")
app.add_typer(ledger_app, name="ledger")


def _ledger_now(now: str | None):  # noqa: ANN202
    import datetime as dt

    if now is None:
        return dt.datetime.now(dt.UTC)
    value = dt.datetime.fromisoformat(now)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))


@ledger_app.command("tick")
def ledger_tick(
    now: Annotated[str | None, typer.Option(help="ISO time to run the clock at (default: now; naive: Beijing)")] = None,
) -> None:
    """Run the overdue clock: raise cases past their deadline up the escalation ladder (level 1: the lead
    department; level 2 and on: the next authority, e.g. the district government), once per level, each with a
    signed webhook event (`case.overdue`, then `case.escalated`)."""
    from service.ledger import tick

    engine, factory = _factory()
    try:
        result = tick(factory, now=_ledger_now(now))
    finally:
        engine.dispose()
    out.print_json(json.dumps(result))


@ledger_app.command("from-scan")
def ledger_from_scan(
    scan_id: Annotated[int | None, typer.Argument(help="the scan (default: the latest)")] = None,
    now: Annotated[str | None, typer.Option(help="ISO time the cases open at (default: now)")] = None,
) -> None:
    """Turn a scan's findings into cases: new ones at warning, added to open ones, closed ones reopened."""
    from service.ledger import cases_from_scan

    engine, factory = _factory()
    try:
        result = cases_from_scan(factory, scan_id=scan_id, now=_ledger_now(now))
    except SafezoneError as exc:
        fail(exc.message_en)
    finally:
        engine.dispose()
    out.print_json(json.dumps(result))


@ledger_app.command("staffing")
def ledger_staffing(
    district: Annotated[str | None, typer.Option(help="adcode to check (default: all)")] = None,
) -> None:
    """Guards on record vs the packs' staffing rules, and kindergartens' access control: shortfalls → cases."""
    from service.app import load_rules
    from service.ledger import staffing_cases
    from service.settings import Settings

    engine, factory = _factory()
    try:
        result = staffing_cases(factory, load_rules(Settings()), now=_ledger_now(None), district=district)
    finally:
        engine.dispose()
    out.print_json(json.dumps(result))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("alembic.runtime.migration", "procrastinate", "pyogrio", "pyogrio._io"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app()
    except LocalDatabaseError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
