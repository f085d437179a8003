"""`contextgen bench [NAME]`: speed and scale benchmarks; prints numbers, --out writes JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from contextgen.commands import UsageError, writable_folder

BENCHMARK_MODULES = {
    "overhead": "contextgen.benchmarks.overhead",
    "research": "contextgen.benchmarks.research",
    "memory": "contextgen.benchmarks.memory_scale",
    "llm": "contextgen.benchmarks.llm",
    "generator": "contextgen.benchmarks.generator",
    "concurrency": "contextgen.benchmarks.concurrency",
    "soak": "contextgen.benchmarks.soak",
}


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "bench",
        help="Run the benchmarks: overhead, research, memory, llm, generator, concurrency, "
        "soak (default: all).",
    )
    parser.add_argument("name", nargs="?", choices=[*BENCHMARK_MODULES, "all"], default="all")
    parser.add_argument("--out", help="Folder for <name>.json results.")
    parser.add_argument("--runs", type=int, help="overhead: runs per configuration (50); "
                        "concurrency: runs per store and concurrency (32); soak: runs (500).")
    parser.add_argument("--concurrency", default="1,8,32",
                        help="concurrency: comma-separated numbers of runs at once.")
    parser.add_argument("--via", choices=["process", "server", "both"], default="both",
                        help="concurrency: the graph in this process (SQLite, PostgreSQL), "
                        "through `langgraph dev` with the SDK, or both (default).")
    parser.add_argument("--sizes", default="1000,10000,100000",
                        help="memory: comma-separated store sizes.")
    parser.add_argument("--queries", type=int, default=100, help="memory: recalls per size.")
    parser.add_argument("--model", help="llm: embedded model name; generator: diffusers folder/id.")
    parser.add_argument("--requests", type=int, default=2, help="llm: requests to run.")
    parser.add_argument("--steps", type=int, default=2, help="generator: denoising steps.")
    parser.set_defaults(run=run_bench)


def options_for(name: str, args: argparse.Namespace) -> dict:
    """Keyword arguments of one benchmark's `run` from the command line."""
    if name == "overhead":
        return {"runs": args.runs or 50}
    if name == "soak":
        if args.runs is not None and args.runs < 1:
            raise UsageError("--runs must be a positive count")
        return {"runs": args.runs or 500}
    if name == "concurrency":
        try:
            levels = tuple(int(n) for n in args.concurrency.split(",") if n.strip())
        except ValueError as error:
            message = f"--concurrency must be numbers like 1,8,32: {args.concurrency}"
            raise UsageError(message) from error
        if not levels or min(levels) < 1 or (args.runs is not None and args.runs < 1):
            raise UsageError("--concurrency needs positive numbers, --runs a positive count")
        return {"runs": args.runs or 32, "concurrency": levels, "via": args.via}
    if name == "memory":
        try:
            sizes = tuple(int(s) for s in args.sizes.split(",") if s.strip())
        except ValueError as error:
            raise UsageError(f"--sizes must be numbers like 1000,10000: {args.sizes}") from error
        if not sizes or min(sizes) < 1:
            raise UsageError("--sizes needs at least one positive size")
        return {"sizes": sizes, "queries": args.queries,
                "report": lambda line: print(f"   ... {line}", flush=True)}
    if name == "llm":
        return {"model": args.model, "requests": args.requests}
    if name == "generator":
        model = args.model if args.model and "/" in args.model or (
            args.model and Path(args.model).is_dir()) else None
        return {"model": model, "steps": args.steps}
    return {}


def run_bench(args: argparse.Namespace) -> int:
    names = list(BENCHMARK_MODULES) if args.name == "all" else [args.name]
    if args.name == "all" and args.model:
        raise UsageError("--model applies to one benchmark: name it (llm or generator)")
    out_dir = writable_folder(args.out, "--out") if args.out else None
    failures = 0
    for name in names:
        module = importlib.import_module(BENCHMARK_MODULES[name])
        title = module.__doc__.strip().split(":")[0]
        print(f"== {name}: {title}", flush=True)
        started = time.perf_counter()
        try:
            result = module.run(**options_for(name, args))
        except UsageError:
            raise
        except Exception as error:  # one benchmark failing must not hide the others
            failures += 1
            print(f"   failed: {type(error).__name__}: {error}", flush=True)
            result = {"error": f"{type(error).__name__}: {error}"}
        else:
            for line in module.describe(result):
                print(f"   {line}", flush=True)
        result = {
            "benchmark": name,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - started, 2),
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "processor": platform.processor() or platform.machine()},
            **result,
        }
        if out_dir:
            path = out_dir / f"{name}.json"
            path.write_text(json.dumps(result, indent=2, default=str))
            print(f"   -> {path}", flush=True)
    if failures:
        print(f"{failures} benchmark(s) failed.", file=sys.stderr)
        return 1
    return 0
