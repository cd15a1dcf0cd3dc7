"""Audit events from request handlers: adds the request id and client IP to every line."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.app_state import AUDIT_KEY, METRICS_KEY, REQUEST_ID_KEY
from gateway.web.client_ip import client_ip


def audit(request: web.Request, event: str, **fields: Any) -> None:
    request.app[METRICS_KEY].oauth_events.labels(event, str(fields.get("outcome", "ok"))).inc()
    request.app[AUDIT_KEY].emit(event, request_id=request.get(REQUEST_ID_KEY), client_ip=client_ip(request), **fields)
