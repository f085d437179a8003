"""Reference images, fetched safely: from a URL (search results, the user) or a local file.

`fetch_reference(url_or_path, folder)` stores a verified image in `folder` under a name holding
its sha256 and returns a `ReferenceImage`, or raises `ReferenceRejected` with a one-line reason.

URLs are fetched over http(s) only, with a byte cap enforced while streaming, an overall
deadline, an image/* content type, at most three redirects (followed here, each one checked
again), and never from a private, loopback, link-local, multicast or reserved address unless
`CONTEXTGEN_ALLOW_PRIVATE_URLS=1`. The address is checked after DNS resolution and the
connection goes to that checked address, so a second lookup cannot swap it. Every image is
decoded by Pillow (a few safe formats only) under a pixel cap that stops decompression bombs.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import socket
import time
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import httpx
from PIL import Image

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
TIMEOUT_S = 15.0
MAX_REDIRECTS = 3
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
ALLOW_PRIVATE_ENV = "CONTEXTGEN_ALLOW_PRIVATE_URLS"
_URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_EXTENSIONS = {"JPEG": "jpg"}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ReferenceRejected(ValueError):
    """A reference image was not fetched or not stored; the message says why in one line."""


@dataclass(frozen=True)
class ReferenceImage:
    """A verified reference image stored on disk, with where it came from."""

    path: str
    sha256: str
    source: str
    width: int
    height: int


def fetch_reference(
    url_or_path: str,
    folder: str | Path,
    *,
    max_bytes: int = MAX_BYTES,
    timeout_s: float = TIMEOUT_S,
) -> ReferenceImage:
    """Download (or read) one image, verify it, store it in `folder` as reference-<sha256>.ext."""
    source = url_or_path.strip()
    if _URL_SCHEME.match(source):
        data = download_image(source, max_bytes=max_bytes, timeout_s=timeout_s)
    else:
        data = _read_local(source, max_bytes)
    width, height, image_format = verify_image(data, source)
    digest = hashlib.sha256(data).hexdigest()
    extension = _EXTENSIONS.get(image_format, image_format.lower())
    path = Path(folder) / f"reference-{digest}.{extension}"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(data)
        partial.replace(path)
    return ReferenceImage(str(path), digest, source, width, height)


def download_image(
    url: str,
    *,
    max_bytes: int = MAX_BYTES,
    timeout_s: float = TIMEOUT_S,
    trusted_host: str | None = None,
) -> bytes:
    """The body of an image URL, fetched under every rule in the module docstring.

    `trusted_host` (a host name) is exempt from the address check: an image server's own
    host, which the user configured, may well be local.
    """
    deadline = time.monotonic() + timeout_s
    with httpx.Client(trust_env=False, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            target = _parse_url(url)
            address = _checked_address(target, allow_any=target.host == trusted_host, url=url)
            try:
                response = _send_pinned(client, target, address, deadline)
            except httpx.TimeoutException as error:
                raise ReferenceRejected(f"{_short(url)}: timed out after {timeout_s:g}s") from error
            except httpx.HTTPError as error:
                raise ReferenceRejected(
                    f"{_short(url)}: could not download ({type(error).__name__}: "
                    f"{_first_line(error)})"
                ) from error
            try:
                if response.is_redirect:
                    url = str(target.join(response.headers.get("location", "")))
                    continue
                return _read_body(response, url, max_bytes, deadline, timeout_s)
            finally:
                response.close()
    raise ReferenceRejected(f"{_short(url)}: more than {MAX_REDIRECTS} redirects")


def verify_image(data: bytes, source: str, max_pixels: int = MAX_PIXELS) -> tuple[int, int, str]:
    """(width, height, format) of an image Pillow decodes whole, or `ReferenceRejected`."""
    try:
        with warnings.catch_warnings():  # the cap below is stricter than Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(BytesIO(data), formats=ALLOWED_FORMATS) as image:
                width, height, image_format = image.width, image.height, str(image.format)
    except Image.DecompressionBombError as error:
        raise ReferenceRejected(
            f"{_short(source)}: too many pixels (decompression bomb)"
        ) from error
    except Exception as error:  # Pillow raises many types for bytes that are not an image
        raise ReferenceRejected(
            f"{_short(source)}: not an image Pillow can read "
            f"(accepted: {', '.join(ALLOWED_FORMATS)})"
        ) from error
    if width * height > max_pixels:
        raise ReferenceRejected(
            f"{_short(source)}: {width}x{height} pixels is over the cap of {max_pixels:,} "
            "(decompression bomb guard)"
        )
    try:
        with Image.open(BytesIO(data), formats=ALLOWED_FORMATS) as image:
            image.verify()
        with Image.open(BytesIO(data), formats=ALLOWED_FORMATS) as image:
            image.load()
    except Exception as error:
        raise ReferenceRejected(
            f"{_short(source)}: the {image_format} image is damaged ({_first_line(error)})"
        ) from error
    return width, height, image_format


def private_urls_allowed() -> bool:
    """True when CONTEXTGEN_ALLOW_PRIVATE_URLS switches the address check off."""
    return os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address (not private, loopback, link-local, ...)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (address.is_multicast or address.is_reserved)


def _read_local(path_text: str, max_bytes: int) -> bytes:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise ReferenceRejected(
            f"{_short(path_text)}: no such file (give a path or an http(s) URL)"
        )
    size = path.stat().st_size
    if size > max_bytes:
        raise ReferenceRejected(
            f"{_short(path_text)}: {size:,} bytes is over the cap of {max_bytes:,}; "
            "pass a smaller image"
        )
    return path.read_bytes()


def _parse_url(url: str) -> httpx.URL:
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise ReferenceRejected(f"{_short(url)}: not a valid URL") from error
    if target.scheme not in {"http", "https"}:
        raise ReferenceRejected(f"{_short(url)}: only http(s) URLs and local files are fetched")
    if not target.host:
        raise ReferenceRejected(f"{_short(url)}: the URL names no host")
    return target


def _checked_address(target: httpx.URL, *, allow_any: bool, url: str) -> str:
    """The address to connect to: the first one DNS gives, after all of them pass the check."""
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(target.host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise ReferenceRejected(f"{_short(url)}: cannot resolve host {target.host!r}") from error
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not (allow_any or private_urls_allowed()):
        refused = [a for a in addresses if not is_public_address(a)]
        if refused:
            raise ReferenceRejected(
                f"{_short(url)}: {target.host} is a private, local or reserved address "
                f"({refused[0]}); set {ALLOW_PRIVATE_ENV}=1 to allow it"
            )
    return str(addresses[0])


def _send_pinned(
    client: httpx.Client, target: httpx.URL, address: str, deadline: float
) -> httpx.Response:
    """GET `target` from the checked `address`, keeping its Host header and TLS name."""
    remaining = max(deadline - time.monotonic(), 0.001)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    request = client.build_request(
        "GET",
        target.copy_with(host=address),
        headers={"Host": target.netloc.decode("ascii"), "Accept": "image/*"},
        timeout=httpx.Timeout(remaining),
        extensions=extensions,
    )
    return client.send(request, stream=True)


def _read_body(
    response: httpx.Response, url: str, max_bytes: int, deadline: float, timeout_s: float
) -> bytes:
    if response.status_code != 200:
        raise ReferenceRejected(f"{_short(url)}: the server answered HTTP {response.status_code}")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type.startswith("image/"):
        raise ReferenceRejected(
            f"{_short(url)}: content type {content_type or 'missing'!r} is not an image"
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ReferenceRejected(f"{_short(url)}: {int(declared):,} bytes is over {max_bytes:,}")
    body = bytearray()
    try:
        for chunk in response.iter_bytes():
            body.extend(chunk)
            if len(body) > max_bytes:
                raise ReferenceRejected(f"{_short(url)}: more than {max_bytes:,} bytes")
            if time.monotonic() > deadline:
                raise ReferenceRejected(f"{_short(url)}: timed out after {timeout_s:g}s")
    except httpx.TimeoutException as error:
        raise ReferenceRejected(f"{_short(url)}: timed out after {timeout_s:g}s") from error
    except httpx.HTTPError as error:
        raise ReferenceRejected(
            f"{_short(url)}: download broke off ({_first_line(error)})"
        ) from error
    return bytes(body)


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:200]
