"""LangSmith tracing without large payloads: images and long texts are trimmed from traces.

Tracing is off unless the user sets LangSmith's own variables (`LANGSMITH_TRACING=true`,
`LANGSMITH_API_KEY`, optionally `LANGSMITH_PROJECT` / `LANGSMITH_ENDPOINT`). When it is on,
`install_trace_scrubbing` makes the process-wide LangSmith client pass every run's inputs and
outputs through `scrub_trace_payload`: base64 images (the judge's `data:` URLs) become a short
placeholder, strings over `MAX_TRACE_CHARS` are cut, lists over `MAX_TRACE_ITEMS` are
shortened. run.json keeps the full record; images never enter state in the first place.
"""

from __future__ import annotations

import os
import re
from typing import Any

MAX_TRACE_CHARS = 500
MAX_TRACE_ITEMS = 10
_DATA_URL = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")


def tracing_enabled() -> bool:
    """True when LangSmith (or the older LangChain variable) switches tracing on."""
    return any(
        os.environ.get(name, "").strip().lower() == "true"
        for name in ("LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2")
    )


def scrub_trace_payload(payload: Any) -> Any:
    """A copy of `payload` fit for a trace: no inline images, no long strings or lists."""
    if isinstance(payload, str):
        text = _DATA_URL.sub(lambda m: f"[image data, {len(m.group(0))} chars, omitted]", payload)
        if len(text) > MAX_TRACE_CHARS:
            text = f"{text[:MAX_TRACE_CHARS]}... [{len(text) - MAX_TRACE_CHARS} chars omitted]"
        return text
    if isinstance(payload, dict):
        return {key: scrub_trace_payload(value) for key, value in payload.items()}
    if isinstance(payload, list | tuple):
        items = [scrub_trace_payload(item) for item in payload[:MAX_TRACE_ITEMS]]
        if len(payload) > MAX_TRACE_ITEMS:
            items.append(f"[{len(payload) - MAX_TRACE_ITEMS} more items omitted]")
        return items
    if hasattr(payload, "model_dump"):  # pydantic objects (messages, state parts)
        try:
            return scrub_trace_payload(payload.model_dump())
        except Exception:  # a model that cannot dump: keep its short text form
            return scrub_trace_payload(repr(payload))
    return payload


def install_trace_scrubbing() -> bool:
    """Create the process-wide LangSmith client with the scrubber, if tracing is on and no
    client exists yet. Returns True when traces from this process are scrubbed."""
    if not tracing_enabled():
        return False
    try:
        from langsmith import run_trees
    except ImportError:
        return False
    client = run_trees.get_cached_client(
        hide_inputs=scrub_trace_payload, hide_outputs=scrub_trace_payload
    )
    return getattr(client, "_hide_inputs", None) is scrub_trace_payload
