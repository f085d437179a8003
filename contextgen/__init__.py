"""contextgen: context-aware image generation as an explicit LangGraph state machine."""

from contextgen.graphs.context import Context
from contextgen.graphs.image_agent import build_graph
from contextgen.tools.backends import Backends, use_backends
from contextgen.tracing import install_trace_scrubbing

install_trace_scrubbing()  # only when the user turned LangSmith tracing on

__all__ = ["Backends", "Context", "build_graph", "use_backends"]
