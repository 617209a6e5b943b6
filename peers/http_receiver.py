"""A local receiver for outgoing webhooks (PagerDuty Events v2, generic JSON, Slack): records every
POST and answers with scripted statuses."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, statuses: list[int] | None = None, answer: dict[str, Any] | None = None) -> None:
        self.statuses = list(statuses or [])  # answered in order, then 202
        self.answer = answer or {"status": "success"}
        self.requests: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    def url(self, path: str = "/") -> str:
        assert self._server
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(raw)})
                status = receiver.statuses.pop(0) if receiver.statuses else 202
                data = json.dumps(receiver.answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
