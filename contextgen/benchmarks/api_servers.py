"""Local stand-ins for the model and search APIs a deployment talks to, with fixed latencies.

One HTTP server on 127.0.0.1 speaks three APIs, each after its own delay:

- the OpenAI chat API (POST /v1/chat/completions): the JSON object for the schema named in
  `response_format` (intent, subject choice, synthesis, judge verdict), canned;
- Tavily's search API (POST /search): one result about the platypus, whatever the query;
- the OpenAI images API (POST /v1/images/generations): a small PNG as `b64_json`.

So the real clients (`ChatOpenAI`, `TavilyClient`, the `openai` images client) run the real
graph while only the models are missing. Every request is counted per API and schema, with
the run marker (`RUN_MARKER` + digits) found in its body, so a benchmark can prove that each run
called each API exactly as often as it should.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from typing import Any

from PIL import Image

from contextgen.benchmarks.backends import BENCH_HIT, SYNTHESIS_PAYLOAD, intent_payload

RUN_MARKER = "bench-run-"
_MARKER = re.compile(rf"{RUN_MARKER}\d+")
BENCH_QUERIES = ["egg-laying mammal Australia"]

CHAT_REPLIES: dict[str, dict[str, Any]] = {
    "IntentReply": intent_payload(BENCH_QUERIES),
    "SubjectChoiceReply": {"choice": 1},
    "SynthesisReply": SYNTHESIS_PAYLOAD,
    "JudgeReply": {"score": 9, "problem": "none", "issues": [], "missing_knowledge": []},
}
TAVILY_RESULT = {"title": BENCH_HIT.title, "url": BENCH_HIT.source, "content": BENCH_HIT.content,
                 "score": BENCH_HIT.score, "raw_content": None}


def _png(size: int = 16) -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (size, size), (90, 70, 50)).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Latencies:
    """Seconds each API waits before it answers."""

    chat: float = 1.0
    search: float = 0.5
    images: float = 2.0


@dataclass
class ApiServers:
    """The running server's state: latencies (changeable while it runs) and what it served."""

    latencies: Latencies = field(default_factory=Latencies)
    counts: Counter = field(default_factory=Counter)  # (api, name) -> requests
    markers: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _png: bytes = field(default_factory=_png)

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT: Tavily's base URL; chat and images live under /v1."""
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def record(self, api: str, name: str, body: str) -> None:
        found = _MARKER.search(body)
        with self._lock:
            self.counts[(api, name)] += 1
            self.markers[(api, name)].append(found.group(0) if found else "")

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON reply) for one request, after the API's latency."""
        if path == "/v1/chat/completions":
            time.sleep(self.latencies.chat)
            schema = (body.get("response_format") or {}).get("json_schema", {}).get("name", "")
            if schema not in CHAT_REPLIES:
                return 400, {"error": {"message": f"no canned reply for schema {schema!r}"}}
            return 200, _chat_completion(body.get("model", "bench"), CHAT_REPLIES[schema])
        if path == "/search":
            time.sleep(self.latencies.search)
            return 200, {"query": body.get("query", ""), "answer": None, "images": [],
                         "results": [TAVILY_RESULT], "follow_up_questions": None,
                         "response_time": self.latencies.search}
        if path == "/v1/images/generations":
            time.sleep(self.latencies.images)
            image = base64.b64encode(self._png).decode()
            return 200, {"created": int(time.time()), "data": [{"b64_json": image}]}
        return 404, {"error": {"message": f"no route {path}"}}


def _chat_completion(model: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": json.dumps(payload)}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 50, "total_tokens": 100},
    }


_API_NAMES = {"/v1/chat/completions": "chat", "/search": "search",
              "/v1/images/generations": "images"}


def _handler(state: ApiServers) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the clients' connection pools expect

        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._send(400, {"error": {"message": "the body is not JSON"}})
                return
            api = _API_NAMES.get(self.path, "other")
            schema = (body.get("response_format") or {}).get("json_schema", {}).get("name")
            state.record(api, schema or api, raw.decode("utf-8", "replace"))
            self._send(*state.answer(self.path, body))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client went away
                pass

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # dozens of runs connect at once


def start_api_servers(latencies: Latencies | None = None) -> ApiServers:
    """Serve on a free port of 127.0.0.1 in a daemon thread; stop with `stop_api_servers`."""
    state = ApiServers(latencies=latencies or Latencies())
    state.server = _Server(("127.0.0.1", 0), _handler(state))
    threading.Thread(target=state.server.serve_forever, args=(0.05,), daemon=True).start()
    return state


def stop_api_servers(state: ApiServers) -> None:
    if state.server is not None:
        state.server.shutdown()
        state.server.server_close()


def api_environment(state: ApiServers) -> dict[str, str]:
    """The CONTEXTGEN_* settings (and the keys the clients insist on) that point every backend
    but memory at these servers."""
    return {
        "CONTEXTGEN_CHAT_BASE_URL": f"{state.url}/v1",
        "CONTEXTGEN_CHAT_MODEL": "bench-chat",
        "CONTEXTGEN_JUDGE_MODEL": "bench-judge",
        "CONTEXTGEN_JUDGE_BASE_URL": f"{state.url}/v1",
        "CONTEXTGEN_SEARCH": "tavily",
        "TAVILY_API_KEY": "tvly-bench",
        "TAVILY_API_BASE_URL": state.url,
        "CONTEXTGEN_GENERATOR": "bench-image",
        "CONTEXTGEN_GENERATOR_BASE_URL": f"{state.url}/v1",
        "CONTEXTGEN_WIDTH": "16",
        "CONTEXTGEN_HEIGHT": "16",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
