"""A local HTTP server that speaks Tavily's search API (POST /search), for tests.

Canned results are keyed by query words: a result is returned when its key word occurs
in the query. Every request is recorded (path, headers, JSON body). `fail_with(status)`
makes the following requests fail with that HTTP status and Tavily's error body.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_RESULTS: dict[str, list[dict[str, Any]]] = {
    "mooncake": [
        {
            "title": "Mooncake - Wikipedia",
            "url": "https://en.wikipedia.org/wiki/Mooncake",
            "content": "A mooncake is a Chinese bakery product traditionally eaten during the "
            "Mid-Autumn Festival. Most are round, with a thin golden-brown crust and a "
            "stamped top.",
            "score": 0.91,
            "raw_content": None,
        },
        {
            "title": "How mooncake molds work",
            "url": "https://example.org/mooncake-molds",
            "content": "Wooden molds press patterns such as lotus flowers and characters "
            "into the top of the pastry.",
            "score": 0.74,
            "raw_content": None,
        },
    ],
    "lantern": [
        {
            "title": "Lantern Festival",
            "url": "https://en.wikipedia.org/wiki/Lantern_Festival",
            "content": "Red paper lanterns are hung and riddles are written on them.",
            "score": 0.83,
            "raw_content": None,
        }
    ],
}

DEFAULT_IMAGES: dict[str, list[str]] = {
    "mooncake": ["https://upload.example.org/mooncake.jpg"],
}


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeTavily:
    """The server's state: canned data, recorded requests, and the failure switch."""

    results: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: dict(DEFAULT_RESULTS))
    images: dict[str, list[str]] = field(default_factory=lambda: dict(DEFAULT_IMAGES))
    requests: list[RecordedRequest] = field(default_factory=list)
    fail_status: int | None = None
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_with(self, status: int | None) -> None:
        """Answer every following request with this HTTP status (None: work again)."""
        self.fail_status = status

    def respond(self, body: dict[str, Any]) -> dict[str, Any]:
        """The JSON Tavily returns for a search request."""
        started = time.perf_counter()
        query = str(body.get("query", ""))
        words = {w.strip(".,?!").lower() for w in query.split()}
        results = [r for key, rs in self.results.items() if key in words for r in rs]
        results.sort(key=lambda r: r["score"], reverse=True)
        results = results[: int(body.get("max_results") or 5)]
        images = [u for key, us in self.images.items() if key in words for u in us]
        answer = None
        if body.get("include_answer") and results:
            answer = f"Summary: {results[0]['content'].split('.')[0]}."
        return {
            "query": query,
            "follow_up_questions": None,
            "answer": answer,
            "images": images if body.get("include_images") else [],
            "results": results,
            "response_time": round(time.perf_counter() - started, 4),
            "request_id": f"fake-{len(self.requests)}",
        }


def _handler(state: FakeTavily) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {}
            state.requests.append(RecordedRequest(self.path, dict(self.headers.items()), body))
            if state.fail_status is not None:
                self._send(state.fail_status, {"detail": {"error": "fake failure"}})
            elif self.path != "/search":
                self._send(404, {"detail": {"error": f"no route {self.path}"}})
            elif not self.headers.get("Authorization", "").startswith("Bearer "):
                self._send(401, {"detail": {"error": "Unauthorized: missing or invalid API key."}})
            else:
                self._send(200, state.respond(body))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


def start_fake_tavily(state: FakeTavily | None = None) -> FakeTavily:
    """Serve on 127.0.0.1 at a free port in a daemon thread; stop with `stop_fake_tavily`."""
    state = state or FakeTavily()
    state.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    threading.Thread(target=state.server.serve_forever, args=(0.05,), daemon=True).start()
    return state


def stop_fake_tavily(state: FakeTavily) -> None:
    if state.server is not None:
        state.server.shutdown()
        state.server.server_close()
