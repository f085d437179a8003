"""Use a running contextgen server (`langgraph dev`, or a deployment) from your own app.

    langgraph dev --no-browser          # in the contextgen folder, serves http://127.0.0.1:2024
    python examples/remote_graph.py http://127.0.0.1:2024 "a mooncake, as a product photo"

`RemoteGraph` behaves like the local graph: invoke, stream, get_state, and it can be a node
of a local graph. Outputs arrive as JSON (dicts), not pydantic objects.
"""

from __future__ import annotations

import sys
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.pregel.remote import RemoteGraph
from typing_extensions import TypedDict

GRAPH_ID = "contextgen"  # the name in langgraph.json


class HostState(TypedDict, total=False):
    request: str
    prompt_package: dict[str, Any] | None
    final_image: dict[str, Any] | None
    verdicts: list[dict[str, Any]]
    accepted: bool
    summary: str


def summarize(state: HostState) -> dict:
    package = state.get("prompt_package") or {}
    image = state.get("final_image") or {}
    return {"summary": f"{package.get('prompt', '(no prompt)')} -> {image.get('path', 'no image')}"}


def build_remote_app(url: str):
    """A local graph whose first node is the contextgen graph served at `url`."""
    builder = StateGraph(HostState)
    builder.add_node("contextgen", RemoteGraph(GRAPH_ID, url=url))
    builder.add_node("summarize", summarize)
    builder.add_edge(START, "contextgen")
    builder.add_edge("contextgen", "summarize")
    builder.add_edge("summarize", END)
    return builder.compile()


if __name__ == "__main__":
    server = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:2024"
    request = " ".join(sys.argv[2:]) or "the egg-laying mammal of eastern Australia at dawn"
    print(build_remote_app(server).invoke({"request": request})["summary"])
