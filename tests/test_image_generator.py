"""The diffusers generator on a tiny random Qwen-Image pipeline, loaded from disk."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from contextgen.benchmarks.tiny_pipeline import save_tiny_qwen_image_pipeline
from contextgen.tools import image_generator as ig
from contextgen.tools.errors import GeneratorUnavailable


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(save_tiny_qwen_image_pipeline(tmp_path_factory.mktemp("tiny-qwen-image")))


@pytest.fixture
def settings(tiny_model: str) -> ig.GeneratorSettings:
    return ig.GeneratorSettings(model=tiny_model, device="auto", steps=2, width=32, height=32)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_generates_png_and_reuses_pipeline(settings: ig.GeneratorSettings, tmp_path: Path) -> None:
    ig.clear_cache()
    loads = ig.load_count()
    steps: list[tuple[int, int]] = []
    gen = ig.DiffusersGenerator(settings)

    art = gen.generate(
        "a round golden-brown mooncake",
        "blurry",
        seed=7,
        out_path=str(tmp_path / "r1.png"),
        round=1,
        on_step=lambda i, n: steps.append((i, n)),
    )

    path = Path(art.path)
    assert path.is_file()
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (32, 32)
    assert (art.width, art.height, art.seed, art.round) == (32, 32, 7, 1)
    assert art.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert art.model == settings.model and art.prompt.startswith("a round")
    assert steps == [(1, 2), (2, 2)]
    assert ig.load_count() == loads + 1

    # A second generator with the same settings reuses the loaded pipeline.
    again = ig.DiffusersGenerator(settings).generate(
        "a round golden-brown mooncake",
        "blurry",
        seed=7,
        out_path=str(tmp_path / "r2.png"),
        round=2,
    )
    assert ig.load_count() == loads + 1
    assert again.sha256 == art.sha256  # same seed, same image
    other = gen.generate("a mooncake", "", seed=8, out_path=str(tmp_path / "r3.png"), round=3)
    assert other.sha256 != art.sha256
    assert ig.load_count() == loads + 1


def test_init_image_without_edit_model_runs_img2img_on_same_weights(
    settings: ig.GeneratorSettings, tmp_path: Path
) -> None:
    gen = ig.DiffusersGenerator(settings)
    first = gen.generate("a lantern", "", seed=1, out_path=str(tmp_path / "a.png"), round=1)
    loads = ig.load_count()
    edited = gen.generate(
        "a red lantern",
        "",
        seed=1,
        out_path=str(tmp_path / "b.png"),
        round=2,
        init_image=first.path,
    )
    assert Path(edited.path).is_file() and edited.edited_from == first.path
    assert ig.load_count() == loads


def test_unknown_model_fails_fast_offline() -> None:
    gen = ig.DiffusersGenerator(ig.GeneratorSettings(model="nobody/no-such-model-xyz"))
    start = time.perf_counter()
    with pytest.raises(GeneratorUnavailable, match="CONTEXTGEN_GENERATOR") as info:
        gen.generate("x", "", seed=0, out_path="/tmp/never.png", round=1)
    assert time.perf_counter() - start < 5
    assert "\n" not in str(info.value)
    assert not ig.generator_available("nobody/no-such-model-xyz")


def test_folder_without_pipeline_and_none_are_unavailable(tmp_path: Path, tiny_model: str) -> None:
    with pytest.raises(GeneratorUnavailable, match="model_index.json"):
        ig.DiffusersGenerator(ig.GeneratorSettings(model=str(tmp_path))).load()
    with pytest.raises(GeneratorUnavailable):
        ig.DiffusersGenerator(ig.GeneratorSettings(model="none"))
    assert not ig.generator_available("none")
    assert ig.generator_available(tiny_model)


def test_concurrent_first_use_loads_once(settings: ig.GeneratorSettings, tmp_path: Path) -> None:
    ig.clear_cache()
    loads = ig.load_count()
    gen = ig.DiffusersGenerator(settings)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(gen.generate, "a kite", "", i, str(tmp_path / f"{i}.png"), 1)
            for i in range(2)
        ]
        arts = [f.result() for f in futures]
    assert all(Path(a.path).is_file() for a in arts)
    assert ig.load_count() == loads + 1
