"""Run one search query (one `Send` per query, in parallel) and keep the hits as evidence.

Hits are untrusted: instruction-like text is removed from each title and content before it
becomes evidence, and a notice names the source it came from."""

from __future__ import annotations

import hashlib
import logging

from langgraph.runtime import Runtime

from contextgen.graphs.context import Context
from contextgen.graphs.state import Evidence, SearchTask
from contextgen.tools.backends import backends_for
from contextgen.tools.errors import BackendUnavailable
from contextgen.tools.untrusted_text import screen, suspicious_text_notice

logger = logging.getLogger(__name__)

MAX_EVIDENCE_CHARS = 1200


def search(task: SearchTask, runtime: Runtime[Context]) -> dict:
    """Search for `task["query"]` and keep the screened hits (`max_results_per_query`, or the
    task's `min_results` when that is more); a provider that cannot serve becomes a notice, not
    a failure."""
    query = task["query"]
    runtime.stream_writer({"node": "search", "message": f"searching: {query}"})
    try:
        provider = backends_for(runtime.context).search
        if provider is None:
            return {
                "notices": ["Search is switched off: the prompt relies on memory and reasoning."]
            }
        wanted = max(runtime.context.max_results_per_query, task.get("min_results", 0))
        hits = provider.search(query, max_results=wanted)
    except BackendUnavailable as error:  # unreachable, or its store cannot be opened
        logger.info("search unavailable: %s", error)
        return {"notices": [f"Search unavailable ({error}); continued on memory and reasoning."]}
    evidence: list[Evidence] = []
    notices: dict[str, None] = {}
    suspicious: dict[str, None] = {}
    for hit in hits:
        title, content = screen(hit.title), screen(hit.content)
        if title.suspicious or content.suspicious:
            reasons = dict.fromkeys([*title.reasons, *content.reasons])
            notices[suspicious_text_notice(hit.source, reasons)] = None
            suspicious[hit.source] = None
        if content.suspicious and not content.text.strip():
            continue  # nothing but instructions
        evidence.append(
            Evidence(
                id=evidence_id(query, hit.source),
                query=query,
                title=title.text,
                content=content.text[:MAX_EVIDENCE_CHARS],
                source=hit.source,
                provider=provider.name,
                score=hit.score,
                image_urls=hit.image_urls,
            )
        )
    update: dict = {"evidence": evidence}
    if notices:
        update["notices"] = list(notices)
        update["suspicious_sources"] = list(suspicious)
    return update


def evidence_id(query: str, source: str) -> str:
    """A short, stable id for one hit of one query."""
    return hashlib.sha1(f"{query}\n{source}".encode()).hexdigest()[:8]
