"""Prometheus metrics: requests, latencies, check outcomes, scan durations, job queue depth, DB pool use.

Each app has its own registry (``app.state.metrics``). ``GET /metrics`` needs no token: it names no
trader, school or token, only counts and timings (keep it off the public network, as any Prometheus
endpoint). Queue depth and scan durations are read from PostgreSQL at scrape time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _DatabaseCollector(Collector):
    """Pool use of the app's engine, and the job queue and last scans read at scrape time."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        engine = getattr(self._app.state, "engine", None)
        pool = GaugeMetricFamily("safezone_db_pool_connections", "database pool connections", labels=["state"])
        if engine is not None:
            p: Any = engine.pool
            for state, fn in (("size", "size"), ("checked_out", "checkedout"), ("overflow", "overflow")):
                if hasattr(p, fn):
                    pool.add_metric([state], float(getattr(p, fn)()))
        yield pool
        loop = getattr(self._app.state, "loop_pool", None)
        loop_pool = GaugeMetricFamily(
            "safezone_db_loop_pool_connections", "the event loop's pool (pre-checks) connections", labels=["state"]
        )
        if loop is not None:
            for state, n in loop.stats().items():
                loop_pool.add_metric([state], float(n))
        yield loop_pool
        up = GaugeMetricFamily("safezone_db_up", "1 when the database answered this scrape")
        queue = GaugeMetricFamily("safezone_job_queue_depth", "procrastinate jobs by status", labels=["status"])
        scans = GaugeMetricFamily(
            "safezone_scan_duration_seconds", "duration of the most recent finished scans", labels=["scan_id"]
        )
        if engine is None:
            return
        try:
            with engine.connect() as conn:
                for status, n in conn.execute(
                    text("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status")
                ):
                    queue.add_metric([status], float(n))
                if conn.execute(text("SELECT to_regclass('scans') IS NOT NULL")).scalar():
                    rows = conn.execute(
                        text(
                            "SELECT id, extract(epoch FROM finished_at - started_at) FROM scans "
                            "WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 5"
                        )
                    )
                    for scan_id, seconds in rows:
                        scans.add_metric([str(scan_id)], float(seconds))
            up.add_metric([], 1.0)
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the database is away
            log.warning("metrics: database not readable: %s", exc.__class__.__name__)
            up.add_metric([], 0.0)
        yield up
        yield queue
        yield scans


class Metrics:
    """The app's metrics."""

    def __init__(self, app: FastAPI) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "safezone_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "safezone_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.checks = Counter(
            "safezone_check_outcomes", "pre-check answers by outcome and category", ["outcome", "category"],
            registry=self.registry,
        )  # fmt: skip
        self.rejected = Counter(
            "safezone_requests_rejected", "requests refused by a limit", ["reason"], registry=self.registry
        )
        self.registry.register(_DatabaseCollector(app))

    def observe_request(self, *, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_check(self, *, outcome: str, category: str) -> None:
        self.checks.labels(outcome, category).inc()


router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format; no token needed (no personal data in it)."""
    registry = request.app.state.metrics.registry
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI) -> None:
    app.state.metrics = Metrics(app)
    app.include_router(router)
