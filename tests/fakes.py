"""In-process stand-ins for the backends, for unit tests of nodes and graph routing.

Memory is the package's own in-process `ListMemory` (evaluation and benchmarks use it too).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from PIL import Image

from contextgen.graphs.state import ImageArtifact, PromptPackage, Verdict
from contextgen.memory.in_memory import ListMemory as ListMemory  # re-exported
from contextgen.tools.search.base import SearchHit


class ScriptedChatModel(BaseChatModel):
    """Answers each structured request with the next scripted reply for that schema name.

    A reply is a dict (sent as JSON), a raw string, or a callable of the messages.
    """

    replies: dict[str, list[Any]]
    calls: list[tuple[str, list[BaseMessage]]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        schema = kwargs["response_format"]["json_schema"]["name"]
        self.calls.append((schema, list(messages)))
        queue = self.replies[schema]
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(reply):
            reply = reply(messages)
        text = reply if isinstance(reply, str) else json.dumps(reply)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


class StaticSearch:
    """Returns canned hits for queries containing a keyword; records every query."""

    name = "static"

    def __init__(self, hits_by_keyword: dict[str, list[SearchHit]], error: Exception | None = None):
        self.hits_by_keyword = hits_by_keyword
        self.error = error
        self.queries: list[str] = []

    def search(self, query: str, max_results: int = 3) -> list[SearchHit]:
        self.queries.append(query)
        if self.error:
            raise self.error
        for keyword, hits in self.hits_by_keyword.items():
            if keyword.lower() in query.lower():
                return hits[:max_results]
        return []


class SolidColorGenerator:
    """Writes a small solid PNG per call and reports two progress steps; records every call."""

    def __init__(self, can_edit: bool = False):
        self.can_edit = can_edit
        self.calls: list[dict] = []

    def generate(
        self,
        prompt,
        negative_prompt,
        seed,
        out_path,
        round,
        on_step=None,
        mode="text2img",
        input_images=(),
    ) -> ImageArtifact:
        self.calls.append(
            {"prompt": prompt, "seed": seed, "mode": mode, "input_images": list(input_images)}
        )
        for step in (1, 2):
            if on_step:
                on_step(step, 2)
        Image.new("RGB", (16, 16), (seed * 40 % 256, 90, 160)).save(out_path)
        digest = hashlib.sha256(Path(out_path).read_bytes()).hexdigest()
        return ImageArtifact(
            path=out_path,
            sha256=digest,
            width=16,
            height=16,
            seed=seed,
            round=round,
            prompt=prompt,
            model="solid-color",
            edited_from=input_images[0] if input_images else None,
        )


class ScriptedJudge:
    """Returns scripted verdicts in order (the last one repeats)."""

    def __init__(self, verdicts: list[Callable[[int], Verdict]]):
        self.verdicts = verdicts
        self.seen: list[tuple[PromptPackage, ImageArtifact]] = []
        self.references: list[list[str]] = []

    def judge(
        self, request: str, package: PromptPackage, image: ImageArtifact, references=()
    ) -> Verdict:
        self.seen.append((package, image))
        self.references.append(list(references))
        make = self.verdicts[min(len(self.seen), len(self.verdicts)) - 1]
        return make(image.round)


def intent_reply(route: str = "search", queries: list[str] | None = None, **extra: Any) -> dict:
    """A valid IntentReply payload."""
    return {
        "subject": "semiaquatic egg-laying mammal",
        "style": "photograph",
        "constraints": [],
        "knowledge_gaps": ["Which animal is it?"] if route != "direct" else [],
        "candidate_names": [],
        "route": route,
        "search_queries": queries if queries is not None else ["egg-laying mammal Australia"],
        "ambiguous": False,
        "clarifying_question": "",
        "stated_preferences": [],
        **extra,
    }


def synthesis_reply(prompt: str = "A platypus swimming in a creek at dawn", source: str = "E1"):
    """A valid SynthesisReply payload citing one source."""
    return {
        "subject_name": "",
        "subject_source": "",
        "facts": [{"statement": "The animal is the platypus.", "source": source}],
        "prompt": prompt,
        "negative_prompt": "blurry",
    }


def verdict(
    problem: str = "none",
    accepted: bool = True,
    score: float = 0.9,
    missing: list[str] | None = None,
) -> Callable[[int], Verdict]:
    """A verdict factory for ScriptedJudge."""
    return lambda round_number: Verdict(
        round=round_number,
        score=score,
        accepted=accepted,
        problem=problem,
        issues=[] if accepted else ["wrong animal"],
        missing_knowledge=missing or [],
    )


PLATYPUS_HIT = SearchHit(
    title="Platypus",
    content="The platypus is a semiaquatic, egg-laying mammal endemic to eastern Australia.",
    source="https://en.wikipedia.org/wiki/Platypus",
    score=0.9,
)
