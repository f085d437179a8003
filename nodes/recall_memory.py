"""Recall the user's preferences and past runs about the same subject (in parallel with search).

Preferences always apply. Past runs and facts come in only when memory/relevance.py says they
concern the request's subject, so an earlier run about the platypus never reaches a request
about a koala in Australia. Recalled texts are screened like search hits: a memory is data.
"""

from __future__ import annotations

import logging

from langgraph.runtime import Runtime

from contextgen.graphs.context import Context
from contextgen.graphs.state import AgentState, Memory
from contextgen.memory.relevance import concerns_same_subject
from contextgen.tools.backends import backends_for
from contextgen.tools.untrusted_text import screen, suspicious_text_notice

logger = logging.getLogger(__name__)

MEMORIES_PER_RUN = 5
NEIGHBOURS = 10  # nearest past runs and facts the relevance rule looks at


def recall_memory(state: AgentState, runtime: Runtime[Context]) -> dict:
    """Fetch memories for this user and request; a broken store becomes a notice."""
    user_id = state.get("user_id") or runtime.context.user_id
    runtime.stream_writer({"node": "recall_memory", "message": f"recalling memories of {user_id}"})
    try:
        recalled = backends_for(runtime.context).memory.recall(
            user_id, state["request"], k=NEIGHBOURS
        )
    except Exception as error:  # any store failure must not end the run
        logger.warning("memory recall failed: %s", error)
        return {"memories": [], "notices": [f"Memory unavailable ({error}); continued without."]}
    intent = state.get("intent")
    candidates = intent.candidate_names if intent else []
    past = [
        memory for memory in recalled if memory.kind != "preference"
        and concerns_same_subject(state["request"], memory.subject, memory.score, candidates)
    ]
    memories = [m for m in recalled if m.kind == "preference"] + past[:MEMORIES_PER_RUN]
    memories, suspicious = screened_memories(memories)
    update: dict = {"memories": memories}
    if suspicious:
        update["suspicious_sources"] = list(suspicious)
        update["notices"] = [suspicious_text_notice(s, r) for s, r in suspicious.items()]
    return update


def screened_memories(memories: list[Memory]) -> tuple[list[Memory], dict[str, list[str]]]:
    """Memories without instruction-like text in their text or subject (one whose text is left
    empty is dropped), and the reasons for each (`memory:<id>`) that held some."""
    kept: list[Memory] = []
    suspicious: dict[str, list[str]] = {}
    for memory in memories:
        text, subject = screen(memory.text), screen(memory.subject)
        if text.suspicious or subject.suspicious:
            reasons = list(dict.fromkeys([*text.reasons, *subject.reasons]))
            suspicious[f"memory:{memory.id}"] = reasons
            if not text.text.strip():
                continue
        kept.append(memory.model_copy(update={"text": text.text, "subject": subject.text}))
    return kept, suspicious
