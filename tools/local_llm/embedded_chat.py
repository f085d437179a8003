"""`ChatOpenAI` for the embedded llama.cpp server: each call reuses its system prompt's saved KV
cache (see ``prompt_cache``), so a new process evaluates only the request's own part."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI

from contextgen.tools.local_llm.server import prompt_cache_for


class EmbeddedChatOpenAI(ChatOpenAI):
    """A `ChatOpenAI` whose calls to the embedded server restore and save the prompt cache."""

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        cache = prompt_cache_for(str(self.openai_api_base or ""))
        system = messages[0].content if messages and messages[0].type == "system" else None
        if cache is None or not isinstance(system, str):
            return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        with cache.reuse(system):
            return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
