"""The diffusers generator on a tiny random Qwen-Image pipeline, loaded from disk."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
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


@pytest.fixture(scope="module")
def tiny_edit_model(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny weights saved as an image-to-image pipeline: an edit model that takes `image`."""
    from diffusers import QwenImageImg2ImgPipeline, QwenImagePipeline

    folder = tmp_path_factory.mktemp("tiny-qwen-image-img2img")
    text_to_image = QwenImagePipeline.from_pretrained(tiny_model)
    QwenImageImg2ImgPipeline.from_pipe(text_to_image).save_pretrained(folder)
    return str(folder)


def test_edit_mode_runs_the_edit_model_on_the_input_images(
    settings: ig.GeneratorSettings, tiny_edit_model: str, tmp_path: Path
) -> None:
    gen = ig.DiffusersGenerator(replace(settings, edit_model=tiny_edit_model))
    assert gen.can_edit
    first = gen.generate("a lantern", "", seed=1, out_path=str(tmp_path / "a.png"), round=1)
    loads = ig.load_count()
    edited = gen.generate(
        "a red lantern",
        "",
        seed=1,
        out_path=str(tmp_path / "b.png"),
        round=2,
        mode="edit",
        input_images=[first.path],
    )
    assert Path(edited.path).is_file() and edited.sha256 != first.sha256
    assert (edited.model, edited.edited_from) == (tiny_edit_model, first.path)
    assert ig.load_count() == loads + 1  # the edit model, loaded once beside the text-to-image one


def test_a_batch_gives_each_seed_the_image_it_gives_alone(
    settings: ig.GeneratorSettings, tmp_path: Path
) -> None:
    gen = ig.DiffusersGenerator(settings)
    loads = ig.load_count()
    outs = [str(tmp_path / f"candidate-{n}.png") for n in (1, 2)]
    steps: list[tuple[int, int]] = []
    batch = gen.generate_batch("a fox", "", [3, 4], outs, round=1,
                               on_step=lambda i, n: steps.append((i, n)))
    alone = gen.generate("a fox", "", seed=4, out_path=str(tmp_path / "alone.png"), round=1)
    assert [a.path for a in batch] == outs and [a.seed for a in batch] == [3, 4]
    assert batch[0].sha256 != batch[1].sha256
    assert batch[1].sha256 == alone.sha256  # one torch generator per seed
    assert steps == [(1, 2), (2, 2)]  # one pipeline call for both
    assert ig.load_count() <= loads + 1


@pytest.fixture(scope="module")
def tiny_edit_plus_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Qwen-Image-Edit-2509's pipeline class, tiny and random, with the real Qwen2VLProcessor.

    Its video processor needs torchvision, which CPU torch 2.13 lacks: `make test` installs
    torch 2.14.1 with torchvision 0.29.1 (Makefile). Skipped without it, failed in CI.
    """
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        message = "the edit pipeline's processor needs torchvision: run `make test`"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    from contextgen.benchmarks.tiny_pipeline import save_tiny_qwen_image_edit_plus_pipeline

    folder = tmp_path_factory.mktemp("tiny-qwen-image-edit-plus")
    return str(save_tiny_qwen_image_edit_plus_pipeline(folder))


@pytest.fixture
def small_edit_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The edit pipeline resizes its inputs to 1024x1024 for the VAE and 384x384 for the vision
    tower whatever the output size: minutes on a CPU. The tiny test shrinks both targets."""
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as edit_plus

    monkeypatch.setattr(edit_plus, "VAE_IMAGE_SIZE", 64 * 64)
    monkeypatch.setattr(edit_plus, "CONDITION_IMAGE_SIZE", 56 * 56)


def test_edit_plus_pipeline_edits_with_reference_images(
    settings: ig.GeneratorSettings, tiny_edit_plus_model: str, small_edit_inputs: None,
    tmp_path: Path,
) -> None:
    gen = ig.DiffusersGenerator(replace(settings, edit_model=tiny_edit_plus_model))
    first = gen.generate("a lantern", "", seed=1, out_path=str(tmp_path / "a.png"), round=1)
    reference = tmp_path / "reference.png"
    Image.new("RGB", (40, 24), (200, 40, 40)).save(reference)
    pipeline = gen.load(edit=True)
    assert type(pipeline).__name__ == "QwenImageEditPlusPipeline"
    assert type(pipeline.processor).__name__ == "Qwen2VLProcessor"

    outs = [str(tmp_path / f"edit-{n}.png") for n in (1, 2)]
    edited = gen.generate_batch("make the lantern red like picture 2", "", [5, 6], outs,
                                round=2, mode="edit", input_images=[first.path, str(reference)])
    assert [Path(e.path).is_file() for e in edited] == [True, True]
    assert [(e.width, e.height) for e in edited] == [(32, 32), (32, 32)]
    assert {e.edited_from for e in edited} == {first.path}
    assert edited[0].sha256 != edited[1].sha256 != first.sha256
    assert {e.model for e in edited} == {tiny_edit_plus_model}


def test_edit_mode_needs_an_edit_model_and_images(
    settings: ig.GeneratorSettings, tmp_path: Path
) -> None:
    gen = ig.DiffusersGenerator(settings)
    assert not gen.can_edit
    loads = ig.load_count()
    out = str(tmp_path / "never.png")
    with pytest.raises(GeneratorUnavailable, match="CONTEXTGEN_EDIT_MODEL"):
        gen.generate("a lantern", "", seed=1, out_path=out, round=2, mode="edit",
                     input_images=[out])
    with pytest.raises(ValueError, match="text2img mode takes no images"):
        gen.generate("a lantern", "", seed=1, out_path=out, round=2, input_images=[out])
    assert ig.load_count() == loads and not Path(out).exists()


def test_unknown_model_fails_fast_offline() -> None:
    gen = ig.DiffusersGenerator(ig.GeneratorSettings(model="nobody/no-such-model-xyz"))
    start = time.perf_counter()
    with pytest.raises(GeneratorUnavailable, match="CONTEXTGEN_GENERATOR") as info:
        gen.generate("x", "", seed=0, out_path="/tmp/never.png", round=1)
    assert time.perf_counter() - start < 5
    assert "\n" not in str(info.value)
    assert not ig.generator_available("nobody/no-such-model-xyz")


def test_weights_that_are_nowhere_fail_before_torch_is_imported() -> None:
    script = (
        "import sys\n"
        "from contextgen.tools import image_generator as ig\n"
        "from contextgen.tools.errors import GeneratorUnavailable\n"
        "gen = ig.DiffusersGenerator(ig.GeneratorSettings(model='nobody/no-such-model-xyz'))\n"
        "try:\n"
        "    gen.generate('x', '', seed=0, out_path='/tmp/never.png', round=1)\n"
        "except GeneratorUnavailable:\n"
        "    print('torch' in sys.modules)\n"
    )
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=60, check=True)
    assert done.stdout.strip() == "False"


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
