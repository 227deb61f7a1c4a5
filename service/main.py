"""The ASGI application for servers: ``uvicorn service.main:app``."""

from __future__ import annotations

from service.app import create_app

app = create_app(server=True)
