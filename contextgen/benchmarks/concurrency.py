"""Many runs at once: the real graph and its real clients against local chat, search and images
servers with fixed latencies (contextgen/benchmarks/api_servers.py), N runs at each concurrency,
in this process checkpointed in SQLite and, when `CONTEXTGEN_DATABASE_URL` is set, in
PostgreSQL, and through a real `langgraph dev` server driven with langgraph-sdk.

It reports runs per minute and p50/p95 run latency, and checks every batch: each run finished
(none lost), each run's request reached the chat model once per schema and each run made one
image (none duplicated), and every checkpoint of a thread holds that thread's own request. The
benchmark's threads are deleted afterwards. In this process memory is `ListMemory`; the server
is another process, so there memory is embedded Chroma in a temporary data folder, and
checkpoints are the in-memory runtime's own.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from statistics import quantiles
from typing import Any

from contextgen.benchmarks.api_servers import (
    RUN_MARKER,
    ApiServers,
    Latencies,
    api_environment,
    start_api_servers,
    stop_api_servers,
)
from contextgen.benchmarks.backends import BENCH_PREFERENCE
from contextgen.graphs.context import Context
from contextgen.graphs.node_executor import NODE_THREADS_VARIABLE, node_threads
from contextgen.langgraph_dev import running_langgraph_server, write_config

REQUEST = "the egg-laying mammal of eastern Australia, as a photo"
CHAT_SCHEMAS_PER_RUN = ("IntentReply", "SynthesisReply", "JudgeReply")
VIA = ("process", "server", "both")
SERVER_STORE = "langgraph dev"
GRAPH_ID = "contextgen"

Outcome = tuple[float, dict | None, str | None]  # (seconds, final state, error)


def run(runs: int = 32, concurrency: tuple[int, ...] = (1, 8, 32),
        database_url: str | None = None, latencies: Latencies | None = None,
        via: str = "both") -> dict[str, Any]:
    """Run `runs` requests at each concurrency on each store: in this process ("process": SQLite,
    and PostgreSQL at `database_url`, which defaults to `CONTEXTGEN_DATABASE_URL`; empty: SQLite
    only), through `langgraph dev` ("server"), or both."""
    if via not in VIA:
        raise ValueError(f"via must be one of {', '.join(VIA)}, not {via!r}")
    database_url = Context().database_url if database_url is None else database_url
    latencies = latencies or Latencies()
    servers = start_api_servers(latencies)
    result: dict[str, Any] = {"runs": runs, "latencies_s": asdict(latencies), "stores": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="contextgen-concurrency-") as folder:
            if via in ("process", "both"):
                result["stores"] |= _in_process(servers, Path(folder), runs, concurrency,
                                                database_url)
            if via in ("server", "both"):
                cells, result["langgraph_dev"] = _through_server(
                    servers, Path(folder) / "langgraph-dev", runs, concurrency)
                result["stores"][SERVER_STORE] = cells
    finally:
        stop_api_servers(servers)
    return result


def _in_process(servers: ApiServers, folder: Path, runs: int, concurrency: tuple[int, ...],
                database_url: str) -> dict[str, dict[str, Any]]:
    """The graph in this process, checkpointed in SQLite (and PostgreSQL): cells per store."""
    from contextgen.checkpoints import open_checkpointer
    from contextgen.graphs.image_agent import build_graph

    context = _context(servers, folder)
    backends = _backends(context, servers)
    stores = {"sqlite": ""} | ({"postgres": database_url} if database_url else {})
    result = {}
    for store, url in stores.items():
        saver = open_checkpointer(str(folder / store), url)
        agent = build_graph(checkpointer=saver)
        try:
            result[store] = {
                str(level): _batch(agent, saver, backends, context, servers, runs, level)
                for level in concurrency
            }
        finally:
            saver.conn.close()
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


def _new_markers(runs: int) -> list[str]:
    return [f"{RUN_MARKER}{next(_run_numbers)}" for _ in range(runs)]


def _request(marker: str) -> str:
    return f"{REQUEST} ({marker})"


def _batch(agent, saver, backends, context: Context, servers: ApiServers, runs: int,
           level: int) -> dict[str, Any]:
    """`runs` runs in this process, `level` at a time: throughput, latency and the checks."""
    from contextgen.tools.backends import use_backends

    jobs = {marker: uuid.uuid4().hex for marker in _new_markers(runs)}
    before = _served(servers)

    def one(marker: str) -> Outcome:
        thread_id = jobs[marker]
        config = {"configurable": {"thread_id": thread_id}}
        run_context = replace(context, output_dir=str(Path(context.output_dir) / thread_id))
        started = time.perf_counter()
        try:
            with use_backends(backends):
                state = agent.invoke({"request": _request(marker)}, config, context=run_context)
        except Exception as error:  # counted as a lost run, and named
            return time.perf_counter() - started, None, f"{type(error).__name__}: {error}"
        return time.perf_counter() - started, state, None

    outcomes, wall = _drive(jobs, level, one)
    checkpoints = {marker: _own_checkpoints(saver, thread_id, _request(marker))
                   for marker, thread_id in jobs.items()}
    for thread_id in jobs.values():
        saver.delete_thread(thread_id)
    return _cell(level, wall, outcomes, servers, before, checkpoints)


def _through_server(servers: ApiServers, folder: Path, runs: int,
                    concurrency: tuple[int, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The graph under `langgraph dev`, with as many jobs at once as the highest concurrency:
    (cells, what the server ran with). One warm-up run first loads the server's backends."""
    from langgraph_sdk import get_sync_client

    jobs_at_once = max(concurrency)
    config = write_config(folder)
    environment = _server_environment(servers, folder)
    with running_langgraph_server(config, environment, folder / "server.log",
                                  jobs_at_once) as server:
        client = get_sync_client(url=server.url, api_key=None)
        warm_up = _server_batch(client, servers, folder, 1, 1)
        if not warm_up["verified"]:
            raise RuntimeError(f"langgraph dev: the warm-up run failed {warm_up['errors']}\n"
                               f"{server.log_tail()}")
        cells = {str(level): _server_batch(client, servers, folder, runs, level)
                 for level in concurrency}
    setup = {"n_jobs_per_worker": jobs_at_once, "thread_pool": node_threads(environment),
             "checkpointer": "the in-memory runtime's own", "memory": "embedded Chroma"}
    return cells, setup


def _server_environment(servers: ApiServers, folder: Path) -> dict[str, str]:
    """This process's environment without its contextgen settings (but the node pool's size)
    and keys, plus the local API servers, a temporary data folder and one round: the in-process
    benchmark's backends."""
    kept = {name: value for name, value in os.environ.items()
            if (not name.startswith("CONTEXTGEN_") or name == NODE_THREADS_VARIABLE)
            and name not in ("OPENAI_API_KEY", "TAVILY_API_KEY", "LANGSMITH_API_KEY")}
    return kept | api_environment(servers) | {
        "CONTEXTGEN_DATA_DIR": str(folder / "data"),
        "CONTEXTGEN_OUTPUT_DIR": str(folder / "outputs"),
        "CONTEXTGEN_MAX_ROUNDS": "1",
        "HF_HUB_OFFLINE": "1",
    }


def _server_batch(client, servers: ApiServers, folder: Path, runs: int,
                  level: int) -> dict[str, Any]:
    """`runs` runs through the server, `level` at a time: one thread each, created first;
    each run is `runs.wait`, timed from the request to the final state."""
    jobs = {marker: client.threads.create()["thread_id"] for marker in _new_markers(runs)}
    before = _served(servers)

    def one(marker: str) -> Outcome:
        thread_id = jobs[marker]
        started = time.perf_counter()
        try:
            state = client.runs.wait(
                thread_id, GRAPH_ID, input={"request": _request(marker)},
                context={"output_dir": str(folder / "outputs" / thread_id)},
            )
        except Exception as error:  # counted as a lost run, and named
            return time.perf_counter() - started, None, f"{type(error).__name__}: {error}"
        return time.perf_counter() - started, state, None

    outcomes, wall = _drive(jobs, level, one)
    statuses = {marker: [run["status"] for run in client.runs.list(thread_id)]
                for marker, thread_id in jobs.items()}
    checkpoints = {marker: _own_states(client, thread_id, _request(marker))
                   for marker, thread_id in jobs.items()}
    for thread_id in jobs.values():
        client.threads.delete(thread_id)
    return _cell(level, wall, outcomes, servers, before, checkpoints, statuses)


def _drive(jobs: dict[str, str], level: int,
           one: Callable[[str], Outcome]) -> tuple[dict[str, Outcome], float]:
    """Every job through `one`, `level` at a time: (outcome per marker, wall seconds)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(level, thread_name_prefix="bench-run") as pool:
        outcomes = dict(zip(jobs, pool.map(one, jobs), strict=True))
    return outcomes, time.perf_counter() - started


def _served(servers: ApiServers) -> dict[str, int]:
    """How many images and chat calls per schema the API servers have answered so far."""
    return {"images": servers.counts[("images", "images")],
            **{schema: len(servers.markers[("chat", schema)]) for schema in CHAT_SCHEMAS_PER_RUN}}


def _cell(level: int, wall: float, outcomes: dict[str, Outcome], servers: ApiServers,
          before: dict[str, int], checkpoints: dict[str, tuple[int, int]],
          statuses: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Throughput, latency and the checks of one batch. `statuses` (the server's runs per
    thread) must be exactly one success each when given."""
    runs = len(outcomes)
    seconds = sorted(latency for latency, _, _ in outcomes.values())
    finished = [marker for marker, (_, state, _) in outcomes.items()
                if state and state.get("accepted") and state.get("final_image")
                and (statuses is None or statuses[marker] == ["success"])]
    calls = Counter()
    for schema in CHAT_SCHEMAS_PER_RUN:
        calls.update(servers.markers[("chat", schema)][before[schema]:])
    expected_calls = len(CHAT_SCHEMAS_PER_RUN)
    images = servers.counts[("images", "images")] - before["images"]
    rerun_threads = sum(1 for found in (statuses or {}).values() if len(found) > 1)
    duplicated = (sum(1 for marker in outcomes if calls[marker] > expected_calls)
                  + max(images - runs, 0) + rerun_threads)
    return {
        "concurrency": level,
        "wall_s": round(wall, 3),
        "runs_per_minute": round(runs / wall * 60, 1),
        "p50_s": round(_percentile(seconds, 50), 3),
        "p95_s": round(_percentile(seconds, 95), 3),
        "finished": len(finished),
        "lost": runs - len(finished),
        "errors": sorted({error for _, _, error in outcomes.values() if error})[:3],
        "duplicated": duplicated,
        "images": images,
        "checkpoints_per_run": sorted({count for count, _ in checkpoints.values()}),
        "foreign_checkpoints": sum(foreign for _, foreign in checkpoints.values()),
        "verified": len(finished) == runs and images == runs and not rerun_threads
        and all(calls[marker] == expected_calls for marker in outcomes)
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


def _own_states(client, thread_id: str, request: str) -> tuple[int, int]:
    """(the server's checkpoints of the thread, how many hold another request or thread)."""
    history = client.threads.get_history(thread_id, limit=1000)
    foreign = sum(
        1 for state in history
        if state["checkpoint"]["thread_id"] != thread_id
        or (state["values"] or {}).get("request", request) != request
    )
    return len(history), foreign


def _percentile(values: list[float], percent: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return quantiles(values, n=100, method="inclusive")[percent - 1]


def describe(result: dict[str, Any]) -> list[str]:
    lines = [f"{result['runs']} runs per cell; latencies (s): "
             + ", ".join(f"{api} {seconds}" for api, seconds in result["latencies_s"].items()),
             f"{'store':<14}{'concurrency':>12}{'runs/min':>10}{'p50 s':>8}{'p95 s':>8}"
             f"{'lost':>6}{'dup':>5}  checks"]
    for store, cells in result["stores"].items():
        for cell in cells.values():
            checks = "ok" if cell["verified"] else f"FAILED {cell['errors']}"
            lines.append(f"{store:<14}{cell['concurrency']:>12}{cell['runs_per_minute']:>10.1f}"
                         f"{cell['p50_s']:>8.2f}{cell['p95_s']:>8.2f}{cell['lost']:>6}"
                         f"{cell['duplicated']:>5}  {checks}")
    if "sqlite" in result["stores"] and "postgres" not in result["stores"]:
        lines.append("set CONTEXTGEN_DATABASE_URL=postgresql://... to measure PostgreSQL too")
    if server := result.get("langgraph_dev"):
        lines += [
            f"langgraph dev: --n-jobs-per-worker {server['n_jobs_per_worker']}; checkpoints in "
            f"{server['checkpointer']} (not SQLite or PostgreSQL); memory in {server['memory']}",
            f"langgraph dev runs the synchronous nodes in the graph's own thread pool: "
            f"{server['thread_pool']} threads ({NODE_THREADS_VARIABLE}; a run uses up to 5 "
            f"at once)"]
    return lines
