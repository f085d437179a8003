"""The backends one run talks to, built lazily from its `Context` and shared per process.

Nodes ask `backends_for(runtime.context)`. Backends are shared by every context with the same
`Context.backend_key` (models, URLs, device, data folders): runs that differ only in per-run
options (user, seed, rounds, output folder) use one chat client, one memory store, one search
index and one generator. An embedding app or a test can hand in its own objects with
`use_backends(Backends(context, chat_model=..., search=...))`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from contextgen.graphs.context import Context
from contextgen.tools.backend_protocols import ImageGenerator, ImageJudge, MemoryBackend
from contextgen.tools.search.base import SearchProvider

if TYPE_CHECKING:  # both import heavy libraries; backends load lazily
    from langchain_core.language_models import BaseChatModel

    from contextgen.tools.search.local_corpus import LocalCorpus

_override: ContextVar[Backends | None] = ContextVar("contextgen_backends", default=None)
_shared: dict[tuple, Backends] = {}
_shared_lock = threading.Lock()


class Backends:
    """Chat model, search, memory, generator and judge for one context; each made on first use.

    Only the context's backend settings are read (never its per-run options), so one instance
    serves every context with the same `backend_key`. Pass any backend as a keyword argument to
    use that object instead (None: not available).
    """

    def __init__(self, context: Context, **given: Any):
        self.context = context
        self._made: dict[str, Any] = dict(given)
        self._lock = threading.RLock()

    def _get(self, name: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._made:
                self._made[name] = make()
            return self._made[name]

    @property
    def chat_model(self) -> BaseChatModel:
        """The chat model for intent analysis and prompt synthesis."""
        return self._get("chat_model", self._make_chat_model)

    @property
    def search(self) -> SearchProvider | None:
        """The search provider, or None when search is switched off."""
        return self._get("search", self._make_search)

    @property
    def memory(self) -> MemoryBackend:
        """The memory store."""
        return self._get("memory", self._make_memory)

    @property
    def local_corpus(self) -> LocalCorpus:
        """The local document corpus (search's offline default, and what `corpus` commands fill)."""
        return self._get("local_corpus", self._make_local_corpus)

    @property
    def generator(self) -> ImageGenerator | None:
        """The image generator, or None when generation is switched off."""
        return self._get("generator", self._make_generator)

    @property
    def judge(self) -> ImageJudge | None:
        """The vision judge, or None when no judge model is configured."""
        return self._get("judge", self._make_judge)

    # Backends import lazily: the server imports the graph without loading torch or Chroma.
    def _make_chat_model(self):
        from contextgen.tools.chat_models import chat_model_for

        return chat_model_for(self.context)

    def _make_memory(self):
        from contextgen.memory.store import MemoryStore

        return MemoryStore(self.context.memory_dir, url=self.context.chroma_url or None)

    def _make_local_corpus(self):
        from contextgen.tools.search.local_corpus import LocalCorpus

        return LocalCorpus(self.context.corpus_dir, url=self.context.chroma_url or None)

    def _make_search(self):
        provider = self.context.search_provider
        if provider == "none":
            return None
        if provider == "tavily" or (provider == "auto" and os.environ.get("TAVILY_API_KEY")):
            from contextgen.tools.search.tavily import TavilySearch

            return TavilySearch(
                api_key=os.environ.get("TAVILY_API_KEY", ""),
                api_base_url=self.context.tavily_base_url or None,
            )
        return self.local_corpus

    def _make_generator(self):
        if self.context.generator_model.lower() == "none":
            return None
        context = self.context
        if context.generator_base_url:
            from contextgen.tools.images_api_generator import ImagesApiGenerator, ImagesApiSettings

            return ImagesApiGenerator(
                ImagesApiSettings(
                    base_url=context.generator_base_url,
                    model=context.generator_model,
                    edit_model=context.edit_model,
                    edit_base_url=context.edit_base_url,
                    steps=context.steps,
                    width=context.width,
                    height=context.height,
                    timeout_s=context.generator_timeout,
                )
            )
        from contextgen.tools.image_generator import DiffusersGenerator, GeneratorSettings

        return DiffusersGenerator(
            GeneratorSettings(
                model=context.generator_model,
                edit_model=context.edit_model,
                device=context.device,
                dtype=context.dtype,
                steps=context.steps,
                width=context.width,
                height=context.height,
                offload=context.offload,
            )
        )

    def _make_judge(self):
        from contextgen.tools.chat_models import judge_model_for
        from contextgen.tools.vision_judge import VisionJudge

        model = judge_model_for(self.context)
        return VisionJudge(model, self.context.accept_threshold) if model else None


def backends_for(context: Context) -> Backends:
    """The backends for `context`: the ones set by `use_backends`, else the shared ones."""
    override = _override.get()
    if override is not None:
        return override
    key = context.backend_key
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Backends(context)
        return _shared[key]


@contextmanager
def use_backends(backends: Backends) -> Iterator[Backends]:
    """Run the graph with these backends inside the `with` block."""
    token = _override.set(backends)
    try:
        yield backends
    finally:
        _override.reset(token)
