"""Image generation through an OpenAI images API server: vLLM-Omni, SGLang, OpenAI, ...

`ImagesApiGenerator(settings)` sends `text2img` to `/images/generations` and `edit` to
`/images/edits` (the input images as files) with the official `openai` client, and writes the
answer (b64_json, or a URL fetched under a size cap) as a PNG. Servers other than OpenAI's own
get vLLM-Omni's extension fields too: `negative_prompt`, `num_inference_steps` and `seed`.

The client retries 408/409/429/5xx answers, dropped connections and timeouts with exponential
backoff (bounded by `max_retries`, honouring Retry-After); what still fails becomes one
`GeneratorUnavailable` line. The API key comes from CONTEXTGEN_GENERATOR_API_KEY only (a
local server needs none) and is kept nowhere but the client.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import mimetypes
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
from PIL import Image

from contextgen.graphs.state import ImageArtifact
from contextgen.tools.backend_protocols import GenerationMode, ProgressCallback
from contextgen.tools.errors import GeneratorUnavailable
from contextgen.tools.reference_images import ReferenceRejected, download_image, verify_image

logger = logging.getLogger(__name__)

API_KEY_ENV = "CONTEXTGEN_GENERATOR_API_KEY"
NO_KEY = "none"  # what a local server without authentication is sent
MAX_RESULT_BYTES = 50 * 1024 * 1024
MAX_RESULT_PIXELS = 64_000_000
OPENAI_HOSTS = ("api.openai.com", ".openai.azure.com")  # they refuse fields they do not know


@dataclass(frozen=True)
class ImagesApiSettings:
    """Where the server is and what to ask it (mirrors the generator fields of the context)."""

    base_url: str
    model: str = "Qwen/Qwen-Image"
    edit_model: str = ""
    edit_base_url: str = ""  # empty: the same server as `base_url`
    steps: int = 30
    width: int = 1024
    height: int = 1024
    timeout_s: float = 300.0
    max_retries: int = 3
    heartbeat_s: float = 1.0


class ImagesApiGenerator:
    """Text-to-image and edits on an images API server; one client per server, thread-safe."""

    def __init__(self, settings: ImagesApiSettings) -> None:
        if not settings.base_url.strip():
            raise GeneratorUnavailable(
                "No images API server configured: set CONTEXTGEN_GENERATOR_BASE_URL."
            )
        self.settings = settings
        self._client = _client(settings.base_url, settings)
        edit_url = settings.edit_base_url.strip() or settings.base_url
        self._edit_client = (
            self._client if edit_url == settings.base_url else _client(edit_url, settings)
        )

    @property
    def can_edit(self) -> bool:
        """True when an edit model is configured (`mode="edit"` needs one)."""
        return self.settings.edit_model.strip().lower() not in {"", "none"}

    def generate(
        self,
        prompt: str,
        negative_prompt: str,
        seed: int,
        out_path: str,
        round: int,
        on_step: ProgressCallback | None = None,
        mode: GenerationMode = "text2img",
        input_images: Sequence[str] = (),
    ) -> ImageArtifact:
        """Render one image to `out_path` (PNG) and describe it.

        `edit` sends `input_images` (local files: the image to edit first, then references) to
        the edit model. While the server works, `on_step(0, 1)` is called every `heartbeat_s`
        seconds, and `on_step(1, 1)` once the image is written.
        """
        [artifact] = self.generate_batch(
            prompt, negative_prompt, [seed], [out_path], round, on_step, mode, input_images
        )
        return artifact

    def generate_batch(
        self,
        prompt: str,
        negative_prompt: str,
        seeds: Sequence[int],
        out_paths: Sequence[str],
        round: int,
        on_step: ProgressCallback | None = None,
        mode: GenerationMode = "text2img",
        input_images: Sequence[str] = (),
    ) -> list[ImageArtifact]:
        """Several images in one request (`n`, seeded by the first seed, which every artifact
        records: the server seeds the batch), written to `out_paths` in order; a server that
        sends fewer than asked gives fewer artifacts. Otherwise as `generate`."""
        s = self.settings
        if not seeds or len(seeds) != len(out_paths):
            raise ValueError("generate_batch takes one output path per seed")
        count, seed = len(seeds), seeds[0]
        if mode == "edit":
            if not self.can_edit:
                raise GeneratorUnavailable(
                    "Editing needs an edit model: set CONTEXTGEN_EDIT_MODEL (and "
                    "CONTEXTGEN_EDIT_BASE_URL if another server serves it)."
                )
            client, model = self._edit_client, s.edit_model
            files = [_input_file(path) for path in input_images]
            if not files:
                raise GeneratorUnavailable("Editing needs at least one input image.")

            def call() -> Any:
                return client.images.edit(
                    model=model,
                    image=files if len(files) > 1 else files[0],
                    prompt=prompt,
                    size=f"{s.width}x{s.height}",
                    **({"n": count} if count > 1 else {}),
                    extra_body=self._extensions(client, negative_prompt, seed),
                )
        else:
            client, model = self._client, s.model

            def call() -> Any:
                return client.images.generate(
                    model=model,
                    prompt=prompt,
                    n=count,
                    size=f"{s.width}x{s.height}",
                    extra_body=self._extensions(client, negative_prompt, seed),
                )

        response = self._with_heartbeat(call, client, on_step)
        artifacts = []
        for data, out_path in zip(self._images_bytes(response, client), out_paths, strict=False):
            width, height = _write_png(data, Path(out_path))
            logger.info("Round %d image written to %s (%s via %s)", round, out_path, mode, model)
            artifacts.append(
                ImageArtifact(
                    path=str(out_path),
                    sha256=_sha256(Path(out_path)),
                    width=width,
                    height=height,
                    seed=seed,
                    round=round,
                    prompt=prompt,
                    model=model,
                    edited_from=input_images[0] if mode == "edit" else None,
                )
            )
        if on_step is not None:
            on_step(1, 1)
        return artifacts

    def _extensions(self, client: openai.OpenAI, negative_prompt: str, seed: int) -> dict:
        """vLLM-Omni's extra request fields, for servers that take them."""
        if not takes_extension_fields(client.base_url.host):
            return {}
        extra: dict[str, Any] = {"num_inference_steps": self.settings.steps, "seed": seed}
        if negative_prompt:
            extra["negative_prompt"] = negative_prompt
        return extra

    def _with_heartbeat(
        self, call: Callable[[], Any], client: openai.OpenAI, on_step: ProgressCallback | None
    ) -> Any:
        """Run `call`, reporting `on_step(0, 1)` every `heartbeat_s`; API errors become one line."""
        try:
            if on_step is None:
                return call()
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="images-api") as pool:
                future = pool.submit(call)
                on_step(0, 1)
                while True:
                    try:
                        return future.result(timeout=self.settings.heartbeat_s)
                    except FutureTimeout:
                        on_step(0, 1)
        except openai.OpenAIError as error:
            raise GeneratorUnavailable(self._explain(error, client)) from error
        except ValueError as error:  # a body that is not JSON
            raise GeneratorUnavailable(
                f"Image server {_display_url(client)} sent an answer that is not JSON: "
                "check CONTEXTGEN_GENERATOR_BASE_URL."
            ) from error

    def _explain(self, error: openai.OpenAIError, client: openai.OpenAI) -> str:
        s, server = self.settings, _display_url(client)
        tries = f"after {s.max_retries + 1} tries"
        if isinstance(error, openai.APITimeoutError):
            return (
                f"Image server {server} did not answer within {s.timeout_s:g}s ({tries}): "
                "check the server, or raise CONTEXTGEN_GENERATOR_TIMEOUT."
            )
        if isinstance(error, openai.APIConnectionError):
            return (
                f"Image server {server} cannot be reached ({tries}): start it, or fix "
                "CONTEXTGEN_GENERATOR_BASE_URL."
            )
        if isinstance(error, openai.APIStatusError):
            status, said = error.status_code, _server_message(error)
            if status in (401, 403):
                hint = f"set {API_KEY_ENV} to a key this server accepts"
            elif status == 404:
                hint = "check CONTEXTGEN_GENERATOR (the model) and that the base URL ends in /v1"
            elif status == 429:
                hint = f"the server is rate limiting ({tries}); try again later"
            elif status >= 500:
                hint = f"the server failed ({tries}); see its log"
            else:
                hint = "the server refused the request; check size, model and fields"
            return f"Image server {server} answered HTTP {status} ({said}): {hint}."
        return (
            f"Image server {server} sent an answer that is not the images API "
            f"({type(error).__name__}): check CONTEXTGEN_GENERATOR_BASE_URL."
        )

    def _images_bytes(self, response: Any, client: openai.OpenAI) -> list[bytes]:
        """Every image of a response, at least one, each checked by `_image_bytes`."""
        items = getattr(response, "data", None)
        if not isinstance(items, list) or not items:
            server = _display_url(client)
            raise GeneratorUnavailable(f"Image server {server} answered with no image.")
        return [self._image_bytes(item, client) for item in items]

    def _image_bytes(self, item: Any, client: openai.OpenAI) -> bytes:
        """One image of a response: decoded b64_json, or its URL fetched under a cap."""
        server = _display_url(client)
        b64_json, url = getattr(item, "b64_json", None), getattr(item, "url", None)
        try:
            if isinstance(b64_json, str) and b64_json:
                data = base64.b64decode(b64_json)
            elif isinstance(url, str) and url:
                data = download_image(
                    url,
                    max_bytes=MAX_RESULT_BYTES,
                    timeout_s=self.settings.timeout_s,
                    trusted_host=client.base_url.host,
                )
            else:
                raise GeneratorUnavailable(f"Image server {server} answered with no image.")
            verify_image(data, "the image", max_pixels=MAX_RESULT_PIXELS)
        except binascii.Error as error:
            raise GeneratorUnavailable(
                f"Image server {server} sent b64_json that is not base64."
            ) from error
        except ReferenceRejected as error:
            message = f"Image server {server} sent a bad image: {error}"
            raise GeneratorUnavailable(message) from error
        return data


def takes_extension_fields(host: str) -> bool:
    """False for OpenAI's own hosts, which refuse fields they do not know; True elsewhere."""
    host = host.lower()
    return not any(host == h or (h.startswith(".") and host.endswith(h)) for h in OPENAI_HOSTS)


def _client(base_url: str, settings: ImagesApiSettings) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=base_url,
        api_key=os.environ.get(API_KEY_ENV) or NO_KEY,
        timeout=settings.timeout_s,
        max_retries=settings.max_retries,
    )


def _input_file(path: str) -> tuple[str, bytes, str]:
    """(name, bytes, MIME type) of a local image, read once so a retry can send it again."""
    file = Path(path)
    if not file.is_file():
        raise GeneratorUnavailable(
            f"Input image {path!r} is not a local file: fetch reference images first."
        )
    return file.name, file.read_bytes(), mimetypes.guess_type(file.name)[0] or "image/png"


def _write_png(data: bytes, path: Path) -> tuple[int, int]:
    """Write `data` as a PNG (as is when it is one already); return its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(BytesIO(data)) as image:
        if image.format == "PNG":
            path.write_bytes(data)
        else:
            has_alpha = "A" in image.getbands() or "transparency" in image.info
            image.convert("RGBA" if has_alpha else "RGB").save(path, format="PNG")
        return image.width, image.height


def _server_message(error: openai.APIStatusError) -> str:
    body = error.body
    message = (body.get("message") or body.get("detail")) if isinstance(body, dict) else None
    text = str(message or error.message).strip().splitlines()
    return (text[0] if text else "no message")[:200]


def _display_url(client: openai.OpenAI) -> str:
    """The server's URL without any user:password part."""
    parts = urlsplit(str(client.base_url))
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
