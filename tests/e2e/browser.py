"""A small real-browser harness: load a page in Debian's Chromium and report what went wrong.

Drives ``/usr/bin/chromium`` through Python ``playwright`` (its bundled driver only; no browser is
downloaded). The browser cannot reach the internet: ``--host-resolver-rules`` makes every host but
127.0.0.1 unresolvable, so a page that needs a CDN shows failed requests here exactly as it would on
an intranet. Runs as root (``--no-sandbox``), with a temporary profile and ``HOME``.

Use :class:`Chromium` as a context manager (one browser, a fresh page per load) or the one-shot
:func:`load_page`::

    with Chromium() as browser:
        report = browser.load_page("http://127.0.0.1:8000/map", screenshot=Path("map.png"))
    assert report.ok, report.problems()
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

__all__ = ["CHROMIUM", "LAYERS_DRAWN_JS", "Chromium", "PageReport", "RequestRecord", "load_page"]

CHROMIUM = Path(os.environ.get("SAFEZONE_CHROMIUM", "/usr/bin/chromium"))

LAYERS_DRAWN_JS = "document.querySelectorAll('.leaflet-interactive, .leaflet-marker-icon').length"
"""The default evaluate hook: how many Leaflet paths and markers the page drew."""

_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


@dataclass
class RequestRecord:
    """One request the page made: its HTTP status, or why it failed."""

    url: str
    method: str
    resource_type: str
    status: int | None = None
    failure: str | None = None

    @property
    def failed(self) -> bool:
        return self.failure is not None or (self.status is not None and self.status >= 400)


@dataclass
class PageReport:
    """What happened while a page loaded."""

    url: str
    requests: list[RequestRecord] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    evaluated: Any = None
    screenshot: Path | None = None
    wait_error: str | None = None

    @property
    def failed_requests(self) -> list[RequestRecord]:
        return [req for req in self.requests if req.failed]

    @property
    def layers_drawn(self) -> int | None:
        """The default evaluate hook's result (an int), when it was used."""
        return self.evaluated if isinstance(self.evaluated, int) else None

    @property
    def ok(self) -> bool:
        return not (self.failed_requests or self.console_errors or self.page_errors or self.wait_error)

    def problems(self) -> str:
        """A readable list of everything that went wrong (for assertion messages)."""
        lines = [f"{r.method} {r.url}: {r.failure or r.status}" for r in self.failed_requests]
        lines += [f"console error: {msg}" for msg in self.console_errors]
        lines += [f"page error: {msg}" for msg in self.page_errors]
        if self.wait_error:
            lines.append(f"wait_for_js: {self.wait_error}")
        return "\n".join(lines) or "no problems"


class Chromium:
    """Headless Chromium with no internet; a context manager.

    Parameters
    ----------
    executable
        The Chromium binary (default ``/usr/bin/chromium`` or ``$SAFEZONE_CHROMIUM``).
    timeout_ms
        How long a navigation or ``wait_for_js`` may take.
    viewport
        Page size in CSS pixels.
    """

    def __init__(
        self,
        *,
        executable: Path = CHROMIUM,
        timeout_ms: int = 15_000,
        viewport: tuple[int, int] = (1024, 768),
    ) -> None:
        self.executable = Path(executable)
        self.timeout_ms = timeout_ms
        self.viewport = viewport
        self._tmp: str | None = None
        self._pw: Any = None
        self._context: Any = None

    def __enter__(self) -> Chromium:
        if not self.executable.exists():
            msg = f"Chromium is not installed at {self.executable} (apt-get install -y chromium)"
            raise FileNotFoundError(msg)
        self._tmp = tempfile.mkdtemp(prefix="safezone-chromium-")
        home = Path(self._tmp) / "home"
        home.mkdir()
        env = {key: val for key, val in os.environ.items() if not key.startswith(("http_", "https_", "HTTP"))}
        env["HOME"] = str(home)
        try:
            self._pw = sync_playwright().start()
            self._context = self._pw.chromium.launch_persistent_context(
                str(Path(self._tmp) / "profile"),
                executable_path=str(self.executable),
                headless=True,
                args=list(_ARGS),
                env=env,
                viewport={"width": self.viewport[0], "height": self.viewport[1]},
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._context is not None:
            self._context.close()
            self._context = None
        if self._pw is not None:
            self._pw.stop()
            self._pw = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def load_page(
        self,
        url: str,
        *,
        screenshot: Path | None = None,
        wait_for_js: str | None = None,
        evaluate: str | None = LAYERS_DRAWN_JS,
        interact: Callable[[Page, PageReport], None] | None = None,
    ) -> PageReport:
        """Load ``url`` in a fresh page (no cache) and report requests, console errors, page errors.

        Parameters
        ----------
        url
            The page to load (only 127.0.0.1 resolves).
        screenshot
            Where to write a PNG of the page once loaded (folders are created).
        wait_for_js
            A JavaScript expression to wait for (truthy) after the ``load`` event, e.g. that tiles
            were drawn; after ``timeout_ms`` the report records ``wait_error`` (not ``ok``) and the
            page is still evaluated and screenshotted, so the other problems show.
        evaluate
            A JavaScript expression whose value is stored in ``PageReport.evaluated`` (default: the
            number of Leaflet paths and markers drawn).
        interact
            Called with the page and the report after loading (clicks and the like); requests and
            errors it causes are recorded too.
        """
        if self._context is None:
            msg = "use Chromium() as a context manager before load_page()"
            raise RuntimeError(msg)
        report = PageReport(url=url)
        page = self._context.new_page()
        page.bring_to_front()  # background tabs get no animation frames: Leaflet would not draw
        page.set_default_timeout(self.timeout_ms)
        records: dict[Any, RequestRecord] = {}

        def on_request(request: Any) -> None:
            record = RequestRecord(url=request.url, method=request.method, resource_type=request.resource_type)
            records[request] = record
            report.requests.append(record)

        def on_response(response: Any) -> None:
            record = records.get(response.request)
            if record is not None:
                record.status = response.status

        def on_failed(request: Any) -> None:
            record = records.get(request)
            if record is not None:
                record.failure = request.failure or "failed"

        page.on("request", on_request)
        page.on("response", on_response)
        page.on("requestfailed", on_failed)
        page.on(
            "console",
            lambda msg: (
                report.console_errors.append(f"{msg.text} ({msg.location.get('url', '')})")
                if msg.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda err: report.page_errors.append(str(err)))
        try:
            # routing every request turns Chromium's HTTP cache off: each load fetches every asset
            page.route("**/*", lambda route: route.continue_())
            page.goto(url, wait_until="load")
            if wait_for_js:
                try:
                    page.wait_for_function(wait_for_js, polling=100)
                except PlaywrightTimeoutError:
                    report.wait_error = f"{wait_for_js!r} still false after {self.timeout_ms} ms"
            page.wait_for_load_state("networkidle")
            if interact is not None:
                interact(page, report)
                page.wait_for_load_state("networkidle")
            if evaluate:
                report.evaluated = page.evaluate(evaluate)
            if screenshot is not None:
                screenshot = Path(screenshot)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot))
                report.screenshot = screenshot
        finally:
            page.close()
        return report


def load_page(
    url: str,
    *,
    screenshot: Path | None = None,
    wait_for_js: str | None = None,
    evaluate: str | None = LAYERS_DRAWN_JS,
) -> PageReport:
    """Start Chromium, load one page (see :meth:`Chromium.load_page`), stop Chromium."""
    with Chromium() as browser:
        return browser.load_page(url, screenshot=screenshot, wait_for_js=wait_for_js, evaluate=evaluate)
