"""Generator reuse: the second request in one process must not reload the pipeline.

Builds the tiny Qwen-Image pipeline into a temporary folder, then generates twice through
`DiffusersGenerator` (the same path a run takes) and reports both times and how many loads
happened, on the CPU and, when a GPU is available, on CUDA."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any


def _devices() -> list[str]:
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def run(model: str | None = None, steps: int = 2, size: int = 32,
        devices: list[str] | None = None) -> dict[str, Any]:
    """First and second generate times per device; `model` is a diffusers folder or id
    (default: the tiny pipeline)."""
    from contextgen.tools import image_generator
    from contextgen.tools.image_generator import DiffusersGenerator, GeneratorSettings

    results: dict[str, Any] = {"devices": {}}
    with tempfile.TemporaryDirectory(prefix="contextgen-bench-gen-") as folder:
        if model is None:
            from contextgen.benchmarks.tiny_pipeline import save_tiny_qwen_image_pipeline

            model = str(save_tiny_qwen_image_pipeline(Path(folder) / "tiny-qwen-image"))
            results["model"] = "tiny Qwen-Image (random weights)"
        else:
            results["model"] = model
        for device in devices or _devices():
            image_generator.clear_cache()
            generator = DiffusersGenerator(GeneratorSettings(
                model=model, device=device, dtype="float32" if device == "cpu" else "auto",
                steps=steps, width=size, height=size))
            loads_before = image_generator.load_count()
            times = []
            for number in (1, 2):
                started = time.perf_counter()
                generator.generate(prompt="a red fox in snow", negative_prompt="", seed=number,
                                   out_path=str(Path(folder) / f"{device}-{number}.png"),
                                   round=number)
                times.append(time.perf_counter() - started)
            loads = image_generator.load_count() - loads_before
            results["devices"][device] = {
                "first_seconds": round(times[0], 3),
                "second_seconds": round(times[1], 3),
                "pipeline_loads": loads,
                "reused": loads == 1,
                "steps": steps,
                "size": size,
            }
        image_generator.clear_cache()
    return results


def describe(result: dict[str, Any]) -> list[str]:
    return [
        f"{device} ({result['model']}): first generate {e['first_seconds']:.2f} s (with load), "
        f"second {e['second_seconds']:.2f} s; pipeline loads: {e['pipeline_loads']} "
        f"({'reused' if e['reused'] else 'RELOADED'})"
        for device, e in result["devices"].items()
    ]
