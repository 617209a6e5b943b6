"""How long the end-of-run flush holds a run, with a healthy, an unresponsive and an absent collector.

    .venv/bin/python bench/telemetry_flush.py

Each case: a provider as a run sets it up, 200 spans, then `Telemetry.shutdown()`, timed.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from peers.otlp_receiver import GrpcReceiver, HttpReceiver
from remediate.config import TelemetryConfig
from remediate.telemetry import setup


def timed_shutdown(endpoint: str, protocol: str, flush_timeout: float) -> float:
    telemetry = setup(TelemetryConfig(enabled=True, endpoint=endpoint, protocol=protocol,
                                      flush_timeout_seconds=flush_timeout))
    with telemetry.span("invoke_agent remediate"):
        for i in range(200):
            with telemetry.span(f"execute_tool t{i}", {"i": i}):
                pass
    started = time.monotonic()
    telemetry.shutdown()
    return time.monotonic() - started


def main() -> None:
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(64)  # accepts into the backlog, never answers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens: connection refused
    print("| collector | protocol | flush timeout | shutdown took |")
    print("|---|---|---|---|")
    for protocol, receiver in (("grpc", GrpcReceiver()), ("http/protobuf", HttpReceiver())):
        receiver.start()
        cases = [("healthy", receiver.endpoint), ("unresponsive", f"http://127.0.0.1:{blackhole.getsockname()[1]}"),
                 ("connection refused", f"http://127.0.0.1:{closed_port}")]
        for label, endpoint in cases:
            for flush_timeout in (1.0, 2.0):
                took = timed_shutdown(endpoint, protocol, flush_timeout)
                print(f"| {label} | {protocol} | {flush_timeout:.0f} s | {took:.2f} s |")
        receiver.stop()


if __name__ == "__main__":
    main()
