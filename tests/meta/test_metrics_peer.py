"""The metrics MCP peer (peers/mcp_metrics.py) answers as its script says, seen through the official SDK's
client: successive values per query, the last one repeating, null as a tool error, an unscripted query as no
series, structured content shaped like Datadog's beside a text rendering, and a bearer token required."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from peers.harness import McpProcess
from peers.mcp_metrics import start_metrics

TOKEN = "metrics-token-123456"
MEMORY = "p95:container.memory.usage{service:user-service}"
SCRIPT = {MEMORY: [512_000_000, None, 131_000_000.5],
          "p95 memory": {"values": [123456, 120000], "unit": "bytes"},
          "trend": {"values": [[3, 2, 1]], "unit": "MB"}}


@pytest.fixture(scope="module")
def metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpProcess]:
    server = start_metrics(tmp_path_factory.mktemp("metrics"), SCRIPT, token=TOKEN)
    yield server
    server.stop()


def calls(server: McpProcess, *requests: tuple[str, dict[str, Any]]) -> list[Any]:
    async def run() -> list[Any]:
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {server.token}"}) as http, \
                Client(streamable_http_client(server.url, http_client=http)) as client:
            return [await client.call_tool(name, arguments) for name, arguments in requests]
    return asyncio.run(run())


def test_each_call_takes_the_next_value_and_the_last_repeats(metrics):
    answers = calls(metrics, *[("query_metrics", {"query": MEMORY})] * 4)
    assert [a.is_error for a in answers] == [False, True, False, False]
    first = answers[0].structured_content
    [series] = first["series"]
    assert (series["metric"], series["scope"], series["expression"]) == ("container.memory.usage",
                                                                          "service:user-service", MEMORY)
    [[stamp, value]] = series["pointlist"]
    assert value == 512_000_000 and abs(stamp / 1000 - time.time()) < 60
    assert answers[0].content[0].text == f"{MEMORY}: 512000000"
    assert "error" in answers[1].content[0].text
    assert [a.structured_content["series"][0]["pointlist"][0][1] for a in answers[2:]] == [131_000_000.5] * 2
    served = [(c["value"], c["index"]) for c in metrics.calls() if c["arguments"] == {"query": MEMORY}]
    assert served == [(512_000_000, 0), (None, 1), (131_000_000.5, 2), (131_000_000.5, 2)]


def test_text_answers_share_the_sequence_and_an_unscripted_query_has_no_series(metrics):
    text, structured, unknown, trend = calls(metrics, ("query_text", {"query": "p95 memory"}),
                                             ("query_metrics", {"query": "p95 memory"}),
                                             ("query_metrics", {"query": "avg:nothing.here{*}"}),
                                             ("query_metrics", {"query": "trend"}))
    assert text.content[0].text == "p95 memory: 123456 bytes" and text.structured_content is None
    assert structured.structured_content["series"][0]["pointlist"][0][1] == 120000
    assert structured.structured_content["series"][0]["unit"] == "bytes"
    assert not unknown.is_error and unknown.structured_content["series"] == []
    points = trend.structured_content["series"][0]["pointlist"]
    assert [v for _, v in points] == [3, 2, 1] and points[1][0] - points[0][0] == 60_000


def test_hang_waits_and_the_server_wants_its_token(metrics):
    started = time.monotonic()
    [answer] = calls(metrics, ("hang", {"seconds": 0.2}))
    assert not answer.is_error and time.monotonic() - started >= 0.2
    request = urllib.request.Request(metrics.url, data=b"{}", method="POST",
                                     headers={"Authorization": "Bearer wrong", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
