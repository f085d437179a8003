"""Reference images in a run: the user's file and the URLs search found are fetched once into
the run folder (real HTTP from a local server), recorded with sha256 and source, handed to the
edit model as local files and shown to the judge; a reference that fails is a notice.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from contextgen.graphs.image_agent import build_graph
from contextgen.graphs.state import ImageArtifact, PromptPackage
from contextgen.run_record import RunSummary
from contextgen.runner import run_agent
from contextgen.tools.backends import use_backends
from contextgen.tools.vision_judge import VisionJudge
from tests.fake_images_server import FakeImages, solid_png, start_fake_images, stop_fake_images
from tests.fakes import (
    PLATYPUS_HIT,
    ScriptedChatModel,
    ScriptedJudge,
    SolidColorGenerator,
    StaticSearch,
    verdict,
)

REQUEST = "the egg-laying mammal of eastern Australia"


@pytest.fixture
def server() -> Iterator[FakeImages]:
    state = start_fake_images()
    state.files["platypus.png"] = solid_png(20, 12, b"\x60\x40\x20")
    yield state
    stop_fake_images(state)


@pytest.fixture
def user_reference(tmp_path) -> Path:
    path = tmp_path / "mine.png"
    Image.new("RGB", (24, 24), (10, 120, 200)).save(path)
    return path


def search_with_images(*urls: str) -> StaticSearch:
    hit = PLATYPUS_HIT.model_copy(update={"image_urls": list(urls)})
    return StaticSearch({"mammal": [hit]})


def run(context, backends, references: list[str] = ()) -> RunSummary:
    with use_backends(backends):
        outcome = run_agent(build_graph(), {"request": REQUEST, "reference_images": references},
                            context=context, config={"configurable": {"thread_id": "refs"}})
    return RunSummary.from_outcome(outcome, context, "refs")


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_references_are_fetched_stored_and_condition_the_edit_model(
    context, fake_backends, server, user_reference, monkeypatch
):
    monkeypatch.setenv("CONTEXTGEN_ALLOW_PRIVATE_URLS", "1")
    found = f"http://127.0.0.1:{server.server.server_address[1]}/files/platypus.png"
    gone = found.replace("platypus.png", "gone.png")
    judge = ScriptedJudge([verdict("prompt", accepted=False, score=0.4), verdict()])
    backends = fake_backends(search=search_with_images(found, gone), judge=judge,
                             generator=SolidColorGenerator(can_edit=True))
    record = run(context, backends, [str(user_reference)])

    mine, fetched, failed = record.references  # one record each: fetched once over two rounds
    assert (mine.source, fetched.source, failed.source) == (str(user_reference), found, gone)
    assert mine.sha256 == sha256(str(user_reference)) == sha256(mine.path)
    assert fetched.sha256 == hashlib.sha256(server.files["platypus.png"]).hexdigest()
    assert (fetched.width, fetched.height) == (20, 12)
    assert all(Path(r.path).parent == Path(context.output_dir) for r in (mine, fetched))
    assert not failed.path and "HTTP 404" in failed.rejected
    assert f"Reference image not used: {failed.rejected}" in record.notices

    stored = [mine.path, fetched.path]
    first, second = backends.generator.calls
    assert (first["mode"], first["input_images"]) == ("edit", stored)  # files, never URLs
    assert (second["mode"], second["input_images"]) == ("edit", stored)
    assert judge.references == [stored, stored]
    assert record.accepted and len(record.rounds) == 2


def test_nothing_is_fetched_when_nothing_would_use_the_references(
    context, fake_backends, server, user_reference, monkeypatch
):
    monkeypatch.setenv("CONTEXTGEN_ALLOW_PRIVATE_URLS", "1")
    backends = fake_backends(judge=None)  # no edit model and no judge
    record = run(context, backends, [str(user_reference)])
    assert record.references == []
    assert [(c["mode"], c["input_images"]) for c in backends.generator.calls] == [
        ("text2img", [])
    ]
    assert record.final_prompt.reference_images == [str(user_reference)]  # still reported


def test_without_an_edit_model_the_judge_still_sees_the_references(
    context, fake_backends, user_reference
):
    judge = ScriptedJudge([verdict()])
    backends = fake_backends(judge=judge)
    record = run(context, backends, [str(user_reference)])
    [mine] = record.references
    assert backends.generator.calls[0]["mode"] == "text2img"
    assert judge.references == [[mine.path]]


def test_search_may_not_name_local_files_and_private_addresses_are_refused(
    context, fake_backends, server, tmp_path, monkeypatch
):
    monkeypatch.delenv("CONTEXTGEN_ALLOW_PRIVATE_URLS", raising=False)
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(secret)
    private = f"http://127.0.0.1:{server.server.server_address[1]}/files/platypus.png"
    backends = fake_backends(search=search_with_images(str(secret), private),
                             generator=SolidColorGenerator(can_edit=True))
    record = run(context, backends)
    local, loopback = record.references
    assert local.rejected == f"{secret}: not an http(s) URL" and not local.path
    assert "CONTEXTGEN_ALLOW_PRIVATE_URLS=1" in loopback.rejected and not loopback.path
    assert backends.generator.calls[0]["mode"] == "text2img"  # nothing left to condition on
    assert record.final_image is not None
    assert sum("Reference image not used" in notice for notice in record.notices) == 2


def test_the_vision_judge_sends_the_references_after_the_image(tmp_path):
    image_path = tmp_path / "round-1.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(image_path)
    bitmap = tmp_path / "reference.bmp"  # not every VLM takes BMP: it goes as PNG
    Image.new("RGB", (8, 8), (9, 9, 9)).save(bitmap)
    vlm = ScriptedChatModel(replies={"JudgeReply": [
        {"score": 8, "problem": "none", "issues": [], "missing_knowledge": []}
    ]}, calls=[])
    image = ImageArtifact(path=str(image_path), sha256="", width=8, height=8, seed=0, round=1,
                          prompt="p", model="m", candidate=2)
    verdict_ = VisionJudge(vlm).judge("the mammal", PromptPackage(prompt="p"), image,
                                      [str(bitmap)])
    assert (verdict_.accepted, verdict_.candidate) == (True, 2)
    [(_, messages)] = vlm.calls
    parts = messages[-1].content
    assert "the 1 after it are reference images" in parts[0]["text"]
    urls = [part["image_url"]["url"] for part in parts[1:]]
    assert urls[0] == "data:image/png;base64," + base64.b64encode(image_path.read_bytes()).decode()
    assert urls[1].startswith("data:image/png;base64,")
