"""The graph under asyncio (as the LangGraph server runs it): its synchronous nodes run in the
graph's own thread pool, not in the event loop's default one, so concurrent runs overlap beyond
that pool's size; `invoke` still calls them as before."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from contextgen.graphs.image_agent import build_graph
from contextgen.graphs.node_executor import (
    DEFAULT_NODE_THREADS,
    NODE_THREADS_VARIABLE,
    node_threads,
)
from contextgen.tools.backends import use_backends
from tests.fakes import PLATYPUS_HIT, SolidColorGenerator, StaticSearch

REQUEST = "the egg-laying mammal of eastern Australia"
SLEEP_S = 0.5
RUNS = 12
DEFAULT_POOL_THREADS = 2


class Overlap:
    """Counts the blocking calls in progress and the most seen at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.threads: set[str] = set()

    def sleep(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.threads.add(threading.current_thread().name)
        time.sleep(SLEEP_S)
        with self.lock:
            self.now -= 1


class SlowSearch(StaticSearch):
    def __init__(self, overlap: Overlap):
        super().__init__({"mammal": [PLATYPUS_HIT]})
        self.overlap = overlap

    def search(self, query, max_results=3):
        self.overlap.sleep()
        return super().search(query, max_results)


class SlowGenerator(SolidColorGenerator):
    def __init__(self, overlap: Overlap):
        super().__init__()
        self.overlap = overlap

    def generate(self, *args, **kwargs):
        self.overlap.sleep()
        return super().generate(*args, **kwargs)


def slow_backends(fake_backends) -> tuple:
    overlap = Overlap()
    return fake_backends(search=SlowSearch(overlap), generator=SlowGenerator(overlap)), overlap


def test_concurrent_async_runs_overlap_beyond_the_default_thread_pool(
    context, fake_backends, tmp_path
):
    backends, overlap = slow_backends(fake_backends)
    graph = build_graph()

    async def all_runs() -> list[dict]:
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(DEFAULT_POOL_THREADS, thread_name_prefix="default-pool"))
        with use_backends(backends):
            return await asyncio.gather(*(
                graph.ainvoke({"request": REQUEST},
                              context=replace(context, output_dir=str(tmp_path / f"run-{n}")))
                for n in range(RUNS)
            ))

    started = time.perf_counter()
    results = asyncio.run(all_runs())
    wall = time.perf_counter() - started

    assert all(result["accepted"] and result["final_image"] for result in results)
    assert len(backends.generator.calls) == RUNS
    # Through a 2-thread default pool the 4 sleeps of each run (3 searches, 1 image) would take
    # at least RUNS * 4 * SLEEP_S / 2 = 12 s; overlapped, about two sleeps.
    assert wall < RUNS * SLEEP_S / 2, f"{wall:.1f} s for {RUNS} runs"
    assert overlap.peak >= RUNS, overlap.peak
    assert all(name.startswith("contextgen-node") for name in overlap.threads), overlap.threads


def test_async_runs_keep_the_runtime_stream_writer_and_backends(context, fake_backends):
    backends = fake_backends()

    async def custom_events() -> list[dict]:
        with use_backends(backends):
            return [event async for event in build_graph().astream(
                {"request": REQUEST}, context=context, stream_mode="custom")]

    nodes = {event["node"] for event in asyncio.run(custom_events()) if "node" in event}
    assert {"analyze_intent", "search", "recall_memory", "generate", "remember"} <= nodes
    assert backends.search.queries and backends.generator.calls


def test_invoke_calls_the_nodes_outside_the_graph_pool(context, fake_backends):
    backends, overlap = slow_backends(fake_backends)
    with use_backends(backends):
        result = build_graph().invoke({"request": REQUEST}, context=context)
    assert result["accepted"] is True
    assert overlap.threads and not any(
        name.startswith("contextgen-node") for name in overlap.threads), overlap.threads


def test_node_threads_reads_the_environment_and_refuses_bad_values():
    assert node_threads({}) == DEFAULT_NODE_THREADS
    assert node_threads({NODE_THREADS_VARIABLE: " 160 "}) == 160
    for bad in ("0", "-3", "many", "1.5"):
        with pytest.raises(ValueError, match=NODE_THREADS_VARIABLE):
            node_threads({NODE_THREADS_VARIABLE: bad})
