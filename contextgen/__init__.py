"""contextgen: context-aware image generation as an explicit LangGraph state machine."""

from contextgen.graphs.context import Context
from contextgen.graphs.image_agent import build_graph
from contextgen.tools.backends import Backends, use_backends

__all__ = ["Backends", "Context", "build_graph", "use_backends"]
