"""The embedded LLM: tokens per second, and LLM calls and tokens per request, per node.

Requests that need search run through the full graph on the embedded llama.cpp default, with
canned search evidence and no memory, so the numbers measure the language model alone. Each
request starts a fresh server, as a new `contextgen generate` process would: the first finds
no saved prompt cache (unless an earlier run left one), later ones restore it, so the input
tokens the model actually evaluates are counted apart from those read from the cache. Load-robust
figures come with the wall times: process CPU seconds per call (the server runs in this
process, on one thread) and llama.cpp's own token rates. Then the last call is replayed on two
fresh servers, without and with the 0.5B as draft model (speculative decoding), for models
that have one. Target: at most 4 LLM calls in a first round that needs search (intent,
synthesis, judge, and at most one repair)."""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.request
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from contextgen.benchmarks.backends import BENCH_PREFERENCE, AcceptingJudge, DelayedSearch
from contextgen.graphs.context import Context
from contextgen.memory.in_memory import ListMemory

REQUESTS = (
    "the egg-laying mammal with a duck's bill, swimming in an Australian creek",
    "the animal that lays eggs and has a flat bill, as a children's book drawing",
)
MAX_FIRST_ROUND_CALLS = 4
DRAFT_MODELS = {"qwen2.5-coder-1.5b": "qwen2.5-coder-0.5b"}  # same tokenizer, a third the size

# Loopback requests must not go through an HTTP proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class CallMeter(BaseCallbackHandler):
    """Per chat-model call: node, tokens (and those read from the prompt cache), wall and
    process CPU seconds, and what was sent (to replay it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[UUID, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized, messages, *, run_id: UUID, metadata=None,
                            invocation_params=None, **kwargs: Any) -> None:
        with self._lock:
            self._started[run_id] = {
                "node": (metadata or {}).get("langgraph_node", "(outside graph)"),
                "messages": messages[0],
                "response_format": (invocation_params or {}).get("response_format"),
                "wall": time.perf_counter(),
                "cpu": time.process_time(),
            }

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        with self._lock:
            started = self._started.pop(run_id, None)
            if started is None:
                return
            usage: dict[str, Any] = {}
            for generation in response.generations[0] if response.generations else []:
                usage = getattr(getattr(generation, "message", None), "usage_metadata", None) or {}
            self.calls.append({
                "node": started["node"],
                "input_tokens": usage.get("input_tokens", 0),
                "cached_input_tokens": (usage.get("input_token_details") or {}).get(
                    "cache_read", 0),
                "output_tokens": usage.get("output_tokens", 0),
                "seconds": round(wall - started["wall"], 2),
                "cpu_seconds": round(cpu - started["cpu"], 2),
                "messages": started["messages"],
                "response_format": started["response_format"],
            })


def run(model: str | None = None, requests: int = 2, compare_draft: bool = True) -> dict[str, Any]:
    """Run `requests` search-needing requests on the embedded model (`model` or the context's
    default), each on a fresh server, and tally calls, tokens and seconds per node; then
    compare speculative decoding on the last call when the model has a draft model."""
    from contextgen.graphs.image_agent import build_graph
    from contextgen.runner import run_agent
    from contextgen.tools.backends import Backends, use_backends
    from contextgen.tools.chat_models import uses_embedded_model
    from contextgen.tools.local_llm.server import stop_embedded_servers

    base = Context()
    context = Context(**({"embedded_model": model} if model else {}), generator_model="none",
                      max_rounds=1, data_dir=base.data_dir)
    if not uses_embedded_model(context):
        raise ValueError("the llm benchmark measures the embedded model: unset "
                         "CONTEXTGEN_CHAT_BASE_URL and OPENAI_API_KEY")
    agent = build_graph()
    per_request = []
    per_node: dict[str, dict[str, float]] = {}
    meter = CallMeter()
    with tempfile.TemporaryDirectory(prefix="contextgen-bench-llm-") as folder:
        context.output_dir = folder
        for request in (REQUESTS * requests)[:requests]:
            stop_embedded_servers()  # a fresh server, as in a new process
            backends = Backends(context, search=DelayedSearch(),
                                memory=ListMemory([BENCH_PREFERENCE]), generator=None,
                                judge=AcceptingJudge())
            with use_backends(backends):
                started = time.perf_counter()
                _ = backends.chat_model  # start the server before timing
                server_start_s = time.perf_counter() - started
                first_call = len(meter.calls)
                outcome = run_agent(agent, {"request": request}, context=context,
                                    config={"callbacks": [meter]})
            calls = meter.calls[first_call:]
            totals = outcome.llm_usage.totals()
            per_request.append({
                "request": request,
                "route": outcome.state["intent"].route,
                "calls": int(totals["calls"]),
                "input_tokens": int(totals["input_tokens"]),
                "cached_input_tokens": sum(c["cached_input_tokens"] for c in calls),
                "output_tokens": int(totals["output_tokens"]),
                "seconds": round(totals["seconds"], 2),
                "cpu_seconds": round(sum(c["cpu_seconds"] for c in calls), 2),
                "server_start_seconds": round(server_start_s, 2),
                "wall_seconds": outcome.wall_seconds,
                "final_prompt": outcome.state["prompt_package"].prompt,
            })
            for call in calls:
                entry = per_node.setdefault(call["node"], {
                    "calls": 0, "input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0,
                    "seconds": 0.0, "cpu_seconds": 0.0})
                entry["calls"] += 1
                for key in entry.keys() - {"calls"}:
                    entry[key] += call[key]
        stop_embedded_servers()
    n = len(per_request)
    output_tokens = sum(r["output_tokens"] for r in per_request)
    seconds = sum(r["seconds"] for r in per_request)
    draft_model = DRAFT_MODELS.get(context.embedded_model)
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
        "speculative_decoding": (
            compare_speculative_decoding(context, meter.calls[-1], draft_model)
            if compare_draft and draft_model and meter.calls else None
        ),
    }


def compare_speculative_decoding(context: Context, call: dict[str, Any],
                                 draft_model: str) -> dict[str, Any]:
    """Replay one recorded call on two fresh servers, without and with `draft_model`:
    llama.cpp's timings, drafted and accepted tokens, and process CPU seconds."""
    from contextgen.tools.local_llm.server import standalone_server

    body = {
        "messages": [_openai_message(m) for m in call["messages"]],
        "temperature": 0.0,
        "max_tokens": 700,
        **({"response_format": call["response_format"]} if call["response_format"] else {}),
    }
    result: dict[str, Any] = {"node": call["node"], "draft_model": draft_model}
    for name, draft in (("without_draft", None), ("with_draft", draft_model)):
        with standalone_server(context.embedded_model, context.models_dir,
                               draft_model=draft) as url:
            request = urllib.request.Request(f"{url}/chat/completions", json.dumps(body).encode(),
                                             {"Content-Type": "application/json"})
            wall, cpu = time.perf_counter(), time.process_time()
            with _opener.open(request, timeout=900) as response:
                timings = json.load(response).get("timings", {})
            result[name] = {
                "seconds": round(time.perf_counter() - wall, 2),
                "cpu_seconds": round(time.process_time() - cpu, 2),
                "prompt_tokens": timings.get("prompt_n", 0),
                "prompt_tokens_per_second": round(timings.get("prompt_per_second", 0.0), 2),
                "output_tokens": timings.get("predicted_n", 0),
                "output_tokens_per_second": round(timings.get("predicted_per_second", 0.0), 2),
                "drafted_tokens": timings.get("draft_n", 0),
                "accepted_tokens": timings.get("draft_n_accepted", 0),
            }
    result["cpu_ratio"] = round(
        result["with_draft"]["cpu_seconds"] / max(result["without_draft"]["cpu_seconds"], 1e-9), 2)
    return result


def _openai_message(message) -> dict[str, str]:
    role = {"system": "system", "human": "user", "ai": "assistant"}.get(message.type, "user")
    return {"role": role, "content": str(message.content)}


def describe(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{result['model']}: {result['output_tokens_per_second']:.1f} output tokens/s; "
        f"{result['calls_per_request']:.1f} LLM calls and {result['tokens_per_request']:.0f} "
        f"tokens per request (max {result['max_first_round_calls']} calls in a first round; "
        f"target <= {result['target_first_round_calls']}: "
        f"{'met' if result['within_target'] else 'MISSED'})"
    ]
    for node, tally in result["per_node_per_request"].items():
        lines.append(f"  {node}: {tally['calls']:g} calls, {tally['input_tokens']:.0f} in "
                     f"({tally['cached_input_tokens']:.0f} from the prompt cache) / "
                     f"{tally['output_tokens']:.0f} out tokens, {tally['seconds']:.1f} s "
                     f"({tally['cpu_seconds']:.1f} CPU s)")
    for number, request in enumerate(result["per_request"], 1):
        lines.append(f"  request {number} (fresh server, started in "
                     f"{request['server_start_seconds']:.1f} s): {request['input_tokens']} in, "
                     f"{request['cached_input_tokens']} of them cached; "
                     f"{request['output_tokens']} out; LLM {request['seconds']:.1f} s "
                     f"({request['cpu_seconds']:.1f} CPU s); run {request['wall_seconds']:.1f} s")
    spec = result.get("speculative_decoding")
    if spec:
        for name in ("without_draft", "with_draft"):
            entry = spec[name]
            lines.append(
                f"  {spec['node']} replayed {name.replace('_', ' ')}: {entry['seconds']:.1f} s "
                f"({entry['cpu_seconds']:.1f} CPU s); prompt {entry['prompt_tokens']} tokens at "
                f"{entry['prompt_tokens_per_second']:.1f}/s, output {entry['output_tokens']} at "
                f"{entry['output_tokens_per_second']:.1f}/s; drafted {entry['drafted_tokens']}, "
                f"accepted {entry['accepted_tokens']}")
        lines.append(f"  speculative decoding with {spec['draft_model']}: "
                     f"{spec['cpu_ratio']:.2f}x the CPU time")
    return lines
