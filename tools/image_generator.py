"""Image generation with diffusers: one pipeline per process, reused across rounds.

`DiffusersGenerator(settings).generate(...)` writes a PNG and returns an `ImageArtifact`.
The caller says which mode: `text2img` runs the model (Qwen-Image, `QwenImagePipeline`, is the
GPU default); `edit` runs the edit model (e.g. Qwen/Qwen-Image-Edit-2509,
`QwenImageEditPlusPipeline`) on the given images. Any other diffusers model id or local folder
is loaded through `DiffusionPipeline.from_pretrained`, which picks the class from
`model_index.json`.

Weights are looked up locally first (`local_files_only=True`); the hub is tried only
when `HF_HUB_OFFLINE` is unset and a short probe reaches it, so an unreachable model
fails in well under a second with `GeneratorUnavailable`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contextgen.graphs.state import ImageArtifact
from contextgen.tools.backend_protocols import GenerationMode, ProgressCallback
from contextgen.tools.errors import GeneratorUnavailable

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

logger = logging.getLogger(__name__)

NO_GENERATOR = {"", "none"}
HUB_PROBE_TIMEOUT_S = 5.0
CONFIGURE_HINT = (
    "set CONTEXTGEN_GENERATOR to a local diffusers folder (with model_index.json) or to a model "
    "already in the Hugging Face cache, or run where the hub is reachable (and a GPU is present); "
    "CONTEXTGEN_GENERATOR=none skips generation"
)
OOM_HINT = (
    "set CONTEXTGEN_OFFLOAD=1, or lower CONTEXTGEN_WIDTH/CONTEXTGEN_HEIGHT or "
    "CONTEXTGEN_CANDIDATES, or use a smaller model"
)

@dataclass(frozen=True)
class GeneratorSettings:
    """What to load and how to run it (mirrors the generator fields of the runtime context)."""

    model: str = "Qwen/Qwen-Image"
    edit_model: str = ""
    device: str = "auto"
    dtype: str = "auto"
    steps: int = 30
    width: int = 1024
    height: int = 1024
    offload: bool = False
    true_cfg_scale: float = 4.0
    guidance_scale: float | None = None
    strength: float = 0.6
    cache_dir: str | None = None


@dataclass
class _Loaded:
    pipeline: DiffusionPipeline
    device: str
    lock: threading.Lock


_CACHE: dict[tuple[str, str, str, bool, str], _Loaded] = {}
_CACHE_LOCK = threading.Lock()
_load_count = 0


def load_count() -> int:
    """How many pipelines this process has loaded from disk or hub (for tests and logs)."""
    return _load_count


def clear_cache() -> None:
    """Drop every cached pipeline (frees memory; the next generate loads again)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE asks for no hub traffic."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def generator_available(model: str) -> bool:
    """Cheap check, no loading: a model is configured and its weights may be reachable.

    True for a local diffusers folder, a model whose `model_index.json` is in the HF cache,
    or any id while the hub is not switched off (reachability is only known on load).
    """
    if model.strip().lower() in NO_GENERATOR:
        return False
    if Path(model).expanduser().is_dir():
        return (Path(model).expanduser() / "model_index.json").is_file()
    if hub_offline():
        from huggingface_hub import try_to_load_from_cache

        try:
            return isinstance(try_to_load_from_cache(model, "model_index.json"), str)
        except Exception:  # invalid repo id and the like
            return False
    return True


def resolve_device(device: str) -> str:
    """'auto' -> cuda if available, else mps, else cpu; anything else is kept."""
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """'auto' -> bfloat16 on CUDA, float32 elsewhere."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[dtype]


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _free_accelerator_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _dtype_kwarg(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """`dtype=` on diffusers that has it (torch_dtype is deprecated there), else `torch_dtype=`."""
    from diffusers.pipelines import pipeline_utils

    return {"dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype": dtype}


@functools.cache  # found once per process; not finding them raises, and is tried again
def find_weights(model: str, cache_dir: str | None) -> str:
    """Where `model`'s weights are: "folder", "cache" or "hub"; without importing torch, so a
    model that is nowhere fails fast. Raises GeneratorUnavailable when they are nowhere."""
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import RepositoryNotFoundError

    folder = Path(model).expanduser()
    if folder.is_dir():
        if not (folder / "model_index.json").is_file():
            raise GeneratorUnavailable(
                f"Generator folder {model!r} has no model_index.json (not a diffusers pipeline): "
                f"{CONFIGURE_HINT}."
            )
        return "folder"
    try:
        if isinstance(try_to_load_from_cache(model, "model_index.json", cache_dir=cache_dir), str):
            return "cache"
    except ValueError:  # not a valid repo id
        pass
    logger.info("Generator %r not found locally", model)
    if hub_offline():
        raise GeneratorUnavailable(
            f"Generator weights for {model!r} are not on this machine and HF_HUB_OFFLINE is set: "
            f"{CONFIGURE_HINT}."
        )
    try:
        HfApi().model_info(model, timeout=HUB_PROBE_TIMEOUT_S)
    except RepositoryNotFoundError as exc:
        raise GeneratorUnavailable(
            f"Generator {model!r} is neither a local folder nor a model on the hub "
            f"(or it is private): {CONFIGURE_HINT}."
        ) from exc
    except Exception as exc:
        raise GeneratorUnavailable(
            f"Generator weights for {model!r} are not on this machine and the hub did not answer "
            f"({type(exc).__name__}): {CONFIGURE_HINT}."
        ) from exc
    return "hub"


def _from_pretrained(
    model: str, where: str, dtype: torch.dtype, cache_dir: str | None
) -> DiffusionPipeline:
    """Load weights from where `find_weights` found them."""
    from diffusers import DiffusionPipeline

    dtype_kw = _dtype_kwarg(dtype)
    if where == "folder":
        return DiffusionPipeline.from_pretrained(str(Path(model).expanduser()), **dtype_kw)
    if where == "cache":
        return DiffusionPipeline.from_pretrained(
            model, **dtype_kw, local_files_only=True, cache_dir=cache_dir
        )
    logger.info("Downloading generator %r from the hub (first run only)", model)
    try:
        return DiffusionPipeline.from_pretrained(model, **dtype_kw, cache_dir=cache_dir)
    except OSError as exc:
        raise GeneratorUnavailable(
            f"Generator weights for {model!r} could not be downloaded "
            f"({str(exc).splitlines()[0][:200]}): {CONFIGURE_HINT}."
        ) from exc


def _load(settings: GeneratorSettings, model: str, mode: GenerationMode) -> _Loaded:
    """The cached pipeline for (model, device, dtype, offload, mode); loads it on first use,
    after finding the weights (torch is imported only once they are found)."""
    where = find_weights(model, settings.cache_dir)
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    offload = settings.offload and device.startswith("cuda")
    key = (model, device, str(dtype), offload, mode)
    with _CACHE_LOCK:  # held while loading: concurrent first uses load once
        if key not in _CACHE:
            pipe = _load_pipeline(settings, model, where, device, dtype, offload, mode)
            _CACHE[key] = _Loaded(pipe, device, threading.Lock())
        return _CACHE[key]


def _load_pipeline(
    settings: GeneratorSettings,
    model: str,
    where: str,
    device: str,
    dtype: torch.dtype,
    offload: bool,
    mode: GenerationMode,
) -> DiffusionPipeline:
    """Load `model` onto `device` (or with CPU offload), progress bar off."""
    global _load_count
    start = time.perf_counter()
    try:
        pipe = _from_pretrained(model, where, dtype, settings.cache_dir)
    except (ImportError, RuntimeError, AttributeError) as exc:
        if mode == "edit" and importlib.util.find_spec("torchvision") is None:
            # transformers' Qwen2VLProcessor (Qwen-Image-Edit) needs a video processor.
            raise GeneratorUnavailable(
                f"Edit model {model!r} needs torchvision: install the build matching your torch."
            ) from exc
        raise
    try:
        if offload:
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
    except Exception as exc:
        if _is_oom(exc):
            _free_accelerator_memory()
            raise GeneratorUnavailable(
                f"Out of memory loading {model!r} on {device}: {OOM_HINT}."
            ) from exc
        raise
    pipe.set_progress_bar_config(disable=True)
    _load_count += 1
    logger.info(
        "Loaded generator %s (%s) on %s, %s, offload=%s in %.1fs",
        model,
        type(pipe).__name__,
        device,
        dtype,
        offload,
        time.perf_counter() - start,
    )
    return pipe


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


class DiffusersGenerator:
    """Text-to-image (and edit) generation with a process-wide cached diffusers pipeline."""

    def __init__(self, settings: GeneratorSettings) -> None:
        if settings.model.strip().lower() in NO_GENERATOR:
            raise GeneratorUnavailable(f"No generator configured: {CONFIGURE_HINT}.")
        self.settings = settings

    @property
    def can_edit(self) -> bool:
        """True when an edit model is configured (`mode="edit"` needs one)."""
        return self.settings.edit_model.strip().lower() not in NO_GENERATOR

    def load(self, edit: bool = False) -> DiffusionPipeline:
        """Load (or fetch from the cache) the text-to-image or the edit pipeline."""
        if edit:
            return _load(self.settings, self.settings.edit_model, "edit").pipeline
        return _load(self.settings, self.settings.model, "text2img").pipeline

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

        `text2img` runs the model on the prompt alone; `edit` runs the edit model on
        `input_images` (the image to edit first, then references), and the artifact records the
        first as `edited_from`. `on_step(step, total)` is called after each denoising step,
        step counting from 1.
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
        """Render one image per seed in one pipeline call (`num_images_per_prompt`, one torch
        generator per seed, so each image is the one its seed gives alone), written to
        `out_paths` in order. Otherwise as `generate`."""
        if mode == "edit" and not self.can_edit:
            raise GeneratorUnavailable(
                "No edit model is configured: set CONTEXTGEN_EDIT_MODEL to edit images."
            )
        if (mode == "edit") != bool(input_images):
            raise ValueError(f"{mode} mode takes {'some' if mode == 'edit' else 'no'} images")
        if not seeds or len(seeds) != len(out_paths):
            raise ValueError("generate_batch takes one output path per seed")
        model = self.settings.edit_model if mode == "edit" else self.settings.model
        loaded = _load(self.settings, model, mode)
        kwargs = self._call_kwargs(loaded, prompt, negative_prompt, seeds, input_images, on_step)
        with loaded.lock:
            try:
                result = loaded.pipeline(**kwargs)
            except Exception as exc:
                if _is_oom(exc):
                    _free_accelerator_memory()
                    raise GeneratorUnavailable(
                        f"Out of memory generating {len(seeds)} x {self.settings.width}x"
                        f"{self.settings.height} with {model!r}: {OOM_HINT}."
                    ) from exc
                raise
        artifacts = []
        for image, seed, out_path in zip(result.images, seeds, out_paths, strict=True):
            path = Path(out_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path, format="PNG")
            logger.info("Round %d image written to %s (%s, seed %d)", round, path, mode, seed)
            artifacts.append(
                ImageArtifact(
                    path=str(path),
                    sha256=_sha256(path),
                    width=image.width,
                    height=image.height,
                    seed=seed,
                    round=round,
                    prompt=prompt,
                    model=model,
                    edited_from=input_images[0] if input_images else None,
                )
            )
        return artifacts

    def _call_kwargs(
        self,
        loaded: _Loaded,
        prompt: str,
        negative_prompt: str,
        seeds: Sequence[int],
        images: Sequence[str],
        on_step: ProgressCallback | None,
    ) -> dict[str, Any]:
        """Arguments for this pipeline's __call__, keeping only those it accepts."""
        import torch
        from PIL import Image

        pipe, s = loaded.pipeline, self.settings
        accepted = inspect.signature(pipe.__call__).parameters
        gen_device = "cpu" if loaded.device == "mps" else loaded.device
        generators = [torch.Generator(device=gen_device).manual_seed(seed) for seed in seeds]
        kwargs: dict[str, Any] = {
            "prompt": prompt,
            "num_inference_steps": s.steps,
            "width": s.width,
            "height": s.height,
            "generator": generators if len(generators) > 1 else generators[0],
        }
        if len(seeds) > 1:
            if "num_images_per_prompt" not in accepted:
                raise GeneratorUnavailable(
                    f"{type(pipe).__name__} makes one image per call: set CONTEXTGEN_CANDIDATES=1."
                )
            kwargs["num_images_per_prompt"] = len(seeds)
        if "true_cfg_scale" in accepted:  # Qwen-Image: CFG needs a negative prompt, " " is usual
            kwargs["true_cfg_scale"] = s.true_cfg_scale
            kwargs["negative_prompt"] = negative_prompt or " "
        elif negative_prompt:
            kwargs["negative_prompt"] = negative_prompt
        if s.guidance_scale is not None:
            kwargs["guidance_scale"] = s.guidance_scale
        if images:
            pil = [Image.open(p).convert("RGB") for p in images]
            kwargs["image"] = pil if len(pil) > 1 else pil[0]
            if "strength" in accepted:
                kwargs["strength"] = s.strength
        if on_step is not None:

            def report(p: Any, i: int, t: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
                on_step(i + 1, int(getattr(p, "num_timesteps", 0) or s.steps))
                return callback_kwargs

            kwargs["callback_on_step_end"] = report
        dropped = sorted(k for k in kwargs if k not in accepted)
        if dropped:
            logger.debug("%s does not accept %s", type(pipe).__name__, dropped)
        return {k: v for k, v in kwargs.items() if k in accepted}
