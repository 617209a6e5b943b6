"""A scripted OpenAI-compatible chat-completions server for the demo and the tests.

Each request is answered by the next step of a script: a list of
{"content": str?, "tool_calls": [{"name": str, "arguments": {...} | str}], "usage": {...}?}.
Requests are recorded so tests can assert on what the model was shown. Plain JSON and SSE streaming.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

from peers.loopback import QuietHandler, base_url, serve, stop


class ScriptedLLM:
    def __init__(self, script: list[dict[str, Any]], api_key: str = "sk-test-key-000000000000000000000000",
                 model: str = "gpt-4.1-mini") -> None:
        self.script = list(script)
        self.api_key = api_key
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server
        return f"{base_url(self._server)}/v1"

    def start(self) -> ScriptedLLM:
        stub = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.read_body() or b"{}")
                if self.headers.get("Authorization") != f"Bearer {stub.api_key}":
                    return self.send_json(401, {"error": {"message": "invalid api key", "type": "auth"}})
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self.send_json(404, {"error": {"message": f"no route {self.path}"}})
                with stub._lock:
                    stub.requests.append(body)
                    stub.headers.append(dict(self.headers))
                    step = stub.script.pop(0) if stub.script else {"content": "I have nothing more to do."}
                if step.get("status"):
                    return self.send_json(step["status"], {"error": {"message": step.get("error", "scripted failure")}})
                if body.get("stream"):
                    return self._stream(body, step)
                time.sleep(step.get("pause_seconds", 0))  # a slow model: the answer comes late
                return self.send_json(200, stub.completion(body, step))

            def _stream(self, body: dict[str, Any], step: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                if step.get("empty_stream"):  # as llama.cpp's server answers a streamed request with tools
                    return
                for chunk in stub.chunks(body, step):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(step.get("pause_seconds", 0))  # a slow stream: each chunk comes late
                self.wfile.write(b"data: [DONE]\n\n")

        self._server = serve(Handler)
        return self

    def stop(self) -> None:
        stop(self._server)

    def _calls(self, step: dict[str, Any]) -> list[dict[str, Any]]:
        calls = []
        for i, call in enumerate(step.get("tool_calls", [])):
            args = call.get("arguments", {})
            calls.append({"id": f"call_{len(self.requests)}_{i}", "type": "function",
                          "function": {"name": call["name"],
                                       "arguments": args if isinstance(args, str) else json.dumps(args)}})
        return calls

    def _usage(self, body: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        if "usage" in step:
            return step["usage"]
        # A plausible count: about four bytes a token, like real tokenizers on English and code.
        prompt = len(json.dumps(body.get("messages", []))) // 4
        return {"prompt_tokens": prompt, "completion_tokens": 50, "total_tokens": prompt + 50,
                "prompt_tokens_details": {"cached_tokens": 0}}

    def completion(self, body: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        calls = self._calls(step)
        message: dict[str, Any] = {"role": "assistant", "content": step.get("content")}
        if calls:
            message["tool_calls"] = calls
        return {"id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", self.model),
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
                "usage": self._usage(body, step)}

    def chunks(self, body: dict[str, Any], step: dict[str, Any]) -> list[dict[str, Any]]:
        base = {"id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model", self.model)}
        chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}]
        if step.get("content"):
            text = step["content"]
            for piece in (text[: len(text) // 2], text[len(text) // 2:]):
                chunks.append({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        for index, call in enumerate(self._calls(step)):
            arguments = call["function"]["arguments"]
            half = len(arguments) // 2
            chunks.append({**base, "choices": [{"index": 0, "finish_reason": None, "delta": {"tool_calls": [
                {"index": index, "id": call["id"], "type": "function",
                 "function": {"name": call["function"]["name"], "arguments": arguments[:half]}}]}}]})
            chunks.append({**base, "choices": [{"index": 0, "finish_reason": None, "delta": {"tool_calls": [
                {"index": index, "function": {"arguments": arguments[half:]}}]}}]})
        finish = "tool_calls" if step.get("tool_calls") else "stop"
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        chunks.append({**base, "choices": [], "usage": self._usage(body, step)})
        return chunks
