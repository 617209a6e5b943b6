"""A local receiver for outgoing webhooks (PagerDuty Events v2, generic JSON, Slack): records every
POST and answers with scripted statuses."""

from __future__ import annotations

import json
from http.server import ThreadingHTTPServer
from typing import Any

from peers.loopback import QuietHandler, base_url, serve, stop


class Receiver:
    def __init__(self, statuses: list[int] | None = None, answer: dict[str, Any] | None = None) -> None:
        self.statuses = list(statuses or [])  # answered in order, then 202
        self.answer = answer or {"status": "success"}
        self.requests: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    def url(self, path: str = "/") -> str:
        assert self._server
        return base_url(self._server) + path

    def start(self) -> Receiver:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.read_body()
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(raw)})
                self.send_json(receiver.statuses.pop(0) if receiver.statuses else 202, receiver.answer)

        self._server = serve(Handler)
        return self

    def stop(self) -> None:
        stop(self._server)
