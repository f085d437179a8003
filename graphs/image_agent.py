"""The image agent: analyse -> research (parallel) -> synthesize -> generate -> judge -> loop.

`graph` is what `langgraph.json` serves (the server brings its own checkpointer and store);
`build_graph` is for embedding and tests.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import get_runtime
from langgraph.types import Send

from contextgen.graphs.context import Context
from contextgen.graphs.node_executor import both_ways, input_schema_of
from contextgen.graphs.state import AgentState, InputState, OutputState, current_round
from contextgen.nodes.analyze_intent import analyze_intent
from contextgen.nodes.clarify import clarify
from contextgen.nodes.generate import generate
from contextgen.nodes.judge import judge
from contextgen.nodes.recall_memory import recall_memory
from contextgen.nodes.remember import remember
from contextgen.nodes.request_text import query_text
from contextgen.nodes.search import search
from contextgen.nodes.subject import REQUEST_HITS
from contextgen.nodes.synthesize_prompt import synthesize_prompt

NODES = (analyze_intent, clarify, search, recall_memory, synthesize_prompt, generate, judge,
         remember)


def current_context() -> Context:
    """The run's context. `update_state` (a state edit in Studio, `contextgen runs replay`)
    routes without a runtime: then the defaults and environment apply."""
    try:
        runtime = get_runtime(Context)
    except (RuntimeError, KeyError):
        runtime = None
    context = runtime.context if runtime is not None else None
    return context if isinstance(context, Context) else Context()


def route_after_intent(state: AgentState) -> Literal["clarify"] | list[Send]:
    """Ask the user, or research: one `search` per query beside `recall_memory`. The request's
    own query asks for `REQUEST_HITS`: its hits are the subject's candidates."""
    intent = state["intent"]
    if intent.ambiguous and current_context().interactive and not state.get("clarification"):
        return "clarify"
    own_query = query_text(state["request"])
    searches = [
        Send("search", {"query": q, "round": 1, "min_results": REQUEST_HITS})
        if q == own_query
        else Send("search", {"query": q, "round": 1})
        for q in intent.search_queries
    ]
    return [*searches, Send("recall_memory", state)]


def route_after_judge(
    state: AgentState,
) -> Literal["remember", "generate", "synthesize_prompt"] | list[Send]:
    """Go where the judge's `next_step` says: finish, research, rewrite the prompt, or edit."""
    verdict = state["verdicts"][-1]
    if verdict.next_step == "research":
        next_round = current_round(state)
        return [
            Send("search", {"query": q, "round": next_round}) for q in verdict.missing_knowledge
        ]
    destinations = {"finish": "remember", "rewrite": "synthesize_prompt", "edit": "generate"}
    return destinations[verdict.next_step]


def build_graph(checkpointer=None):
    """Compile the image agent. Pass a checkpointer for durable, resumable runs.

    There is no `store` argument: long-term memory lives in Chroma (memory/store.py), which the
    CLI, the server and embedding apps reach the same way through `Context`, so no node reads
    LangGraph's store. No node declares a cache policy either, so there is no `cache`.
    """
    builder = StateGraph(
        AgentState, context_schema=Context, input_schema=InputState, output_schema=OutputState
    )
    # Each node runs as itself under `invoke`, and in the graph's own thread pool under
    # `ainvoke`/the server (graphs/node_executor.py), not in asyncio's small default pool.
    for node in NODES:
        builder.add_node(node.__name__, both_ways(node), input_schema=input_schema_of(node))

    # Routes can also `Send` to search/recall_memory: the path maps list every destination so
    # Studio draws each edge.
    builder.add_edge(START, "analyze_intent")
    builder.add_conditional_edges(
        "analyze_intent", route_after_intent, ["clarify", "search", "recall_memory"]
    )
    builder.add_edge("clarify", "analyze_intent")
    builder.add_edge("search", "synthesize_prompt")
    builder.add_edge("recall_memory", "synthesize_prompt")
    builder.add_edge("synthesize_prompt", "generate")
    builder.add_edge("generate", "judge")
    builder.add_conditional_edges(
        "judge", route_after_judge, ["search", "synthesize_prompt", "generate", "remember"]
    )
    builder.add_edge("remember", END)
    return builder.compile(checkpointer=checkpointer, name="contextgen")


graph = build_graph()
