"""Recall the user's preferences and relevant past runs (in parallel with search)."""

from __future__ import annotations

import logging

from langgraph.runtime import Runtime

from contextgen.graphs.context import Context
from contextgen.graphs.state import AgentState
from contextgen.tools.backends import backends_for

logger = logging.getLogger(__name__)

MEMORIES_PER_RUN = 5


def recall_memory(state: AgentState, runtime: Runtime[Context]) -> dict:
    """Fetch memories for this user and request; a broken store becomes a notice."""
    user_id = state.get("user_id") or runtime.context.user_id
    runtime.stream_writer({"node": "recall_memory", "message": f"recalling memories of {user_id}"})
    try:
        memories = backends_for(runtime.context).memory.recall(
            user_id, state["request"], k=MEMORIES_PER_RUN
        )
    except Exception as error:  # any store failure must not end the run
        logger.warning("memory recall failed: %s", error)
        return {"memories": [], "notices": [f"Memory unavailable ({error}); continued without."]}
    return {"memories": memories}
