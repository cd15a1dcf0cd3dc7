"""Typed application and request keys: state lives on the app and the request, never in globals."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from aiohttp import web

from gateway.config import Settings
from gateway.metrics import Metrics
from gateway.routing import RouteTable
from gateway.store.base import Store

SETTINGS_KEY = web.AppKey("settings", Settings)
STORE_KEY = web.AppKey("store", Store)
HTTP_KEY = web.AppKey("http", aiohttp.ClientSession)
CLOCK_KEY = web.AppKey("clock", Callable[[], float])
ROUTES_KEY = web.AppKey("routes", RouteTable)
METRICS_KEY = web.AppKey("metrics", Metrics)
