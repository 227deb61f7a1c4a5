"""Signed webhook events (HMAC-SHA256 of the body), delivered through the job queue with back-off.

The receiver verifies ``X-Safezone-Signature: sha256=<hex>`` — the HMAC-SHA256 of the exact request
body under ``SAFEZONE_WEBHOOK_SECRET``. A delivery that fails (network error or a non-2xx answer) raises,
and the queue retries the job with exponential back-off (:func:`service.worker.make_job_app`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.worker import Progress, handler
from storage import jobs

log = logging.getLogger(__name__)

HEADER = "X-Safezone-Signature"
EVENT_HEADER = "X-Safezone-Event"


TIMEOUT_S = 10.0


class DeliveryFailed(RuntimeError):
    """The receiver did not accept the event; the queue retries."""


def body_bytes(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def sign(body: bytes, secret: str) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature: str) -> bool:
    return hmac.compare_digest(sign(body, secret), signature)


def deliver(event: dict[str, Any], settings: Settings) -> int:
    """POST one event (``SAFEZONE_WEBHOOK_URL``, signed with ``SAFEZONE_WEBHOOK_SECRET``); returns the
    status; raises :class:`DeliveryFailed` unless the answer is 2xx."""
    if not settings.webhook_url:
        msg = "SAFEZONE_WEBHOOK_URL is not set"
        raise DeliveryFailed(msg)
    if not settings.webhook_secret:
        msg = "SAFEZONE_WEBHOOK_SECRET is not set: events are never sent unsigned"
        raise DeliveryFailed(msg)
    body = body_bytes(event)
    headers = {
        "Content-Type": "application/json",
        HEADER: sign(body, settings.webhook_secret),
        EVENT_HEADER: str(event.get("type", "")),
    }
    try:
        r = httpx.post(settings.webhook_url, content=body, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        msg = f"webhook delivery to {settings.webhook_url} failed: {exc.__class__.__name__}"
        raise DeliveryFailed(msg) from exc
    if not 200 <= r.status_code < 300:
        msg = f"webhook receiver answered {r.status_code}"
        raise DeliveryFailed(msg)
    return r.status_code


def enqueue_event(session: Session, event: dict[str, Any], settings: Settings) -> str | None:
    """Put an event on the queue (in the caller's transaction); None when no webhook is configured."""
    if not settings.webhook_url:
        log.info("no SAFEZONE_WEBHOOK_URL: event %s not sent", event.get("type"))
        return None
    return str(jobs.enqueue(session, kind="webhook", params={"event": event}))


@handler("webhook")
def _webhook_job(factory: sessionmaker[Session], params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    status = deliver(params["event"], Settings())
    progress(1, 1)
    return {"status": status, "type": params["event"].get("type")}
