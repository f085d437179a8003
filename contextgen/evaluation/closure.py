"""Context closure: does the final prompt state what the answer key says the image must show?

Two measures, reported side by side: an LLM judge's verdict (with its reason), and, when the
item has keywords, an exact check (any synonym of each group, case-insensitive, whole words).
"""

from __future__ import annotations

import os
import re
from typing import Annotated

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, StringConstraints

from contextgen.evaluation.items import AnswerKey
from contextgen.graphs.context import Context

JUDGE_MODEL_ENV = "CONTEXTGEN_EVAL_JUDGE_MODEL"
JUDGE_BASE_URL_ENV = "CONTEXTGEN_EVAL_JUDGE_BASE_URL"
JUDGE_API_KEY_ENV = "CONTEXTGEN_EVAL_JUDGE_API_KEY"

CLOSURE_INSTRUCTIONS = """You grade prompts written for a text-to-image model. The model knows
nothing beyond the prompt. You get the original request, the answer key (what a correct image
must show) and the prompt. Decide whether the prompt itself states the key content of the answer
key explicitly enough for the model to draw it: the right named subject, or its defining visible
features. A prompt that only repeats the request's riddle or description, names the wrong thing,
or leaves the key content implicit does not close the gap.
Answer in JSON: "quote" (the exact words copied from the prompt that state the answer key's
content; empty if there are none), "reason" (one sentence of your own: what the prompt names or
describes, and whether that matches the answer key), then "closed" (true or false)."""


class ClosureVerdict(BaseModel):
    """The closure judge's answer. `quote` grounds it: a verdict of closed is overruled when
    its quote is not in the prompt, or only repeats words of the request (small judges
    otherwise claim words the prompt lacks, or accept the request's own riddle)."""

    quote: Annotated[str, StringConstraints(max_length=200)]  # required: grammars skip defaults
    reason: Annotated[str, StringConstraints(max_length=300)]
    closed: bool


class ClosureJudge:
    """Asks an LLM whether a prompt closes an item's context gap."""

    def __init__(self, model: BaseChatModel):
        self.model = model

    def judge(self, request: str, answer: AnswerKey, prompt: str) -> ClosureVerdict:
        from contextgen.tools.structured_output import invoke_structured

        message = (
            f"Request: {request}\n\nAnswer key (what the image must show): {answer.expected}\n"
            + (
                "Key terms: " + "; ".join(" / ".join(group) for group in answer.keywords) + "\n"
                if answer.keywords
                else ""
            )
            + f"\nPrompt to grade: {prompt}"
        )
        verdict = invoke_structured(
            self.model,
            ClosureVerdict,
            [SystemMessage(content=CLOSURE_INSTRUCTIONS), HumanMessage(content=message)],
        )
        return grounded(verdict, prompt, request)


def grounded(verdict: ClosureVerdict, prompt: str, request: str = "") -> ClosureVerdict:
    """Overrule a 'closed' verdict whose quote is empty, not found in the prompt, or made
    only of the request's own words (then the prompt adds nothing the request lacked)."""
    if not verdict.closed:
        return verdict
    quote = " ".join(verdict.quote.split()).strip(" .\"'").casefold()
    if not quote or quote not in " ".join(prompt.split()).casefold():
        why = f"the judge's quote {verdict.quote!r} is not in the prompt"
    elif request and _words(quote) <= _words(request):
        why = f"the judge's quote {verdict.quote!r} only repeats the request"
    else:
        return verdict
    return verdict.model_copy(update={
        "closed": False, "reason": f"Overruled: {why}. (Judge said: {verdict.reason})"[:300],
    })


def _words(text: str) -> set[str]:
    """Lowercase words, each without a trailing 's' (a rough singular: 'cakes' -> 'cake')."""
    return {word.removesuffix("s") for word in re.findall(r"\w+", text.casefold())}


def closure_judge_model(context: Context) -> BaseChatModel:
    """The judge LLM: CONTEXTGEN_EVAL_JUDGE_MODEL (with _BASE_URL / _API_KEY) when set,
    else the run's own chat model (the embedded default when nothing is configured)."""
    name = os.environ.get(JUDGE_MODEL_ENV, "").strip()
    base_url = os.environ.get(JUDGE_BASE_URL_ENV, "").strip()
    if not name and not base_url:
        from contextgen.tools.chat_models import chat_model_for

        return chat_model_for(context)
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=name or "gpt-4o-mini",
        base_url=base_url or None,
        api_key=os.environ.get(JUDGE_API_KEY_ENV) or os.environ.get("OPENAI_API_KEY") or "none",
        temperature=0.0,
        timeout=300,
        max_retries=2,
    )


def keyword_hit(keywords: list[list[str]], text: str) -> bool | None:
    """True when every keyword group has a synonym in `text` (case-insensitive, whole words);
    None when there are no keywords."""
    if not keywords:
        return None
    folded = text.casefold()
    return all(
        any(re.search(rf"(?<!\w){re.escape(word.casefold().strip())}(?!\w)", folded)
            for word in group if word.strip())
        for group in keywords
    )
