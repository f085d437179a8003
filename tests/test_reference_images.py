"""Reference images fetched from a real local HTTP server, and every way a fetch is refused."""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from contextgen.tools import reference_images as ri
from contextgen.tools.reference_images import ReferenceRejected, fetch_reference


def png_bytes(
    size: tuple[int, int] = (24, 16), mode: str = "RGB", color: Any = (200, 40, 40)
) -> bytes:
    buffer = BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


GOOD_PNG = png_bytes()
BOMB_PNG = png_bytes((10_000, 10_000), mode="1", color=0)  # 100 M pixels in a few kB


class Routes:
    """What each path answers: (status, headers, body, seconds to wait first)."""

    def __init__(self) -> None:
        self.table: dict[str, tuple[int, dict[str, str], bytes, float]] = {}

    def add(
        self, path: str, body: bytes = b"", status: int = 200, delay: float = 0.0, **headers: str
    ) -> None:
        self.table[path] = (
            status,
            {k.replace("_", "-"): v for k, v in headers.items()},
            body,
            delay,
        )


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Routes]]:
    routes = Routes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            status, headers, body, delay = routes.table.get(
                self.path, (404, {"Content-Type": "text/plain"}, b"no such route", 0.0)
            )
            time.sleep(delay)
            self.send_response(status)
            for name, value in headers.items():
                if value != "omit":
                    self.send_header(name, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    png = {"Content_Type": "image/png"}
    routes.add("/good.png", GOOD_PNG, **png)
    routes.add("/big.png", b"\x89PNG" + b"\0" * (ri.MAX_BYTES + 1024), **png)
    routes.add("/big-undeclared.png", b"\0" * (ri.MAX_BYTES + 1024), Content_Length="omit", **png)
    routes.add("/page.html", b"<html>not an image</html>", Content_Type="text/html")
    routes.add("/fake.png", b"GIF89a but not really an image at all", **png)
    routes.add("/bomb.png", BOMB_PNG, **png)
    routes.add("/slow.png", GOOD_PNG, delay=2.0, **png)
    routes.add("/to-good", status=302, Location="/good.png")
    routes.add("/to-metadata", status=302, Location="http://169.254.169.254/latest/meta-data")
    routes.add("/loop", status=302, Location="/loop")
    routes.add("/gone.png", b"", status=404, **png)
    yield base, routes
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def allow_private(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTEXTGEN_ALLOW_PRIVATE_URLS", "1")


def test_good_png_is_stored_under_its_sha256(
    server: tuple[str, Routes], allow_private: None, tmp_path: Path
) -> None:
    base, _ = server
    ref = fetch_reference(f"{base}/good.png", tmp_path)

    digest = hashlib.sha256(GOOD_PNG).hexdigest()
    assert ref.sha256 == digest
    assert Path(ref.path) == tmp_path / f"reference-{digest}.png"
    assert Path(ref.path).read_bytes() == GOOD_PNG
    assert (ref.width, ref.height, ref.source) == (24, 16, f"{base}/good.png")
    # A redirect within the cap is followed, and the same image is stored once.
    again = fetch_reference(f"{base}/to-good", tmp_path)
    assert again.path == ref.path and again.source == f"{base}/to-good"
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/big.png", "over 10,485,760"),
        ("/big-undeclared.png", "more than 10,485,760 bytes"),
        ("/page.html", "content type 'text/html' is not an image"),
        ("/fake.png", "not an image Pillow can read"),
        ("/bomb.png", "10000x10000 pixels is over the cap"),
        ("/gone.png", "HTTP 404"),
        ("/loop", "more than 3 redirects"),
    ],
)
def test_bad_downloads_are_refused_in_one_line(
    server: tuple[str, Routes], allow_private: None, tmp_path: Path, path: str, reason: str
) -> None:
    base, _ = server
    with pytest.raises(ReferenceRejected) as caught:
        fetch_reference(f"{base}{path}", tmp_path)
    message = str(caught.value)
    assert reason in message and "\n" not in message
    assert message.startswith(f"{base}{path}") or message.startswith(base)
    assert list(tmp_path.iterdir()) == []


def test_timeout(server: tuple[str, Routes], allow_private: None, tmp_path: Path) -> None:
    base, _ = server
    started = time.monotonic()
    with pytest.raises(ReferenceRejected, match=r"timed out after 0.5s"):
        fetch_reference(f"{base}/slow.png", tmp_path, timeout_s=0.5)
    assert time.monotonic() - started < 1.5


def test_loopback_and_localhost_refused_without_the_switch(
    server: tuple[str, Routes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONTEXTGEN_ALLOW_PRIVATE_URLS", raising=False)
    base, _ = server
    port = base.rsplit(":", 1)[1]
    for url in (f"{base}/good.png", f"http://localhost:{port}/good.png"):
        with pytest.raises(ReferenceRejected, match=r"private, local or reserved address \(127"):
            fetch_reference(url, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_redirect_to_a_private_address_is_checked_again(
    server: tuple[str, Routes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first hop is allowed (127.0.0.1 counted as public here); the redirect is not."""
    monkeypatch.delenv("CONTEXTGEN_ALLOW_PRIVATE_URLS", raising=False)
    loopback = ipaddress.ip_address("127.0.0.1")
    monkeypatch.setattr(ri, "is_public_address", lambda address: address == loopback)
    base, _ = server
    assert fetch_reference(f"{base}/good.png", tmp_path).width == 24
    with pytest.raises(ReferenceRejected, match=r"169\.254\.169\.254 is a private, local"):
        fetch_reference(f"{base}/to-metadata", tmp_path)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "169.254.169.254",
        "224.0.0.1",
        "240.0.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "100.64.0.1",
    ],
)
def test_private_addresses_are_not_public(address: str) -> None:
    assert not ri.is_public_address(ipaddress.ip_address(address))


def test_public_addresses_are_public() -> None:
    assert ri.is_public_address(ipaddress.ip_address("93.184.215.14"))
    assert ri.is_public_address(ipaddress.ip_address("2606:4700::6810:84e5"))


def test_only_http_urls_and_existing_local_images(tmp_path: Path) -> None:
    for source, reason in [
        ("ftp://example.org/a.png", r"only http\(s\) URLs"),
        ("file:///etc/passwd", r"only http\(s\) URLs"),
        (str(tmp_path / "missing.png"), "no such file"),
    ]:
        with pytest.raises(ReferenceRejected, match=reason):
            fetch_reference(source, tmp_path / "refs")

    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ReferenceRejected, match="not an image"):
        fetch_reference(str(text), tmp_path / "refs")

    local = tmp_path / "photo.png"
    local.write_bytes(GOOD_PNG)
    ref = fetch_reference(str(local), tmp_path / "refs")
    assert ref.source == str(local) and ref.sha256 == hashlib.sha256(GOOD_PNG).hexdigest()
    assert Path(ref.path).parent == tmp_path / "refs" and Path(ref.path).read_bytes() == GOOD_PNG


def test_truncated_image_is_damaged(tmp_path: Path) -> None:
    buffer = BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 10)).save(buffer, format="JPEG")
    broken = tmp_path / "cut.jpg"
    broken.write_bytes(buffer.getvalue()[:200])
    with pytest.raises(ReferenceRejected, match="damaged|not an image"):
        fetch_reference(str(broken), tmp_path / "refs")
