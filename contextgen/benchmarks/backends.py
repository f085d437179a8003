"""In-process backends for the benchmarks: instant ones (to isolate orchestration cost) and
ones with a known delay (to check that research runs in parallel). Memory is the package's
in-process `ListMemory`, given a preference to recall and a delay."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from contextgen.graphs.state import ImageArtifact, Memory, PromptPackage, Verdict
from contextgen.memory.in_memory import ListMemory
from contextgen.tools.search.base import SearchHit

BENCH_HIT = SearchHit(
    title="Platypus",
    content="The platypus is a semiaquatic, egg-laying mammal endemic to eastern Australia. "
    "It has a flat, duck-like bill, webbed feet, dense brown fur and a broad, flat tail.",
    source="https://en.wikipedia.org/wiki/Platypus",
    score=0.9,
)
BENCH_PREFERENCE = Memory(id="pref-1", kind="preference", text="Prefers natural light.", score=1.0)


def intent_payload(queries: list[str]) -> dict[str, Any]:
    return {
        "subject": "semiaquatic egg-laying mammal",
        "style": "photograph",
        "constraints": [],
        "knowledge_gaps": ["Which animal is it and what does it look like?"],
        "candidate_names": [],
        "route": "search",
        "search_queries": queries,
        "ambiguous": False,
        "clarifying_question": "",
        "stated_preferences": [],
    }


SYNTHESIS_PAYLOAD = {
    "subject_name": "platypus",
    "subject_source": "E1",
    "facts": [{"statement": "The animal is the platypus.", "source": "E1"}],
    "prompt": "A platypus with a flat duck-like bill and brown fur swimming in a clear creek",
    "negative_prompt": "blurry",
}


class InstantChatModel(BaseChatModel):
    """Answers each structured request at once with a fixed payload for its schema; records
    when each call started and ended (perf_counter seconds)."""

    queries: list[str] = ["egg-laying mammal Australia"]
    events: list[tuple[str, str, float]] = []

    @property
    def _llm_type(self) -> str:
        return "instant"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        schema = kwargs["response_format"]["json_schema"]["name"]
        self.events.append((schema, "start", time.perf_counter()))
        payload = intent_payload(self.queries) if schema == "IntentReply" else SYNTHESIS_PAYLOAD
        message = AIMessage(
            content=json.dumps(payload),
            usage_metadata={"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
        )
        self.events.append((schema, "end", time.perf_counter()))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def time_of(self, schema: str, edge: str) -> float:
        """When the first `schema` call hit `edge` ("start" or "end")."""
        return next(t for name, e, t in self.events if name == schema and e == edge)


class DelayedSearch:
    """Returns one canned hit after a delay (seconds), per query or for all queries."""

    name = "bench"

    def __init__(self, delay: float = 0.0, delays: dict[str, float] | None = None):
        self.delay = delay
        self.delays = delays or {}
        self.calls: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()

    def search(self, query: str, max_results: int = 3) -> list[SearchHit]:
        started = time.perf_counter()
        wait = self.delays.get(query, self.delay)
        if wait:
            time.sleep(wait)
        with self._lock:
            self.calls.append((query, started, time.perf_counter()))
        return [BENCH_HIT]


class InstantGenerator:
    """Returns an artifact without rendering or writing pixels."""

    can_edit = False

    def generate(self, prompt, negative_prompt, seed, out_path, round, on_step=None,
                 mode="text2img", input_images=()) -> ImageArtifact:
        if on_step:
            on_step(1, 1)
        return ImageArtifact(path=out_path, sha256="0" * 64, width=1, height=1, seed=seed,
                             round=round, prompt=prompt, model="instant")


class AcceptingJudge:
    """Accepts every image at once."""

    def judge(
        self,
        request: str,
        package: PromptPackage,
        image: ImageArtifact,
        references: Sequence[str] = (),
    ) -> Verdict:
        return Verdict(round=image.round, score=0.9, accepted=True)


def instant_backends(context, queries: list[str] | None = None, search_delay: float = 0.0,
                     memory_delay: float = 0.0, query_delays: dict[str, float] | None = None):
    """Backends that answer at once (or after the given delays) for `context`."""
    from contextgen.tools.backends import Backends

    chat = InstantChatModel(queries=queries or ["egg-laying mammal Australia"], events=[])
    return Backends(
        context,
        chat_model=chat,
        search=DelayedSearch(search_delay, query_delays),
        memory=ListMemory([BENCH_PREFERENCE], delay=memory_delay),
        generator=InstantGenerator(),
        judge=AcceptingJudge(),
    )
