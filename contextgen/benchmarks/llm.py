"""The embedded LLM: tokens per second, and LLM calls and tokens per request, per node.

Requests that need search run through the full graph on the embedded llama.cpp default, with
canned search evidence and no memory, so the numbers measure the language model alone.
Target: at most 4 LLM calls in a first round that needs search (intent, synthesis, judge, and
at most one repair)."""

from __future__ import annotations

import tempfile
from typing import Any

from contextgen.benchmarks.backends import BENCH_PREFERENCE, AcceptingJudge, DelayedSearch
from contextgen.graphs.context import Context
from contextgen.memory.in_memory import ListMemory

REQUESTS = (
    "the egg-laying mammal with a duck's bill, swimming in an Australian creek",
    "the animal that lays eggs and has a flat bill, as a children's book drawing",
)
MAX_FIRST_ROUND_CALLS = 4


def run(model: str | None = None, requests: int = 2) -> dict[str, Any]:
    """Run `requests` search-needing requests on the embedded model (`model` or the context's
    default) and tally calls, tokens and seconds per node."""
    from contextgen.graphs.image_agent import build_graph
    from contextgen.runner import run_agent
    from contextgen.tools.backends import Backends, use_backends
    from contextgen.tools.chat_models import uses_embedded_model

    base = Context()
    context = Context(**({"embedded_model": model} if model else {}), generator_model="none",
                      max_rounds=1, data_dir=base.data_dir)
    if not uses_embedded_model(context):
        raise ValueError("the llm benchmark measures the embedded model: unset "
                         "CONTEXTGEN_CHAT_BASE_URL and OPENAI_API_KEY")
    agent = build_graph()
    per_request = []
    per_node: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="contextgen-bench-llm-") as folder:
        context.output_dir = folder
        backends = Backends(context, search=DelayedSearch(), memory=ListMemory([BENCH_PREFERENCE]),
                            generator=None, judge=AcceptingJudge())
        with use_backends(backends):
            _ = backends.chat_model  # start the server before timing
            for request in (REQUESTS * requests)[:requests]:
                outcome = run_agent(agent, {"request": request}, context=context)
                totals = outcome.llm_usage.totals()
                per_request.append({
                    "request": request,
                    "route": outcome.state["intent"].route,
                    "calls": int(totals["calls"]),
                    "input_tokens": int(totals["input_tokens"]),
                    "output_tokens": int(totals["output_tokens"]),
                    "seconds": round(totals["seconds"], 2),
                    "wall_seconds": outcome.wall_seconds,
                    "final_prompt": outcome.state["prompt_package"].prompt,
                })
                for node, tally in outcome.llm_usage.per_node.items():
                    entry = per_node.setdefault(node, {"calls": 0, "input_tokens": 0,
                                                       "output_tokens": 0, "seconds": 0.0})
                    for key in entry:
                        entry[key] += tally[key]
    n = len(per_request)
    output_tokens = sum(r["output_tokens"] for r in per_request)
    seconds = sum(r["seconds"] for r in per_request)
    return {
        "model": context.embedded_model,
        "requests": n,
        "output_tokens_per_second": round(output_tokens / seconds, 2) if seconds else 0.0,
        "calls_per_request": round(sum(r["calls"] for r in per_request) / n, 2),
        "tokens_per_request": round(
            sum(r["input_tokens"] + r["output_tokens"] for r in per_request) / n, 1),
        "max_first_round_calls": max(r["calls"] for r in per_request),
        "target_first_round_calls": MAX_FIRST_ROUND_CALLS,
        "within_target": max(r["calls"] for r in per_request) <= MAX_FIRST_ROUND_CALLS,
        "per_node_per_request": {
            node: {k: round(v / n, 2) for k, v in tally.items()} for node, tally in per_node.items()
        },
        "per_request": per_request,
    }


def describe(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{result['model']}: {result['output_tokens_per_second']:.1f} output tokens/s; "
        f"{result['calls_per_request']:.1f} LLM calls and {result['tokens_per_request']:.0f} "
        f"tokens per request (max {result['max_first_round_calls']} calls in a first round; "
        f"target <= {result['target_first_round_calls']}: "
        f"{'met' if result['within_target'] else 'MISSED'})"
    ]
    for node, tally in result["per_node_per_request"].items():
        lines.append(f"  {node}: {tally['calls']:g} calls, {tally['input_tokens']:.0f} in / "
                     f"{tally['output_tokens']:.0f} out tokens, {tally['seconds']:.1f} s")
    return lines
