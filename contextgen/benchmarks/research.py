"""Parallel research: with search and memory that each take a known delay, the research step
must take about as long as the slowest of them, not their sum. When the local corpus is built,
the demo's three searches on it too: in a fresh process (cold: import, open, load the
embedding model and keyword index), in parallel and one after another, then warm per query.
Targets: three cold searches in <= 2 s, a warm query in <= 100 ms."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from contextgen.benchmarks.backends import instant_backends
from contextgen.graphs.context import Context

SCENARIOS = {
    "search_vs_memory": {"queries": {"platypus": 0.2}, "memory": 0.3},
    "fan_out_3_queries": {
        "queries": {"platypus bill": 0.1, "platypus fur": 0.2, "platypus habitat": 0.4},
        "memory": 0.1,
    },
}
DEMO_QUERIES = (
    "semiaquatic egg-laying mammal endemic to eastern Australia",
    "egg-laying mammal swimming in a creek",
    "platypus appearance",
)
COLD_TARGET_S = 2.0
WARM_TARGET_MS = 100.0


def run(repeats: int = 3, scale: float = 1.0) -> dict[str, Any]:
    """Research wall time (from the end of intent analysis to the start of synthesis) against
    the slowest single delay and the sum of all delays, per scenario (best of `repeats`)."""
    from contextgen.graphs.image_agent import build_graph
    from contextgen.tools.backends import use_backends

    agent = build_graph()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="contextgen-bench-") as folder:
        # the instant chat model stands in for an endpoint: it writes the prompt, so the
        # research phase ends where the synthesis call starts
        context = Context(data_dir=folder, output_dir=folder, generator_model="none",
                          max_rounds=1, prompt_writer="model")
        for name, scenario in SCENARIOS.items():
            delays = {q: d * scale for q, d in scenario["queries"].items()}
            memory_delay = scenario["memory"] * scale
            walls, searched = [], {}
            for _ in range(repeats):
                backends = instant_backends(context, queries=list(delays),
                                            query_delays=delays, memory_delay=memory_delay)
                with use_backends(backends):
                    agent.invoke({"request": "the egg-laying mammal"}, context=context)
                chat = backends.chat_model
                walls.append(chat.time_of("SynthesisReply", "start")
                             - chat.time_of("IntentReply", "end"))
                # what the graph searched (the subject's description and the request come
                # first, and the analysis keeps at most four queries), each with its delay
                searched = {query: delays.get(query, 0.0) for query, *_ in backends.search.calls}
            slowest = max([*searched.values(), memory_delay])
            total = sum(searched.values()) + memory_delay
            wall = min(walls)
            results[name] = {
                "delays_s": {**searched, "(memory)": memory_delay},
                "research_wall_s": round(wall, 4),
                "slowest_s": round(slowest, 4),
                "sum_s": round(total, 4),
                "ratio_to_slowest": round(wall / slowest, 3),
                "ratio_to_sum": round(wall / total, 3),
                "parallel": wall < 0.5 * (slowest + total),
            }
    corpus = local_corpus_searches()
    if corpus is not None:
        results["local_corpus_3_queries"] = corpus
    return results


def local_corpus_searches(
    queries: tuple[str, ...] = DEMO_QUERIES, warm_repeats: int = 5
) -> dict[str, Any] | None:
    """The demo's searches on the context's local corpus, each batch in a fresh process: in
    parallel (as the graph sends them) and one after another; None when the corpus is empty."""
    context = Context()
    if context.chroma_url:
        return None  # a server's corpus: its cold start is the server's, not this process's
    from contextgen.tools.search.local_corpus import LocalCorpus

    if LocalCorpus(context.corpus_dir).count() == 0:
        return None
    parallel = _in_fresh_process(context.corpus_dir, queries, True, warm_repeats)
    sequential = _in_fresh_process(context.corpus_dir, queries, False, 0)
    slowest, total = max(sequential["search_s"]), sum(sequential["search_s"])
    wall = parallel["wall_s"]
    warm = parallel["warm_ms"]
    return {
        "corpus": context.corpus_dir,
        "passages": parallel["passages"],
        "queries": list(queries),
        "import_s": parallel["import_s"],
        "open_s": parallel["open_s"],
        "research_wall_s": wall,
        "slowest_s": slowest,
        "sum_s": round(total, 4),
        "ratio_to_slowest": round(wall / slowest, 3),
        "ratio_to_sum": round(wall / total, 3),
        "parallel": wall < 0.5 * (slowest + total),
        "cold_within_target": parallel["import_s"] + parallel["open_s"] + wall <= COLD_TARGET_S,
        "warm_query_p50_ms": round(statistics.median(warm), 1),
        "warm_query_max_ms": round(max(warm), 1),
        "warm_within_target": max(warm) <= WARM_TARGET_MS,
    }


def _in_fresh_process(
    corpus_dir: str, queries: tuple[str, ...], parallel: bool, warm_repeats: int
) -> dict[str, Any]:
    code = "import json, sys; from contextgen.benchmarks.research import _searches_here; " \
           "print(json.dumps(_searches_here(*json.loads(sys.argv[1]))))"
    arguments = json.dumps([corpus_dir, list(queries), parallel, warm_repeats])
    done = subprocess.run([sys.executable, "-c", code, arguments], capture_output=True,
                          text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the search process failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _searches_here(
    corpus_dir: str, queries: list[str], parallel: bool, warm_repeats: int
) -> dict[str, Any]:
    """Run in a fresh process: open the corpus and search, timing each step."""
    started = time.perf_counter()
    from contextgen.tools.search.local_corpus import LocalCorpus

    imported = time.perf_counter()
    corpus = LocalCorpus(corpus_dir)
    opened = time.perf_counter()

    def timed(query: str) -> float:
        t0 = time.perf_counter()
        corpus.search(query, max_results=3)
        return time.perf_counter() - t0

    if parallel:
        with ThreadPoolExecutor(len(queries)) as pool:
            search_s = list(pool.map(timed, queries))
    else:
        search_s = [timed(q) for q in queries]
    wall = time.perf_counter() - opened
    warm_ms = [timed(q) * 1000 for _ in range(warm_repeats) for q in queries]
    return {
        "passages": corpus.count(),
        "import_s": round(imported - started, 4),
        "open_s": round(opened - imported, 4),
        "wall_s": round(wall, 4),
        "search_s": [round(s, 4) for s in search_s],
        "warm_ms": warm_ms,
    }


def describe(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{name}: research {entry['research_wall_s'] * 1000:.0f} ms; slowest backend "
        f"{entry['slowest_s'] * 1000:.0f} ms, sum {entry['sum_s'] * 1000:.0f} ms; "
        f"ratio to slowest {entry['ratio_to_slowest']:.2f} "
        f"({'parallel' if entry['parallel'] else 'NOT parallel'})"
        for name, entry in result.items()
    ]
    corpus = result.get("local_corpus_3_queries")
    if corpus:
        cold = corpus["import_s"] + corpus["open_s"] + corpus["research_wall_s"]
        lines.append(
            f"local corpus ({corpus['passages']} passages), fresh process: import "
            f"{corpus['import_s']:.2f} s + open {corpus['open_s']:.2f} s + 3 searches "
            f"{corpus['research_wall_s']:.2f} s = {cold:.2f} s cold (target <= "
            f"{COLD_TARGET_S:g} s: {'met' if corpus['cold_within_target'] else 'MISSED'}); "
            f"warm query p50 {corpus['warm_query_p50_ms']:.0f} ms, max "
            f"{corpus['warm_query_max_ms']:.0f} ms (target <= {WARM_TARGET_MS:g} ms: "
            f"{'met' if corpus['warm_within_target'] else 'MISSED'})"
        )
    return lines
