"""Chat models and VLMs through `ChatOpenAI`: any OpenAI-compatible endpoint, or the embedded one.

API keys are read from the environment only, so they never enter the context, state or traces.
"""

from __future__ import annotations

import os

from langchain_openai import ChatOpenAI

from contextgen.graphs.context import Context
from contextgen.tools.local_llm.embedded_chat import EmbeddedChatOpenAI
from contextgen.tools.local_llm.server import embedded_base_url

DEFAULT_REMOTE_CHAT_MODEL = "gpt-4o-mini"
NO_KEY = "not-needed"


def uses_embedded_model(context: Context) -> bool:
    """True when no endpoint is configured, so the embedded llama.cpp server answers."""
    return not (context.chat_base_url or os.environ.get("OPENAI_API_KEY"))


def chat_model_for(context: Context) -> ChatOpenAI:
    """The chat model for intent analysis and prompt synthesis."""
    if uses_embedded_model(context):
        return EmbeddedChatOpenAI(
            model=context.embedded_model,
            base_url=embedded_base_url(context.embedded_model, context.models_dir),
            api_key="embedded",
            temperature=0.1,
            max_tokens=700,
            timeout=600,
            max_retries=0,
        )
    return ChatOpenAI(
        model=context.chat_model or DEFAULT_REMOTE_CHAT_MODEL,
        base_url=context.chat_base_url or None,
        # A local server (vLLM, llama.cpp, Ollama) needs no key; the client insists on one.
        api_key=os.environ.get("CONTEXTGEN_CHAT_API_KEY")
        or os.environ.get("OPENAI_API_KEY")
        or NO_KEY,
        temperature=0.2,
        timeout=180,
        max_retries=2,
    )


def judge_model_for(context: Context) -> ChatOpenAI | None:
    """The vision-language judge, or None when no judge model is configured."""
    if not context.judge_model:
        return None
    return ChatOpenAI(
        model=context.judge_model,
        base_url=context.judge_base_url or context.chat_base_url or None,
        api_key=os.environ.get("CONTEXTGEN_JUDGE_API_KEY")
        or os.environ.get("OPENAI_API_KEY")
        or NO_KEY,
        temperature=0.0,
        timeout=180,
        max_retries=2,
    )
