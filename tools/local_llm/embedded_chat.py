"""`ChatOpenAI` for the embedded llama.cpp server: each call reuses its system prompt's saved KV
cache (see ``prompt_cache``), so a new process evaluates only the request's own part; sampling
discourages loops (llama.cpp's DRY), and a loop that still reaches a reply is cut after its
first occurrence.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import openai
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI
from pydantic import Field

from contextgen.tools.local_llm.server import prompt_cache_for

log = logging.getLogger(__name__)

# llama.cpp's DRY sampler penalises a token that would extend a sequence already seen, by
# multiplier * base ** (length - allowed_length), within the last `dry_penalty_last_n` tokens.
# The server feeds the prompt to the sampler too, so copying a source counts as repeating it:
# with 6 tokens allowed in a 256-token window the 0.5B garbled a copied source sentence
# ("OrnithorhynchUS", "duck-shaped"); 10 in a 64-token window left it as without DRY, and
# still stops a loop after 10 repeated tokens.
LOOP_SAMPLING = {
    "dry_multiplier": 0.8,
    "dry_base": 1.75,
    "dry_allowed_length": 10,
    "dry_penalty_last_n": 64,
}
MIN_LOOP_CHARS = 12  # a repeated tail shorter than this is left alone ("ha ha ha")
MIN_LOOP_REPEATS = 3


class EmbeddedChatOpenAI(ChatOpenAI):
    """A `ChatOpenAI` whose calls to the embedded server restore and save the prompt cache,
    sample against loops, and cut the loops that remain from the reply's text."""

    extra_body: dict[str, Any] | None = Field(default_factory=lambda: dict(LOOP_SAMPLING))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        cache = prompt_cache_for(str(self.openai_api_base or ""))
        system = messages[0].content if messages and messages[0].type == "system" else None
        try:
            if cache is None or not isinstance(system, str):
                result = super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
            else:
                with cache.reuse(system):
                    result = super()._generate(
                        messages, stop=stop, run_manager=run_manager, **kwargs
                    )
        except openai.LengthFinishReasonError as error:
            # A loop that ran to max_tokens: hand its text back (cut below) so that a structured
            # call can ask for a repair, rather than fail.
            log.warning("The embedded model reached its token limit (%s)", self.max_tokens)
            result = self._create_chat_result(error.completion)
        for generation in result.generations:
            message = generation.message
            if isinstance(message.content, str):
                message.content, cut = without_loops(message.content)
                if cut:
                    log.warning("The embedded model looped: cut %d repeated tail(s)", cut)
                    message.response_metadata["repeated_tails_cut"] = cut
        return result


def without_loops(reply: str) -> tuple[str, int]:
    """The reply with every looping tail cut (in each string of a JSON reply, else in the whole
    text), and how many were cut."""
    try:
        value = json.loads(reply)
    except ValueError:
        cut = without_repeated_tail(reply)
        return cut, int(cut != reply)
    if not isinstance(value, dict | list):
        return reply, 0
    cleaned, count = _cut_strings(value)
    return (json.dumps(cleaned, ensure_ascii=False) if count else reply), count


def _cut_strings(value: Any) -> tuple[Any, int]:
    if isinstance(value, str):
        cut = without_repeated_tail(value)
        return cut, int(cut != value)
    if isinstance(value, dict):
        items = {key: _cut_strings(item) for key, item in value.items()}
        return {key: item for key, (item, _) in items.items()}, sum(n for _, n in items.values())
    if isinstance(value, list):
        items = [_cut_strings(item) for item in value]
        return [item for item, _ in items], sum(n for _, n in items)
    return value, 0


def without_repeated_tail(text: str) -> str:
    """`text` cut after the first occurrence of a unit its tail repeats (at least
    `MIN_LOOP_REPEATS` times over `MIN_LOOP_CHARS` or more), as a looping model writes:
    "a fox, blurry, blurry, blurry, blurry" -> "a fox, blurry". A last, unfinished repeat
    counts too; text with no such tail is returned as is."""
    size = len(text)
    longest, cut_at = 0, size
    for unit in range(1, size // MIN_LOOP_REPEATS + 1):
        repeated = 0  # characters at the end that equal the one `unit` before them
        while repeated < size - unit and text[-1 - repeated] == text[-1 - repeated - unit]:
            repeated += 1
        if repeated >= max(MIN_LOOP_CHARS, (MIN_LOOP_REPEATS - 1) * unit) and repeated > longest:
            longest, cut_at = repeated, size - repeated
    return text if cut_at == size else text[:cut_at].rstrip(" ,;、，")
