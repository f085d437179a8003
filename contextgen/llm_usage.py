"""Count LLM calls and tokens per graph node, from LangChain callbacks."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult


class LLMUsageTracker(BaseCallbackHandler):
    """Tallies calls, input/output tokens and seconds for each node that calls a chat model."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[UUID, tuple[str, float]] = {}
        self.per_node: dict[str, dict[str, float]] = defaultdict(
            lambda: {"calls": 0, "input_tokens": 0, "output_tokens": 0, "seconds": 0.0}
        )

    def on_chat_model_start(self, serialized, messages, *, run_id: UUID, metadata=None, **kw):
        node = (metadata or {}).get("langgraph_node", "(outside graph)")
        with self._lock:
            self._started[run_id] = (node, time.perf_counter())

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            node, started = self._started.pop(run_id, ("(outside graph)", time.perf_counter()))
            tally = self.per_node[node]
            tally["calls"] += 1
            tally["seconds"] += time.perf_counter() - started
            for generation in response.generations[0] if response.generations else []:
                usage = getattr(getattr(generation, "message", None), "usage_metadata", None) or {}
                tally["input_tokens"] += usage.get("input_tokens", 0)
                tally["output_tokens"] += usage.get("output_tokens", 0)

    def totals(self) -> dict[str, float]:
        """Calls, tokens and seconds summed over nodes, with output tokens per second."""
        total = {"calls": 0, "input_tokens": 0, "output_tokens": 0, "seconds": 0.0}
        for tally in self.per_node.values():
            for key in total:
                total[key] += tally[key]
        total["output_tokens_per_second"] = (
            round(total["output_tokens"] / total["seconds"], 2) if total["seconds"] else 0.0
        )
        return total
