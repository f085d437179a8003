"""Orchestration overhead: a full run on instant in-process backends, so every millisecond is
spent in contextgen and LangGraph; without and with the SQLite checkpointer, and with PostgreSQL
when `CONTEXTGEN_DATABASE_URL` is set (its benchmark threads are deleted afterwards)."""

from __future__ import annotations

import tempfile
import time
import uuid
from statistics import median
from typing import Any

from contextgen.benchmarks.backends import instant_backends
from contextgen.graphs.context import Context

TARGET_MS = {"no_checkpointer": 25.0, "sqlite_checkpointer": 60.0, "postgres_checkpointer": 60.0}
REQUEST = "the egg-laying mammal of eastern Australia, as a photo"


def run(runs: int = 50, warmup: int = 3, database_url: str | None = None) -> dict[str, Any]:
    """Milliseconds per run (wall mean and median, and CPU time of the process, which a busy
    machine disturbs less) through `graph.invoke` and through `run_agent` (the CLI's
    streaming path), for each configuration. `database_url` defaults to
    `CONTEXTGEN_DATABASE_URL` (empty: no PostgreSQL configuration)."""
    from contextgen.checkpoints import open_checkpointer
    from contextgen.graphs.image_agent import build_graph
    from contextgen.runner import run_agent
    from contextgen.tools.backends import use_backends

    database_url = Context().database_url if database_url is None else database_url
    names = ["no_checkpointer", "sqlite_checkpointer"] + (
        ["postgres_checkpointer"] if database_url else [])
    results: dict[str, Any] = {"runs": runs}
    with tempfile.TemporaryDirectory(prefix="contextgen-bench-") as folder:
        context = Context(data_dir=folder, output_dir=folder, generator_model="none",
                          max_rounds=1)
        backends = instant_backends(context)
        for name in names:
            checkpointer = None if name == "no_checkpointer" else open_checkpointer(
                folder, database_url if name == "postgres_checkpointer" else "")
            agent = build_graph(checkpointer=checkpointer)
            thread_ids: list[str] = []

            def config(thread_ids=thread_ids) -> dict:
                thread_ids.append(uuid.uuid4().hex)
                return {"configurable": {"thread_id": thread_ids[-1]}}

            def invoke(agent=agent) -> None:
                agent.invoke({"request": REQUEST}, config(), context=context)

            def stream(agent=agent) -> None:
                run_agent(agent, {"request": REQUEST}, context=context, config=config())

            entry: dict[str, Any] = {}
            with use_backends(backends):
                for path, call in (("invoke", invoke), ("run_agent", stream)):
                    for _ in range(warmup):
                        call()
                    times = []
                    cpu_started = time.process_time()
                    for _ in range(runs):
                        started = time.perf_counter()
                        call()
                        times.append((time.perf_counter() - started) * 1000)
                    cpu_ms = (time.process_time() - cpu_started) * 1000 / runs
                    entry[path] = {"mean_ms": round(sum(times) / len(times), 2),
                                   "median_ms": round(median(times), 2),
                                   "max_ms": round(max(times), 2),
                                   "cpu_ms": round(cpu_ms, 2)}
            entry["target_ms"] = TARGET_MS[name]
            entry["within_target"] = entry["invoke"]["mean_ms"] < TARGET_MS[name]
            if checkpointer is not None:
                if name == "postgres_checkpointer":
                    for thread_id in thread_ids:
                        checkpointer.delete_thread(thread_id)
                checkpointer.conn.close()
            results[name] = entry
    return results


def describe(result: dict[str, Any]) -> list[str]:
    lines = []
    for name in (name for name in TARGET_MS if name in result):
        entry = result[name]
        lines.append(
            f"{name}: invoke {entry['invoke']['mean_ms']:.1f} ms/run "
            f"(median {entry['invoke']['median_ms']:.1f}, CPU {entry['invoke']['cpu_ms']:.1f}), "
            f"run_agent "
            f"{entry['run_agent']['mean_ms']:.1f} ms/run; target < {entry['target_ms']:.0f} ms: "
            f"{'met' if entry['within_target'] else 'MISSED'}"
        )
    return lines
