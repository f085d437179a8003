"""Parallel research: with search and memory that each take a known delay, the research step
must take about as long as the slowest of them, not their sum."""

from __future__ import annotations

import tempfile
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


def run(repeats: int = 3, scale: float = 1.0) -> dict[str, Any]:
    """Research wall time (from the end of intent analysis to the start of synthesis) against
    the slowest single delay and the sum of all delays, per scenario (best of `repeats`)."""
    from contextgen.graphs.image_agent import build_graph
    from contextgen.tools.backends import use_backends

    agent = build_graph()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="contextgen-bench-") as folder:
        context = Context(data_dir=folder, output_dir=folder, generator_model="none",
                          max_rounds=1)
        for name, scenario in SCENARIOS.items():
            delays = {q: d * scale for q, d in scenario["queries"].items()}
            memory_delay = scenario["memory"] * scale
            walls = []
            for _ in range(repeats):
                backends = instant_backends(context, queries=list(delays),
                                            query_delays=delays, memory_delay=memory_delay)
                with use_backends(backends):
                    agent.invoke({"request": "the egg-laying mammal"}, context=context)
                chat = backends.chat_model
                walls.append(chat.time_of("SynthesisReply", "start")
                             - chat.time_of("IntentReply", "end"))
            slowest = max([*delays.values(), memory_delay])
            total = sum(delays.values()) + memory_delay
            wall = min(walls)
            results[name] = {
                "delays_s": {**delays, "(memory)": memory_delay},
                "research_wall_s": round(wall, 4),
                "slowest_s": round(slowest, 4),
                "sum_s": round(total, 4),
                "ratio_to_slowest": round(wall / slowest, 3),
                "ratio_to_sum": round(wall / total, 3),
                "parallel": wall < 0.5 * (slowest + total),
            }
    return results


def describe(result: dict[str, Any]) -> list[str]:
    return [
        f"{name}: research {entry['research_wall_s'] * 1000:.0f} ms; slowest backend "
        f"{entry['slowest_s'] * 1000:.0f} ms, sum {entry['sum_s'] * 1000:.0f} ms; "
        f"ratio to slowest {entry['ratio_to_slowest']:.2f} "
        f"({'parallel' if entry['parallel'] else 'NOT parallel'})"
        for name, entry in result.items()
    ]
