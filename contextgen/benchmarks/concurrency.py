"""Many runs at once: the real graph and its real clients against local chat, search and images
servers with fixed latencies (contextgen/benchmarks/api_servers.py), N runs at each concurrency,
checkpointed in SQLite and, when `CONTEXTGEN_DATABASE_URL` is set, in PostgreSQL.

It reports runs per minute and p50/p95 run latency, and checks every batch: each run finished
(none lost), each run's request reached the chat model once per schema and each run made one
image (none duplicated), and every checkpoint of a thread holds that thread's own request. The
benchmark's threads are deleted from the store afterwards. Memory is in-process (`ListMemory`).
"""

from __future__ import annotations

import itertools
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from statistics import quantiles
from typing import Any

from contextgen.benchmarks.api_servers import (
    RUN_MARKER,
    ApiServers,
    Latencies,
    start_api_servers,
    stop_api_servers,
)
from contextgen.benchmarks.backends import BENCH_PREFERENCE
from contextgen.graphs.context import Context

REQUEST = "the egg-laying mammal of eastern Australia, as a photo"
CHAT_SCHEMAS_PER_RUN = ("IntentReply", "SynthesisReply", "JudgeReply")


def run(runs: int = 32, concurrency: tuple[int, ...] = (1, 8, 32),
        database_url: str | None = None, latencies: Latencies | None = None) -> dict[str, Any]:
    """Run `runs` requests at each concurrency on each store; `database_url` defaults to
    `CONTEXTGEN_DATABASE_URL` (empty: SQLite only)."""
    from contextgen.checkpoints import open_checkpointer
    from contextgen.graphs.image_agent import build_graph

    database_url = Context().database_url if database_url is None else database_url
    latencies = latencies or Latencies()
    servers = start_api_servers(latencies)
    result: dict[str, Any] = {"runs": runs, "latencies_s": asdict(latencies), "stores": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="contextgen-concurrency-") as folder:
            context = _context(servers, Path(folder))
            backends = _backends(context, servers)
            stores = {"sqlite": ""} | ({"postgres": database_url} if database_url else {})
            for store, url in stores.items():
                saver = open_checkpointer(str(Path(folder) / store), url)
                agent = build_graph(checkpointer=saver)
                try:
                    result["stores"][store] = {
                        str(level): _batch(agent, saver, backends, context, servers, runs, level)
                        for level in concurrency
                    }
                finally:
                    saver.conn.close()
    finally:
        stop_api_servers(servers)
    return result


def _context(servers: ApiServers, folder: Path) -> Context:
    return Context(
        chat_base_url=f"{servers.url}/v1", chat_model="bench-chat",
        judge_base_url=f"{servers.url}/v1", judge_model="bench-judge",
        search_provider="tavily", tavily_base_url=servers.url,
        generator_model="bench-image", generator_base_url=f"{servers.url}/v1",
        width=16, height=16, max_rounds=1, data_dir=str(folder / "data"),
        output_dir=str(folder / "outputs"),
    )


def _backends(context: Context, servers: ApiServers):
    """The context's own clients (ChatOpenAI, the images API generator, the VLM judge), with
    Tavily given its key here and memory in the process."""
    from contextgen.memory.in_memory import ListMemory
    from contextgen.tools.backends import Backends
    from contextgen.tools.search.tavily import TavilySearch

    search = TavilySearch(api_key="tvly-bench", api_base_url=servers.url)
    return Backends(context, search=search, memory=ListMemory([BENCH_PREFERENCE]))


_run_numbers = itertools.count(1)  # markers stay unique across batches


def _batch(agent, saver, backends, context: Context, servers: ApiServers, runs: int,
           level: int) -> dict[str, Any]:
    """`runs` runs, `level` at a time: throughput, latency and the checks."""
    from contextgen.tools.backends import use_backends

    jobs = {f"{RUN_MARKER}{next(_run_numbers)}": uuid.uuid4().hex for _ in range(runs)}
    images_before = servers.counts[("images", "images")]
    markers_before = {schema: len(servers.markers[("chat", schema)])
                      for schema in CHAT_SCHEMAS_PER_RUN}

    def one(marker: str) -> tuple[float, dict | None, str | None]:
        thread_id = jobs[marker]
        config = {"configurable": {"thread_id": thread_id}}
        run_context = replace(context, output_dir=str(Path(context.output_dir) / thread_id))
        started = time.perf_counter()
        try:
            with use_backends(backends):
                state = agent.invoke({"request": f"{REQUEST} ({marker})"}, config,
                                     context=run_context)
        except Exception as error:  # counted as a lost run, and named
            return time.perf_counter() - started, None, f"{type(error).__name__}: {error}"
        return time.perf_counter() - started, state, None

    started = time.perf_counter()
    with ThreadPoolExecutor(level, thread_name_prefix="bench-run") as pool:
        outcomes = dict(zip(jobs, pool.map(one, jobs), strict=True))
    wall = time.perf_counter() - started

    seconds = sorted(latency for latency, _, _ in outcomes.values())
    finished = [m for m, (_, state, _) in outcomes.items()
                if state and state.get("accepted") and state.get("final_image")]
    calls = Counter()
    for schema in CHAT_SCHEMAS_PER_RUN:
        calls.update(servers.markers[("chat", schema)][markers_before[schema]:])
    expected_calls = len(CHAT_SCHEMAS_PER_RUN)
    images = servers.counts[("images", "images")] - images_before
    checkpoints = {marker: _own_checkpoints(saver, thread_id, f"{REQUEST} ({marker})")
                   for marker, thread_id in jobs.items()}
    for thread_id in jobs.values():
        saver.delete_thread(thread_id)
    return {
        "concurrency": level,
        "wall_s": round(wall, 3),
        "runs_per_minute": round(runs / wall * 60, 1),
        "p50_s": round(_percentile(seconds, 50), 3),
        "p95_s": round(_percentile(seconds, 95), 3),
        "finished": len(finished),
        "lost": runs - len(finished),
        "errors": sorted({error for _, _, error in outcomes.values() if error})[:3],
        "duplicated": sum(1 for marker in jobs if calls[marker] > expected_calls)
        + max(images - runs, 0),
        "images": images,
        "checkpoints_per_run": sorted({count for count, _ in checkpoints.values()}),
        "foreign_checkpoints": sum(foreign for _, foreign in checkpoints.values()),
        "verified": len(finished) == runs and images == runs
        and all(calls[marker] == expected_calls for marker in jobs)
        and not any(foreign for _, foreign in checkpoints.values()),
    }


def _own_checkpoints(saver, thread_id: str, request: str) -> tuple[int, int]:
    """(checkpoints of the thread, how many hold another request or thread)."""
    tuples = list(saver.list({"configurable": {"thread_id": thread_id}}))
    foreign = sum(
        1 for item in tuples
        if item.config["configurable"]["thread_id"] != thread_id
        or item.checkpoint["channel_values"].get("request", request) != request
    )
    return len(tuples), foreign


def _percentile(values: list[float], percent: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return quantiles(values, n=100, method="inclusive")[percent - 1]


def describe(result: dict[str, Any]) -> list[str]:
    lines = [f"{result['runs']} runs per cell; latencies (s): "
             + ", ".join(f"{api} {seconds}" for api, seconds in result["latencies_s"].items()),
             f"{'store':<9}{'concurrency':>12}{'runs/min':>10}{'p50 s':>8}{'p95 s':>8}"
             f"{'lost':>6}{'dup':>5}  checks"]
    for store, cells in result["stores"].items():
        for cell in cells.values():
            checks = "ok" if cell["verified"] else f"FAILED {cell['errors']}"
            lines.append(f"{store:<9}{cell['concurrency']:>12}{cell['runs_per_minute']:>10.1f}"
                         f"{cell['p50_s']:>8.2f}{cell['p95_s']:>8.2f}{cell['lost']:>6}"
                         f"{cell['duplicated']:>5}  {checks}")
    if "postgres" not in result["stores"]:
        lines.append("set CONTEXTGEN_DATABASE_URL=postgresql://... to measure PostgreSQL too")
    return lines
