"""Run the image agent with live progress, and collect what run.json records."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langgraph.types import Command

from contextgen.graphs.context import Context
from contextgen.llm_usage import LLMUsageTracker

ProgressHandler = Callable[[dict[str, Any]], None]


@dataclass
class RunOutcome:
    """The final state of one invocation, and how it went."""

    state: dict[str, Any]
    node_timings: list[dict[str, Any]] = field(default_factory=list)
    llm_usage: LLMUsageTracker = field(default_factory=LLMUsageTracker)
    wall_seconds: float = 0.0
    interrupt: dict[str, Any] | None = None

    @property
    def path(self) -> list[str]:
        """The nodes that ran, in the order they finished."""
        return [timing["node"] for timing in self.node_timings]


def run_agent(
    agent,
    graph_input: dict[str, Any] | Command | None,
    *,
    context: Context,
    config: dict[str, Any] | None = None,
    on_progress: ProgressHandler | None = None,
    outcome: RunOutcome | None = None,
) -> RunOutcome:
    """Stream one invocation of `agent`, reporting node starts/ends and custom progress events.

    `graph_input` is the input state, a `Command(resume=...)`, or None to continue a thread.
    Pass your own `outcome` to keep what was streamed (state, timings, LLM usage) when the run
    stops with an error.
    """
    report = on_progress or (lambda event: None)
    outcome = outcome if outcome is not None else RunOutcome(state={})
    config = {**(config or {})}
    config["callbacks"] = [*config.get("callbacks", []), outcome.llm_usage]
    run_started = time.perf_counter()
    try:
        _stream(agent, graph_input, context, config, outcome, report)
    finally:
        outcome.wall_seconds = round(time.perf_counter() - run_started, 3)
    return outcome


def _stream(agent, graph_input, context: Context, config: dict[str, Any], outcome: RunOutcome,
            report: ProgressHandler) -> None:
    started_tasks: dict[str, tuple[str, float]] = {}
    for mode, chunk in agent.stream(
        graph_input, config, context=context, stream_mode=["tasks", "custom", "updates", "values"]
    ):
        if mode == "tasks" and "input" in chunk:
            started_tasks[chunk["id"]] = (chunk["name"], time.perf_counter())
            report({"event": "node_start", "node": chunk["name"]})
        elif mode == "tasks":
            name, started = started_tasks.pop(chunk["id"], (chunk["name"], time.perf_counter()))
            seconds = round(time.perf_counter() - started, 4)
            if not chunk.get("interrupts"):
                outcome.node_timings.append({"node": name, "seconds": seconds})
            report(
                {
                    "event": "node_end",
                    "node": name,
                    "seconds": seconds,
                    "error": str(chunk["error"]) if chunk.get("error") else None,
                }
            )
        elif mode == "custom":
            report({"event": "progress", **chunk})
        elif mode == "updates" and "__interrupt__" in chunk:
            outcome.interrupt = chunk["__interrupt__"][0].value
        elif mode == "values":
            outcome.state = chunk
