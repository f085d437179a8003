"""A local HTTP server that speaks the OpenAI images API, for tests.

POST /v1/images/generations (JSON) and POST /v1/images/edits (multipart, `image` or `image[]`)
answer with real PNGs drawn by Pillow: one solid colour per (prompt, seed, index), at the
requested `size`. They come back as `b64_json`, or as `url` (served from GET /files/<name>)
when the request or `FakeImages.response_format` asks for it. Every request is recorded.

Failure switches: `fail_next(status, times)` (e.g. one 429, then success), `fail_always(status)`,
`delay_s` (answer later than the client waits), and `garbage` ("b64": base64 of bytes that are
not an image; "json": a body that is not JSON; "shape": JSON without images).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from typing import Any, Literal

from PIL import Image


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # names in lower case
    fields: dict[str, Any]  # JSON body, or the multipart text fields
    files: list[tuple[str, str, bytes]] = field(default_factory=list)  # (field, filename, bytes)


@dataclass
class FakeImages:
    """The server's state: recorded requests, served files, and the failure switches."""

    response_format: Literal["b64_json", "url"] = "b64_json"
    delay_s: float = 0.0
    garbage: Literal["", "b64", "json", "shape"] = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    failures: list[int] = field(default_factory=list)
    always_fail: int | None = None
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The base URL clients use (it ends in /v1, like vLLM's and OpenAI's)."""
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` image requests with this HTTP status, then work again."""
        self.failures.extend([status] * times)

    def fail_always(self, status: int | None) -> None:
        """Answer every image request with this HTTP status (None: work again)."""
        self.always_fail = status

    def image_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith("/v1/images/")]

    def answer(self, request: RecordedRequest) -> dict[str, Any]:
        """The images API response body for a generation or edit request."""
        fields = request.fields
        width, height = (int(v) for v in str(fields.get("size") or "64x64").split("x"))
        fmt = fields.get("response_format") or self.response_format
        data = []
        for index in range(int(fields.get("n") or 1)):
            key = f"{fields.get('prompt')}|{fields.get('seed')}|{index}|{len(request.files)}"
            png = solid_png(width, height, hashlib.sha256(key.encode()).digest()[:3])
            if self.garbage == "b64":
                png = b"this is not an image at all"
            if fmt == "url":
                name = f"{hashlib.sha256(png).hexdigest()[:16]}.png"
                self.files[name] = png
                host, port = self.server.server_address[:2] if self.server else ("", 0)
                data.append({"url": f"http://{host}:{port}/files/{name}", "revised_prompt": None})
            else:
                data.append({"b64_json": base64.b64encode(png).decode(), "revised_prompt": None})
        return {"created": int(time.time()), "data": data}


def solid_png(width: int, height: int, rgb: bytes) -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (width, height), tuple(rgb)).save(buffer, format="PNG")
    return buffer.getvalue()


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], list]:
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, Any] = {}
    files: list[tuple[str, str, bytes]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        payload = part.get_payload(decode=True) or b""
        if filename is not None:
            files.append((str(name), filename, payload))
        else:
            fields[str(name)] = payload.decode()
    return fields, files


def _handler(state: FakeImages) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            name = self.path.removeprefix("/files/")
            if name in state.files:
                self._send(200, state.files[name], "image/png")
            else:
                self._error(404, f"no file {self.path}")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                fields, files = _parse_multipart(content_type, body)
            else:
                fields, files = json.loads(body or b"{}"), []
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = RecordedRequest(self.path, headers, fields, files)
            state.requests.append(request)
            time.sleep(state.delay_s)
            if self.path not in {"/v1/images/generations", "/v1/images/edits"}:
                self._error(404, f"no route {self.path}")
            elif state.failures:
                self._error(state.failures.pop(0), "fake failure")
            elif state.always_fail is not None:
                self._error(state.always_fail, "fake failure")
            elif self.path.endswith("/edits") and not files:
                self._error(400, "edits need at least one image")
            elif state.garbage == "json":
                self._send(200, b"\x89\x00 not json {", "application/json")
            elif state.garbage == "shape":
                self._send(200, b'{"created": 1, "data": "no list here"}', "application/json")
            else:
                self._send(200, json.dumps(state.answer(request)).encode(), "application/json")

        def _error(self, status: int, message: str) -> None:
            payload = {"error": {"message": message, "type": "fake_error", "code": status}}
            self._send(status, json.dumps(payload).encode(), "application/json")

        def _send(self, status: int, data: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                pass

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


def start_fake_images(state: FakeImages | None = None) -> FakeImages:
    """Serve on 127.0.0.1 at a free port in a daemon thread; stop with `stop_fake_images`."""
    state = state or FakeImages()
    state.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    threading.Thread(target=state.server.serve_forever, args=(0.05,), daemon=True).start()
    return state


def stop_fake_images(state: FakeImages) -> None:
    if state.server is not None:
        state.server.shutdown()
        state.server.server_close()
