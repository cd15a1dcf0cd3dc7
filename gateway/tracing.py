"""OpenTelemetry traces, exported by OTLP (http/protobuf) as the standard `OTEL_*` environment variables say.

Off unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and `OTEL_SDK_DISABLED`
is not `true`, `OTEL_TRACES_EXPORTER` not `none`): then `tracing_from_environment` is None and the request path
pays one `is None` test per request. When on, the SDK reads the rest itself: `OTEL_SERVICE_NAME` and
`OTEL_RESOURCE_ATTRIBUTES` (the resource), `OTEL_TRACES_SAMPLER[_ARG]` (sampling, parent-based by default),
`OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`, `…_TIMEOUT`, `…_COMPRESSION`, `…_CERTIFICATE` (the exporter), and
`OTEL_BSP_*` (the batch processor, which exports from its own thread: a slow collector never holds a request).
Context comes in and goes out as W3C Trace Context (`traceparent`, `tracestate`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway import __version__

logger = logging.getLogger(__name__)
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
DEFAULT_SERVICE_NAME = "mcp-auth-gateway"
INSTRUMENTATION = "mcp-auth-gateway"
CLIENT_INPUT_LOGGERS = ("opentelemetry.trace.span", "opentelemetry.trace.propagation.tracecontext")


def tracing_wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces (an OTLP endpoint named, the SDK and the exporter not off)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")}
    if "none" in exporters:
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


@dataclass(slots=True)
class Tracing:
    """The tracer the gateway's spans come from, and its provider (flushed and stopped with the application)."""

    tracer: Any  # opentelemetry.trace.Tracer
    provider: Any  # opentelemetry.sdk.trace.TracerProvider
    propagator: Any  # opentelemetry.trace.propagation.tracecontext.TraceContextTextMapPropagator

    def shutdown(self) -> None:
        """Export what is still buffered (bounded by OTEL_BSP_EXPORT_TIMEOUT), then stop the export thread."""
        self.provider.shutdown()


def tracing_from_environment(environ: Mapping[str, str] = os.environ) -> Tracing | None:
    """A tracer exporting by OTLP/HTTP where the environment asks for traces, else None (the default)."""
    if not tracing_wanted(environ):
        return None
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", ""))
    if protocol.strip() and protocol.strip() != "http/protobuf":
        logger.warning("OTLP protocol %r is not supported: exporting by http/protobuf instead", protocol.strip())
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    for name in CLIENT_INPUT_LOGGERS:  # (each malformed tracestate of a client, logged whole: 8 KiB a request)
        logging.getLogger(name).setLevel(logging.ERROR)
    defaults = {SERVICE_VERSION: __version__}
    if not environ.get("OTEL_SERVICE_NAME", "").strip():
        defaults[SERVICE_NAME] = DEFAULT_SERVICE_NAME  # (else the SDK's "unknown_service")
    provider = TracerProvider(resource=Resource.create(defaults))  # OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # OTEL_EXPORTER_OTLP_*, OTEL_BSP_*
    endpoint = next(environ[n] for n in ENDPOINT_VARIABLES if environ.get(n, "").strip())
    logger.info("tracing: OTLP/HTTP export to %s", endpoint.split("?", 1)[0])
    return Tracing(provider.get_tracer(INSTRUMENTATION, __version__), provider, TraceContextTextMapPropagator())
