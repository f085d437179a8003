"""Soak: many runs in one process, different users and run folders, resident memory and files.

The real graph, with its real clients, runs `runs` requests one after another against local
API servers that answer at once (chat, Tavily, images: contextgen/benchmarks/api_servers.py),
real Chroma memory and the SQLite checkpointer. Every run has its own user, seed and run folder,
as on a long-lived server. After a warm-up, resident memory must grow by less than 50 MB and
the number of open file descriptors must stay flat (at most 2 more); the runs must share one
set of backends.

Users take turns (20 of them) so the warm-up has seen each: Chroma keeps the files of every
collection it opened open, and each user has collections of their own (memory/store.py), so
open files grow with the number of distinct users, not with the number of runs.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from contextgen.benchmarks.api_servers import Latencies, start_api_servers, stop_api_servers

USERS = 20  # the users take turns; the warm-up has seen them all
WARM_UP = 100  # measured: resident memory settles (caches, allocator) within ~100 runs
FD_SLACK = 2  # a lazily opened file or two after the warm-up is not a leak
MAX_GROWTH_MB = 50.0


def run(runs: int = 500, warm_up: int = WARM_UP) -> dict[str, Any]:
    """Run the soak; returns memory and descriptor readings after `warm_up` runs and later, and
    the number of sets of backends built."""
    from contextgen.checkpoints import open_checkpointer
    from contextgen.graphs.context import Context
    from contextgen.graphs.image_agent import build_graph
    from contextgen.tools.backends import backends_for

    servers = start_api_servers(Latencies(chat=0.0, search=0.0, images=0.0))
    saved_key = os.environ.get("TAVILY_API_KEY")
    os.environ["TAVILY_API_KEY"] = "tvly-soak"  # the Tavily client insists on a key
    try:
        with tempfile.TemporaryDirectory(prefix="contextgen-soak-") as folder:
            base = {
                "chat_base_url": f"{servers.url}/v1", "chat_model": "bench-chat",
                "judge_base_url": f"{servers.url}/v1", "judge_model": "bench-judge",
                "search_provider": "tavily", "tavily_base_url": servers.url,
                "generator_model": "bench-image", "generator_base_url": f"{servers.url}/v1",
                "width": 16, "height": 16, "max_rounds": 1, "data_dir": f"{folder}/data",
            }
            agent = build_graph(checkpointer=open_checkpointer(base["data_dir"]))
            backends, readings, failures = set(), [], 0
            started = time.perf_counter()
            for number in range(1, runs + 1):
                context = Context(**base, user_id=f"user-{number % USERS}", seed=number,
                                  output_dir=f"{folder}/runs/{number}")
                backends.add(id(backends_for(context)))
                config = {"configurable": {"thread_id": f"soak-{number}"}}
                result = agent.invoke({"request": f"the egg-laying mammal, take {number}"},
                                      config, context=context)
                failures += not result.get("final_image")
                if number == min(warm_up, runs) or number == runs or number % 100 == 0:
                    readings.append({"run": number, "rss_mb": _rss_mb(), "fds": _open_fds()})
            seconds = time.perf_counter() - started
            outputs = sum(1 for _ in Path(folder, "runs").rglob("*.png"))
    finally:
        stop_api_servers(servers)
        if saved_key is None:
            os.environ.pop("TAVILY_API_KEY", None)
        else:
            os.environ["TAVILY_API_KEY"] = saved_key
    first, last = readings[0], readings[-1]
    return {
        "runs": runs, "seconds": round(seconds, 1), "runs_without_image": failures,
        "images_written": outputs, "backends_built": len(backends), "readings": readings,
        "rss_growth_mb": round(last["rss_mb"] - first["rss_mb"], 1),
        "fd_growth": last["fds"] - first["fds"],
        "within_limits": last["rss_mb"] - first["rss_mb"] < MAX_GROWTH_MB
        and last["fds"] - first["fds"] <= FD_SLACK,
    }


def _rss_mb() -> float:
    """Resident memory of this process, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def describe(result: dict[str, Any]) -> list[str]:
    """Printable lines for `contextgen bench soak`."""
    lines = [
        f"{result['runs']} runs in {result['seconds']}s, {result['runs_without_image']} without "
        f"an image, {result['images_written']} images written, "
        f"{result['backends_built']} set(s) of backends built",
    ]
    lines += [f"after run {r['run']}: resident {r['rss_mb']} MB, {r['fds']} open files"
              for r in result["readings"]]
    verdict = "within" if result["within_limits"] else "OUTSIDE"
    lines.append(
        f"growth after warm-up: {result['rss_growth_mb']} MB resident, {result['fd_growth']} "
        f"open files ({verdict} the limits: < {MAX_GROWTH_MB:g} MB, at most {FD_SLACK} more "
        "files)"
    )
    return lines
