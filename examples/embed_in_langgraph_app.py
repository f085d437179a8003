"""Embed contextgen in your own LangGraph app: as a subgraph node, or called from a node.

    python examples/embed_in_langgraph_app.py "the bird on the flag of Uganda, as a sticker"

Both apps share contextgen's input keys (`request`, optional `user_id` and
`reference_images`) and read its outputs (`prompt_package`, `final_image`, `verdicts`,
`accepted`). Backends come from `Context` (environment variables `CONTEXTGEN_*`); wrap a call
in `use_backends(Backends(context, chat_model=...))` to hand in your own objects.
"""

from __future__ import annotations

import sys

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from contextgen import Context, build_graph
from contextgen.graphs.state import ImageArtifact, PromptPackage, Verdict


class PosterState(TypedDict, total=False):
    """The host app's state: contextgen's keys plus its own (`caption`)."""

    request: str
    prompt_package: PromptPackage | None
    final_image: ImageArtifact | None
    verdicts: list[Verdict]
    accepted: bool
    caption: str


def write_caption(state: PosterState) -> dict:
    """The host app's own step: a caption from the grounded prompt's facts."""
    package = state.get("prompt_package")
    facts = [fact.statement for fact in package.facts] if package else []
    return {"caption": " ".join(facts) or state["request"]}


def build_poster_app():
    """contextgen as a subgraph node: shared keys flow in and out."""
    builder = StateGraph(PosterState, context_schema=Context)
    builder.add_node("contextgen", build_graph())
    builder.add_node("write_caption", write_caption)
    builder.add_edge(START, "contextgen")
    builder.add_edge("contextgen", "write_caption")
    builder.add_edge("write_caption", END)
    return builder.compile()


_agent = build_graph()


def make_image(state: PosterState, runtime: Runtime[Context]) -> dict:
    """contextgen called from a node: pick what to pass in and what to keep."""
    result = _agent.invoke({"request": state["request"]}, context=runtime.context)
    return {key: result.get(key) for key in ("prompt_package", "final_image", "verdicts")}


def build_caller_app():
    """A host app whose node calls contextgen like any other runnable."""
    builder = StateGraph(PosterState, context_schema=Context)
    builder.add_node("make_image", make_image)
    builder.add_node("write_caption", write_caption)
    builder.add_edge(START, "make_image")
    builder.add_edge("make_image", "write_caption")
    builder.add_edge("write_caption", END)
    return builder.compile()


if __name__ == "__main__":
    request = " ".join(sys.argv[1:]) or "the egg-laying mammal of eastern Australia at dawn"
    result = build_poster_app().invoke({"request": request}, context=Context())
    print("Prompt:", result["prompt_package"].prompt)
    print("Image:", result["final_image"].path if result.get("final_image") else "none")
    print("Caption:", result["caption"])
