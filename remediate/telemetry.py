"""One OpenTelemetry trace per run; exporters are optional, the trace ID always exists."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from remediate import __version__
from remediate.config import TelemetryConfig


@dataclass
class Telemetry:
    provider: TracerProvider
    tracer: trace.Tracer
    flush_timeout: float

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None,
             kind: trace.SpanKind = trace.SpanKind.INTERNAL) -> Iterator[Span]:
        with self.tracer.start_as_current_span(name, kind=kind, record_exception=True,
                                               set_status_on_exception=True) as span:
            for key, value in (attributes or {}).items():
                if value is not None:
                    span.set_attribute(key, value)
            yield span

    def shutdown(self) -> None:
        """Flush in a thread we stop waiting for: an unreachable collector must not hold the run."""
        done = threading.Event()

        def flush() -> None:
            try:
                self.provider.force_flush(int(self.flush_timeout * 1000))
                self.provider.shutdown()
            finally:
                done.set()

        threading.Thread(target=flush, daemon=True, name="otel-flush").start()
        done.wait(self.flush_timeout + 0.5)


def traceparent_of(span: Span) -> str:
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


def trace_id_of(span: Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


def parent_context(traceparent: str | None) -> otel_context.Context | None:
    if not traceparent:
        return None
    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


def set_error(span: Span, message: str) -> None:
    span.set_status(Status(StatusCode.ERROR, message))


def setup(config: TelemetryConfig, service_name: str = "remediate") -> Telemetry:
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name),
                                "service.version": __version__})
    # No atexit shutdown: it would wait on an unreachable collector; `shutdown()` is bounded instead.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    exporter = _exporter(config)
    if exporter is not None:
        timeout_ms = int(config.flush_timeout_seconds * 1000)
        provider.add_span_processor(BatchSpanProcessor(exporter, export_timeout_millis=timeout_ms))
    return Telemetry(provider, provider.get_tracer("remediate", __version__), config.flush_timeout_seconds)


def _exporter(config: TelemetryConfig) -> SpanExporter | None:
    env_enabled = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or
                       os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    if not (config.enabled or env_enabled) or config.exporter == "none":
        return None
    if config.exporter == "console":
        return ConsoleSpanExporter()
    protocol = config.protocol or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or \
        os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or _guess_protocol(config.endpoint)
    timeout = config.flush_timeout_seconds
    headers = dict(config.headers) or None
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        endpoint = config.endpoint
        insecure = endpoint.startswith("http://") if endpoint else None
        return GrpcExporter(endpoint=endpoint, insecure=insecure, headers=headers, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
    endpoint = config.endpoint
    if endpoint and not endpoint.rstrip("/").endswith("/v1/traces"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    return HttpExporter(endpoint=endpoint, headers=headers, timeout=timeout)


def _guess_protocol(endpoint: str | None) -> str:
    # 4317 is the OTLP/gRPC port by convention (the architect example uses it); 4318 is OTLP/HTTP.
    return "grpc" if endpoint and ":4317" in endpoint else "http/protobuf"
