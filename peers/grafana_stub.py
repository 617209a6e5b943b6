"""A local stand-in for the Grafana HTTP API with one Loki data source, enough for `mcp-grafana` (PyPI) to
serve `query_loki_logs` for an incident: frontend settings, the data source by UID, and Loki's
`query_range` through Grafana's data source proxy. Every request is journaled with its auth header."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from peers.loopback import POLL_SECONDS

LOKI_UID = "loki-prod"


class GrafanaStub:
    def __init__(self, lines: list[tuple[dict[str, str], str]], token: str) -> None:
        """`lines`: (stream labels, log line) in time order; served with timestamps one millisecond apart."""
        self.lines = lines
        self.token = token
        self.requests: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> GrafanaStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlparse(request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.requests.append({"path": url.path, "query": query, "authorization": request.headers.get("Authorization")})
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._reply(request, 401, {"message": "invalid API key"})
        if url.path == "/api/frontend/settings":
            return self._reply(request, 200, {"buildInfo": {"version": "12.2.0", "edition": "Open Source"}})
        if url.path in (f"/api/datasources/uid/{LOKI_UID}", "/api/datasources/1"):
            return self._reply(request, 200, {"id": 1, "uid": LOKI_UID, "name": "Loki", "type": "loki",
                                              "url": "http://loki:3100", "access": "proxy", "isDefault": True})
        if url.path == "/api/datasources":
            return self._reply(request, 200, [{"id": 1, "uid": LOKI_UID, "name": "Loki", "type": "loki"}])
        prefix = f"/api/datasources/proxy/uid/{LOKI_UID}"
        if url.path.startswith(prefix) and url.path.endswith(("/loki/api/v1/query_range", "/loki/api/v1/query")):
            return self._reply(request, 200, self._loki(query))
        return self._reply(request, 404, {"message": "Not found"})

    def _loki(self, query: dict[str, str]) -> dict[str, Any]:
        """Loki's streams answer: the matching lines, newest first unless direction=forward, up to limit."""
        wanted = _selector(query.get("query", ""))
        limit = int(query.get("limit") or 100)
        base = int(time.time() * 1e9) - len(self.lines) * 1_000_000
        matching = [(base + i * 1_000_000, labels, line) for i, (labels, line) in enumerate(self.lines)
                    if all(labels.get(k) == v for k, v in wanted.items())]
        if query.get("direction", "backward") == "backward":
            matching.reverse()
        streams: dict[str, dict[str, Any]] = {}
        for ts, labels, line in matching[:limit]:
            key = json.dumps(labels, sort_keys=True)
            streams.setdefault(key, {"stream": labels, "values": []})["values"].append([str(ts), line])
        return {"status": "success", "data": {"resultType": "streams", "result": list(streams.values()),
                                              "stats": {}}}

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)


def _selector(logql: str) -> dict[str, str]:
    """The equality matchers of a LogQL stream selector, `{app="user-service", env="prod"} |= ...`."""
    inside = logql[logql.find("{") + 1: logql.find("}")] if "{" in logql else ""
    pairs = {}
    for part in inside.split(","):
        if "=" in part and "!=" not in part and "=~" not in part:
            key, value = part.split("=", 1)
            pairs[key.strip()] = value.strip().strip('"')
    return pairs
