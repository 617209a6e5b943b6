"""OTLP trace receivers on loopback, gRPC and HTTP/protobuf, built on the official OTLP protobuf
definitions (`opentelemetry-proto`). They keep every exported span for the tests to inspect."""

from __future__ import annotations

import gzip
import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from peers.loopback import QuietHandler, base_url, serve, stop


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    events: tuple[str, ...]
    status_code: int
    resource: dict[str, Any]


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def _attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


class _Store:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest, headers: dict[str, str]) -> None:
        with self._lock:
            self.headers.append(headers)
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(ReceivedSpan(
                            span.name, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(),
                            _attributes(span.attributes), tuple(e.name for e in span.events),
                            span.status.code, resource))

    def named(self, name: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name == name]


class GrpcReceiver(_Store):
    def start(self) -> GrpcReceiver:
        store = self

        class Servicer(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):  # noqa: N802 - the generated interface's name
                store.add(request, dict(context.invocation_metadata()))
                return trace_service_pb2.ExportTraceServiceResponse()

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.stop(grace=None)


class HttpReceiver(_Store):
    def start(self) -> HttpReceiver:
        store = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.read_body()
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    return self.send_bytes(404, b"", "text/plain")
                store.add(trace_service_pb2.ExportTraceServiceRequest.FromString(body), dict(self.headers))
                data = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_bytes(200, data, "application/x-protobuf")

        self._server = serve(Handler)
        return self

    @property
    def endpoint(self) -> str:
        return base_url(self._server)

    def stop(self) -> None:
        stop(self._server)
