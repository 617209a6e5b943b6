"""One trace per run, exported over OTLP to real receivers on loopback (gRPC and HTTP/protobuf)."""

from __future__ import annotations

import json
import re
import socket
import threading

import pytest

from peers import scenarios
from peers.otlp_receiver import GrpcReceiver, HttpReceiver

PAYLOAD_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PAYLOAD_SPAN = "00f067aa0ba902b7"


@pytest.fixture(params=["grpc", "http/protobuf"])
def receiver(request):
    server = (GrpcReceiver() if request.param == "grpc" else HttpReceiver()).start()
    server.protocol = request.param
    yield server
    server.stop()


def _telemetry(endpoint: str, protocol: str, extra: str = "") -> str:
    return (f"telemetry:\n  enabled: true\n  exporter: otlp\n  endpoint: {endpoint}\n  protocol: {protocol}\n"
            f"  headers: {{x-tenant: sre}}\n{extra}")


@pytest.mark.entrypoint
def test_run_is_one_trace_continuing_the_incident(remediate, receiver, mcp):
    out = remediate(scenarios.good_fix(), config_extra=_telemetry(receiver.endpoint, receiver.protocol))
    assert out.run.exit_code == 0
    spans = receiver.spans
    assert spans, "no span reached the receiver"
    assert {s.trace_id for s in spans} == {PAYLOAD_TRACE}
    assert all(h.get("x-tenant") == "sre" for h in receiver.headers)

    [root] = receiver.named("invoke_agent remediate")
    assert root.parent_span_id == PAYLOAD_SPAN  # a child of the span the payload's traceparent named
    assert root.attributes["remediate.incident.id"] == "INC-1234"
    assert root.attributes["remediate.outcome"] == "fixed"
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert root.attributes["gen_ai.request.model"] == "gpt-4.1-mini"
    assert root.resource["service.name"] == "remediate"

    chats = receiver.named("chat gpt-4.1-mini")
    per_call = out.run.report["llm"]["per_call"]
    assert len(chats) == len(per_call) == 5
    assert sorted(c.attributes["gen_ai.usage.input_tokens"] for c in chats) == sorted(
        c["input_tokens"] for c in per_call)
    for chat in chats:
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.provider.name"] == "openai"
        assert chat.attributes["gen_ai.request.model"] == "gpt-4.1-mini"
        assert chat.attributes["gen_ai.usage.output_tokens"] == 50

    tools = [s.attributes["gen_ai.tool.name"] for s in spans if s.name.startswith("execute_tool ")]
    assert tools.count("edit_file") == 3 and "finish" in tools and "run_tests" in tools
    guardrails = [s for s in spans if s.name.startswith("guardrail ")]
    assert len(guardrails) == 4 and all(s.attributes["remediate.guardrail.allowed"] for s in guardrails)

    [mcp_span] = receiver.named("tools/call get_incident_logs")
    assert mcp_span.attributes["mcp.method.name"] == "tools/call"
    assert mcp_span.attributes["gen_ai.tool.name"] == "get_incident_logs"
    # OTel MCP conventions: transport, peer address and the negotiated protocol revision.
    assert (mcp_span.attributes["network.transport"], mcp_span.attributes["server.address"]) == ("tcp", "127.0.0.1")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", mcp_span.attributes["mcp.protocol.version"])
    # The MCP server received this span as the parent of its work.
    assert mcp.calls()[0]["meta"]["traceparent"] == f"00-{PAYLOAD_TRACE}-{mcp_span.span_id}-01"

    names = {s.name for s in spans}
    assert {"test_run", "git commit", "git push", "github pull_request", "stage agent", "stage tests"} <= names
    by_id = {s.span_id: s for s in spans}
    for span in spans:
        if span is not root:
            assert span.parent_span_id in by_id, f"{span.name} hangs outside the run's tree"


def test_trace_id_links_from_report_pr_and_outputs(remediate, mcp):
    template = "https://grafana.example/explore?traceId={trace_id}"
    out = remediate(scenarios.good_fix(), config_extra=f"telemetry:\n  trace_url_template: \"{template}\"\n")
    url = template.format(trace_id=PAYLOAD_TRACE)
    assert out.run.outputs["trace-id"] == PAYLOAD_TRACE
    assert out.run.report["trace_url"] == url
    assert f"[`{PAYLOAD_TRACE}`]({url})" in out.github.pulls[0]["body"]


@pytest.fixture
def blackhole():
    """A collector that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_an_unresponsive_collector_does_not_fail_the_run(remediate, blackhole, protocol):
    extra = _telemetry(blackhole, protocol, "  flush_timeout_seconds: 1\n")
    out = remediate(scenarios.good_fix(), config_extra=extra)
    assert out.run.exit_code == 0 and out.run.outputs["outcome"] == "fixed"
    assert out.run.outputs["trace-id"] == PAYLOAD_TRACE
    # Never silent: the report and the run log say the trace did not arrive.
    telemetry = out.run.report["telemetry"]
    assert telemetry["exported"] is False and telemetry["error"], telemetry
    warned = [line for line in out.run.stdout.splitlines() if line.startswith("::warning::telemetry: the trace")]
    assert len(warned) == 1


def test_architects_otlp_exporter_is_grpc_on_any_port(remediate, mcp):
    """architect's `telemetry: {exporter: otlp, endpoint: ...}` with no protocol, a collector on a port that is not
    4317: the trace arrives over gRPC, and the report says it was exported."""
    receiver = GrpcReceiver().start()
    try:
        assert not receiver.endpoint.endswith(":4317")
        extra = f"telemetry: {{enabled: true, exporter: otlp, endpoint: {receiver.endpoint}}}\n"
        out = remediate(scenarios.good_fix(), config_extra=extra)
    finally:
        receiver.stop()
    assert out.run.exit_code == 0
    assert receiver.named("invoke_agent remediate") and {s.trace_id for s in receiver.spans} == {PAYLOAD_TRACE}
    telemetry = out.run.report["telemetry"]
    assert telemetry["exported"] is True and telemetry["error"] is None and telemetry["spans"] == len(receiver.spans)
    assert telemetry["exporter"].startswith("OTLP/gRPC")


def test_the_json_file_exporter_writes_the_trace(remediate, tmp_path):
    trace_file = tmp_path / "traces.jsonl"
    out = remediate(scenarios.good_fix(),
                    config_extra=f"telemetry: {{enabled: true, exporter: json-file, trace_file: {trace_file}}}\n")
    assert out.run.exit_code == 0
    spans = [json.loads(line) for line in trace_file.read_text().splitlines()]
    assert "invoke_agent remediate" in {s["name"] for s in spans}
    assert {s["context"]["trace_id"] for s in spans} == {"0x" + PAYLOAD_TRACE}
    assert out.run.report["telemetry"]["exported"] is True


def test_a_config_error_still_has_a_trace_id_in_every_output(remediate):
    out = remediate(scenarios.good_fix(), config="llm: {model: 3}\n")
    assert out.run.outputs["outcome"] == "error" and re.fullmatch(r"[0-9a-f]{32}", out.run.outputs["trace-id"])
    assert out.run.report["trace_id"] == out.run.outputs["trace-id"]


@pytest.mark.entrypoint  # the SDK reads OTEL_* from the process
def test_standard_otel_variables_alone_enable_export(remediate, mcp):
    receiver = HttpReceiver().start()
    try:
        out = remediate(scenarios.good_fix(), env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                                                   "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                                                   "OTEL_EXPORTER_OTLP_HEADERS": "x-team=payments",
                                                   "OTEL_SERVICE_NAME": "remediate-prod"})
    finally:
        receiver.stop()
    assert out.run.exit_code == 0
    [root] = receiver.named("invoke_agent remediate")
    assert root.resource["service.name"] == "remediate-prod"
    assert all(h.get("x-team") == "payments" for h in receiver.headers)
