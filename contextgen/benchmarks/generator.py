"""Image generators: the in-process pipeline loads once per process; an images API server
serves concurrent requests side by side.

In process: builds the tiny Qwen-Image pipeline into a temporary folder, then generates twice
through `DiffusersGenerator` (the same path a run takes) and reports both times and how many
loads happened, on the CPU and, when a GPU is available, on CUDA in bfloat16.

Images API: N concurrent `ImagesApiGenerator` requests (the real `openai` client) against one
local images server that answers after a fixed latency (contextgen/benchmarks/api_servers.py).
It reports images per minute, how many requests were in flight at once (from each request's
start and end), and the speed-up over the same requests one after another."""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def _devices() -> list[str]:
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def run(model: str | None = None, steps: int = 2, size: int = 32,
        devices: list[str] | None = None, api_requests: int = 8,
        api_latency_s: float = 1.0) -> dict[str, Any]:
    """First and second generate times per device (`model` is a diffusers folder or id, default
    the tiny pipeline), and `api_requests` concurrent images API requests."""
    import torch

    results = in_process(model, steps, size, devices)
    results["gpu"] = torch.cuda.is_available()
    results["images_api"] = images_api(api_requests, api_latency_s)
    return results


def in_process(model: str | None, steps: int, size: int,
               devices: list[str] | None) -> dict[str, Any]:
    """Two generates per device with one `DiffusersGenerator`: the first loads, the second
    must reuse the pipeline."""
    from contextgen.tools import image_generator
    from contextgen.tools.image_generator import (
        DiffusersGenerator,
        GeneratorSettings,
        resolve_dtype,
    )

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
            dtype = str(resolve_dtype("auto", device)).removeprefix("torch.")  # CUDA: bfloat16
            generator = DiffusersGenerator(GeneratorSettings(
                model=model, device=device, dtype=dtype, steps=steps, width=size, height=size))
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
                "dtype": dtype,
                "first_seconds": round(times[0], 3),
                "second_seconds": round(times[1], 3),
                "pipeline_loads": loads,
                "reused": loads == 1,
                "steps": steps,
                "size": size,
            }
        image_generator.clear_cache()
    return results


def images_api(requests: int = 8, latency_s: float = 1.0) -> dict[str, Any]:
    """`requests` concurrent generations against one local images server answering after
    `latency_s`: images per minute, the most requests in flight at once, the speed-up over
    running them one after another."""
    from contextgen.benchmarks.api_servers import Latencies, start_api_servers, stop_api_servers
    from contextgen.tools.images_api_generator import ImagesApiGenerator, ImagesApiSettings

    servers = start_api_servers(Latencies(images=latency_s))
    try:
        generator = ImagesApiGenerator(ImagesApiSettings(
            base_url=f"{servers.url}/v1", model="bench-image", width=16, height=16,
            max_retries=0))
        with tempfile.TemporaryDirectory(prefix="contextgen-bench-api-") as folder:

            def one(number: int) -> tuple[float, float]:
                started = time.perf_counter()
                generator.generate(prompt=f"a red fox in snow {number}", negative_prompt="",
                                   seed=number, out_path=str(Path(folder) / f"{number}.png"),
                                   round=1)
                return started, time.perf_counter()

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=requests) as pool:
                spans = list(pool.map(one, range(requests)))
            wall = time.perf_counter() - started
            images = len(list(Path(folder).glob("*.png")))
        served = servers.counts[("images", "images")]
    finally:
        stop_api_servers(servers)
    serial = requests * latency_s
    return {
        "requests": requests,
        "latency_s": latency_s,
        "images": images,
        "served": served,
        "wall_seconds": round(wall, 3),
        "images_per_minute": round(images / wall * 60, 1),
        "max_in_flight": max_in_flight(spans),
        "speedup_vs_serial": round(serial / wall, 2),
    }


def max_in_flight(spans: list[tuple[float, float]]) -> int:
    """The most (start, end) intervals open at one instant."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    open_now = most = 0
    for _, change in events:
        open_now += change
        most = max(most, open_now)
    return most


def describe(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{device} ({result['model']}, {e['dtype']}): first generate {e['first_seconds']:.2f} s "
        f"(with load), second {e['second_seconds']:.2f} s; pipeline loads: "
        f"{e['pipeline_loads']} ({'reused' if e['reused'] else 'RELOADED'})"
        for device, e in result["devices"].items()
    ]
    if not result.get("gpu"):
        lines.append("cuda: no GPU on this machine, so no bfloat16 CUDA run")
    api = result["images_api"]
    lines.append(
        f"images API: {api['requests']} concurrent requests, {api['latency_s']:g} s each: "
        f"{api['images']} images in {api['wall_seconds']:.2f} s = {api['images_per_minute']:g} "
        f"images/min; up to {api['max_in_flight']} in flight, "
        f"{api['speedup_vs_serial']:g}x one after another"
    )
    return lines
