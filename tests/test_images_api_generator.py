"""The images API generator with the real `openai` client against a local images server."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from contextgen.graphs.context import Context
from contextgen.tools.backends import Backends
from contextgen.tools.errors import GeneratorUnavailable
from contextgen.tools.images_api_generator import (
    ImagesApiGenerator,
    ImagesApiSettings,
    takes_extension_fields,
)
from tests.fake_images_server import FakeImages, start_fake_images, stop_fake_images


@pytest.fixture
def server() -> Iterator[FakeImages]:
    state = start_fake_images()
    yield state
    stop_fake_images(state)


@pytest.fixture(autouse=True)
def no_key_no_private(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTEXTGEN_GENERATOR_API_KEY", raising=False)
    monkeypatch.delenv("CONTEXTGEN_ALLOW_PRIVATE_URLS", raising=False)


def make(base_url: str, **overrides: object) -> ImagesApiGenerator:
    settings = {"model": "Qwen/Qwen-Image", "steps": 4, "width": 48, "height": 32}
    settings.update(overrides)
    return ImagesApiGenerator(ImagesApiSettings(base_url=base_url, **settings))  # type: ignore[arg-type]


def input_png(path: Path, color: tuple[int, int, int]) -> str:
    Image.new("RGB", (16, 16), color).save(path, format="PNG")
    return str(path)


def test_generation_writes_png_and_sends_size_seed_steps(
    server: FakeImages, tmp_path: Path
) -> None:
    steps: list[tuple[int, int]] = []
    out = tmp_path / "round-1.png"

    art = make(server.url).generate(
        "a round golden-brown mooncake",
        "blurry",
        7,
        str(out),
        1,
        on_step=lambda *a: steps.append(a),
    )

    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (48, 32)
    assert art.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert (art.width, art.height, art.seed, art.round, art.edited_from) == (48, 32, 7, 1, None)
    assert art.model == "Qwen/Qwen-Image" and art.path == str(out)
    [request] = server.image_requests()
    assert request.path == "/v1/images/generations"
    assert request.fields["model"] == "Qwen/Qwen-Image" and request.fields["size"] == "48x32"
    assert request.fields["prompt"] == "a round golden-brown mooncake"
    assert (request.fields["seed"], request.fields["num_inference_steps"]) == (7, 4)
    assert request.fields["negative_prompt"] == "blurry"
    assert request.headers["authorization"] == "Bearer none"  # a local server needs no key
    assert steps[0] == (0, 1) and steps[-1] == (1, 1)


def test_seed_changes_the_image_and_the_key_comes_from_the_environment(
    server: FakeImages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTEXTGEN_GENERATOR_API_KEY", "sk-test-secret")
    generator = make(server.url)
    first = generator.generate("a lantern", "", 1, str(tmp_path / "a.png"), 1)
    second = generator.generate("a lantern", "", 2, str(tmp_path / "b.png"), 2)
    assert first.sha256 != second.sha256
    assert {r.headers["authorization"] for r in server.image_requests()} == {
        "Bearer sk-test-secret"
    }
    assert "sk-test-secret" not in first.model_dump_json() + repr(generator.settings)


def test_url_responses_are_fetched_from_the_server(server: FakeImages, tmp_path: Path) -> None:
    server.response_format = "url"
    art = make(server.url).generate("a kite", "", 3, str(tmp_path / "kite.png"), 1)
    with Image.open(art.path) as image:
        assert image.size == (48, 32)
    assert [r.path for r in server.requests] == ["/v1/images/generations"]
    assert len(server.files) == 1  # and it was served from /files/ (no private-URL switch needed)


def test_url_on_another_private_host_is_refused(server: FakeImages, tmp_path: Path) -> None:
    server.response_format = "url"  # the answer names 127.0.0.1; the client was told localhost
    port = server.url.split(":")[2].split("/")[0]
    with pytest.raises(GeneratorUnavailable, match=r"sent a bad image: .*private, local"):
        make(f"http://localhost:{port}/v1").generate("a kite", "", 3, str(tmp_path / "k.png"), 1)


def test_edit_sends_images_as_files_with_the_extension_fields(
    server: FakeImages, tmp_path: Path
) -> None:
    base = input_png(tmp_path / "round-1.png", (200, 10, 10))
    reference = input_png(tmp_path / "reference.png", (10, 10, 200))
    generator = make(server.url, edit_model="Qwen/Qwen-Image-Edit-2509")
    assert generator.can_edit

    single = generator.generate(
        "make it red", "", 5, str(tmp_path / "e1.png"), 2, mode="edit", input_images=[base]
    )
    double = generator.generate(
        "make it red",
        "",
        5,
        str(tmp_path / "e2.png"),
        3,
        mode="edit",
        input_images=[base, reference],
    )

    one, two = server.image_requests()
    assert one.path == two.path == "/v1/images/edits"
    assert [(f[0], f[1]) for f in one.files] == [("image", "round-1.png")]
    assert [f[0] for f in two.files] == ["image[]", "image[]"]
    assert two.files[1][2] == Path(reference).read_bytes()
    assert one.fields["model"] == "Qwen/Qwen-Image-Edit-2509" and one.fields["size"] == "48x32"
    assert (one.fields["seed"], one.fields["num_inference_steps"]) == ("5", "4")
    assert single.edited_from == base and single.model == "Qwen/Qwen-Image-Edit-2509"
    assert single.sha256 != double.sha256  # the fake server draws per input count


def test_edits_can_go_to_their_own_server(server: FakeImages, tmp_path: Path) -> None:
    edit_server = start_fake_images()
    try:
        generator = make(server.url, edit_model="edit-model", edit_base_url=edit_server.url)
        generator.generate("a cat", "", 1, str(tmp_path / "a.png"), 1)
        source = input_png(tmp_path / "in.png", (1, 2, 3))
        generator.generate(
            "a cat", "", 1, str(tmp_path / "b.png"), 2, mode="edit", input_images=[source]
        )
    finally:
        stop_fake_images(edit_server)
    assert [r.path for r in server.image_requests()] == ["/v1/images/generations"]
    assert [r.path for r in edit_server.image_requests()] == ["/v1/images/edits"]


def test_edit_without_edit_model_or_local_file_is_a_clear_error(
    server: FakeImages, tmp_path: Path
) -> None:
    with pytest.raises(GeneratorUnavailable, match="set CONTEXTGEN_EDIT_MODEL"):
        make(server.url).generate(
            "x",
            "",
            1,
            str(tmp_path / "a.png"),
            1,
            mode="edit",
            input_images=[input_png(tmp_path / "in.png", (1, 1, 1))],
        )
    with pytest.raises(GeneratorUnavailable, match="not a local file: fetch reference images"):
        make(server.url, edit_model="e").generate(
            "x",
            "",
            1,
            str(tmp_path / "a.png"),
            1,
            mode="edit",
            input_images=["https://example.org/a.png"],
        )
    assert server.image_requests() == []


def test_rate_limit_then_success_is_retried(server: FakeImages, tmp_path: Path) -> None:
    server.fail_next(429)
    art = make(server.url, max_retries=2).generate("a fox", "", 1, str(tmp_path / "f.png"), 1)
    assert Path(art.path).is_file()
    assert len(server.image_requests()) == 2


def test_server_error_after_bounded_retries(server: FakeImages, tmp_path: Path) -> None:
    server.fail_always(500)
    started = time.monotonic()
    with pytest.raises(GeneratorUnavailable) as caught:
        make(server.url, max_retries=2).generate("a fox", "", 1, str(tmp_path / "f.png"), 1)
    message = str(caught.value)
    assert "answered HTTP 500 (fake failure)" in message and "after 3 tries" in message
    assert "\n" not in message
    assert len(server.image_requests()) == 3
    assert time.monotonic() - started < 10
    assert not (tmp_path / "f.png").exists()


def test_slow_server_times_out_with_heartbeats(server: FakeImages, tmp_path: Path) -> None:
    server.delay_s = 1.5
    beats: list[tuple[int, int]] = []
    generator = make(server.url, timeout_s=0.4, max_retries=1, heartbeat_s=0.1)
    with pytest.raises(GeneratorUnavailable, match=r"did not answer within 0.4s \(after 2 tries\)"):
        generator.generate(
            "a fox", "", 1, str(tmp_path / "f.png"), 1, on_step=lambda *a: beats.append(a)
        )
    assert len(server.image_requests()) == 2
    assert len(beats) >= 5 and set(beats) == {(0, 1)}  # heartbeats only: no image was written


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [("b64", "sent a bad image"), ("json", "not JSON"), ("shape", "with no image")],
)
def test_garbage_answers_are_refused(
    server: FakeImages, tmp_path: Path, garbage: str, reason: str
) -> None:
    server.garbage = garbage  # type: ignore[assignment]
    with pytest.raises(GeneratorUnavailable, match=reason):
        make(server.url, max_retries=0).generate("a fox", "", 1, str(tmp_path / "f.png"), 1)
    assert not (tmp_path / "f.png").exists()


def test_unreachable_server_and_wrong_path(server: FakeImages, tmp_path: Path) -> None:
    port = server.url.split(":")[2].split("/")[0]
    with pytest.raises(GeneratorUnavailable, match="answered HTTP 404 .*ends in /v1"):
        make(f"http://127.0.0.1:{port}", max_retries=0).generate("x", "", 1, str(tmp_path / "a"), 1)
    stop_fake_images(server)
    with pytest.raises(GeneratorUnavailable, match="cannot be reached .*CONTEXTGEN_GENERATOR_BASE"):
        make(server.url, max_retries=0).generate("x", "", 1, str(tmp_path / "a.png"), 1)


def test_openai_hosts_get_no_extension_fields() -> None:
    assert not takes_extension_fields("api.openai.com")
    assert not takes_extension_fields("my-resource.openai.azure.com")
    assert takes_extension_fields("127.0.0.1") and takes_extension_fields("vllm.internal")


def test_base_url_in_context_picks_the_images_api(
    server: FakeImages, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONTEXTGEN_GENERATOR_BASE_URL", server.url)
    monkeypatch.setenv("CONTEXTGEN_GENERATOR", "served-model")
    context = Context(width=48, height=32, steps=3, data_dir=str(tmp_path))
    generator = Backends(context).generator
    assert isinstance(generator, ImagesApiGenerator)
    generator.generate("a boat", "", 1, str(tmp_path / "boat.png"), 1)
    [request] = server.image_requests()
    assert (request.fields["model"], request.fields["size"]) == ("served-model", "48x32")
