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
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from remediate import __version__
from remediate.config import TelemetryConfig


class _Recording(SpanExporter):
    """Wraps the exporter to know, at the end, whether the spans arrived."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.exported = 0
        self.failed = 0
        self.error: str | None = None

    def export(self, spans: Any) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception as exc:  # an exporter that raises has failed, nothing more
            result, self.error = SpanExportResult.FAILURE, f"{type(exc).__name__}: {exc}"
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failed += len(spans)
            self.error = self.error or "the collector did not accept the spans"
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _FirstTraceId(RandomIdGenerator):
    """The run's trace ID, chosen before anything else happens, is the one its root span gets."""

    def __init__(self, trace_id: int) -> None:
        self.first: int | None = trace_id

    def generate_trace_id(self) -> int:
        if self.first is not None:
            chosen, self.first = self.first, None
            return chosen
        return super().generate_trace_id()


@dataclass
class Telemetry:
    provider: TracerProvider
    tracer: trace.Tracer
    flush_timeout: float
    exporter: _Recording | None = None
    target: str | None = None  # where spans go, for the one line that says whether they arrived

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None,
             kind: trace.SpanKind = trace.SpanKind.INTERNAL) -> Iterator[Span]:
        with self.tracer.start_as_current_span(name, kind=kind, record_exception=True,
                                               set_status_on_exception=True) as span:
            for key, value in (attributes or {}).items():
                if value is not None:
                    span.set_attribute(key, value)
            yield span

    def shutdown(self) -> dict[str, Any]:
        """Flush in a thread we stop waiting for: an unreachable collector must not hold the run. Returns what
        the report says of the export: whether the spans arrived, and the error if not."""
        done = threading.Event()
        flushed: list[bool] = []

        def flush() -> None:
            try:
                flushed.append(self.provider.force_flush(int(self.flush_timeout * 1000)))
                self.provider.shutdown()
            finally:
                done.set()

        threading.Thread(target=flush, daemon=True, name="otel-flush").start()
        finished = done.wait(self.flush_timeout + 0.5)
        if self.exporter is None:
            return {"exporter": None, "exported": False, "spans": 0, "error": None}
        recording = self.exporter
        error = recording.error
        if not error and not (finished and flushed and flushed[0]):
            error = f"the spans were not confirmed within the flush timeout of {self.flush_timeout:g} s"
        return {"exporter": self.target, "exported": recording.exported > 0 and not error,
                "spans": recording.exported, "error": error}


def new_trace_id() -> str:
    return format(RandomIdGenerator().generate_trace_id(), "032x")


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


def setup(config: TelemetryConfig, service_name: str = "remediate", trace_id: str | None = None) -> Telemetry:
    """`trace_id`: the one the first root span gets (a run knows its trace ID before its config is read)."""
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name),
                                "service.version": __version__})
    # No atexit shutdown: it would wait on an unreachable collector; `shutdown()` is bounded instead.
    ids = _FirstTraceId(int(trace_id, 16)) if trace_id else RandomIdGenerator()
    provider = TracerProvider(resource=resource, shutdown_on_exit=False, id_generator=ids)
    made = _exporter(config)
    recording, target = (_Recording(made[0]), made[1]) if made else (None, None)
    if recording is not None:
        timeout_ms = int(config.flush_timeout_seconds * 1000)
        provider.add_span_processor(BatchSpanProcessor(recording, export_timeout_millis=timeout_ms))
    return Telemetry(provider, provider.get_tracer("remediate", __version__), config.flush_timeout_seconds,
                     recording, target)


def _exporter(config: TelemetryConfig) -> tuple[SpanExporter, str] | None:
    env_enabled = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or
                       os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    if not (config.enabled or env_enabled) or config.exporter == "none":
        return None
    if config.exporter == "console":
        return ConsoleSpanExporter(), "console"
    if config.exporter == "json-file":
        path = config.trace_file or "remediate-traces.jsonl"
        handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - the exporter owns it until shutdown
        return ConsoleSpanExporter(out=handle, formatter=lambda span: span.to_json(indent=None) + "\n"), path
    # architect's `exporter: otlp` is gRPC; with only the standard variables, the OTLP default (http/protobuf).
    default = "grpc" if config.enabled else "http/protobuf"
    protocol = config.protocol or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or \
        os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or default
    timeout = config.flush_timeout_seconds
    headers = dict(config.headers) or None
    endpoint = config.endpoint
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        insecure = endpoint.startswith("http://") if endpoint else None
        return GrpcExporter(endpoint=endpoint, insecure=insecure, headers=headers, timeout=timeout), \
            f"OTLP/gRPC {endpoint or '(OTEL_EXPORTER_OTLP_ENDPOINT)'}"
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
    if endpoint and not endpoint.rstrip("/").endswith("/v1/traces"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    return HttpExporter(endpoint=endpoint, headers=headers, timeout=timeout), \
        f"OTLP/HTTP {endpoint or '(OTEL_EXPORTER_OTLP_ENDPOINT)'}"
