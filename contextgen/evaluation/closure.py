"""Context closure and grounding: does the final prompt state what the answer key says the
image must show, and does it carry facts drawn from retrieved evidence?

Closure is measured twice, reported side by side: an LLM judge's verdict (with its quote and
reason, overruled unless the quote names something of the answer key the request lacked), and,
when the item has keywords, an exact check (any synonym of each group, case-insensitive, whole
words). Grounding counts the prompt package's sourced visual facts that reach the prompt.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, StringConstraints

from contextgen.evaluation.items import AnswerKey
from contextgen.graphs.context import Context

JUDGE_MODEL_ENV = "CONTEXTGEN_EVAL_JUDGE_MODEL"
JUDGE_BASE_URL_ENV = "CONTEXTGEN_EVAL_JUDGE_BASE_URL"
JUDGE_API_KEY_ENV = "CONTEXTGEN_EVAL_JUDGE_API_KEY"
DEFAULT_JUDGE_MODEL = "gpt-4o-mini"

CLOSURE_INSTRUCTIONS = """You grade prompts written for a text-to-image model. The model knows
nothing beyond the prompt. You get the original request, the answer key (what a correct image
must show) and the prompt. Decide whether the prompt itself states the key content of the answer
key explicitly enough for the model to draw it: the right named subject, or its defining visible
features. A prompt that only repeats the request's riddle or description, names the wrong thing,
or leaves the key content implicit does not close the gap.
Answer in JSON: "quote" (the exact words copied from the prompt that state the answer key's
content; empty if there are none), "reason" (one sentence of your own: what the prompt names or
describes, and whether that matches the answer key), then "closed" (true or false)."""

SUBJECT_FACT_PREFIX = "The subject is:"
EVIDENCE_SOURCES = ("http://", "https://", "corpus:")
STOP_WORDS = frozenset(
    "a about above after again against all also am an and any are as at be because been before "
    "being below between both but by can could did do does doing down during each few for from "
    "further had has have having he her here hers him his how i if in into is it its itself just "
    "me more most my no nor not now of off on once only or other our ours out over own same she "
    "should so some such than that the their theirs them then there these they this those "
    "through to too under until up very was we were what when where which while who whom why "
    "will with would you your often may might must one image picture show shown shows showing "
    "depict depicts depicting".split()
)


class ClosureReply(BaseModel):
    """The closure judge's answer. `quote` grounds it (see `grounded`)."""

    quote: Annotated[str, StringConstraints(max_length=200)]  # required: grammars skip defaults
    reason: Annotated[str, StringConstraints(max_length=300)]
    closed: bool


class ClosureVerdict(BaseModel):
    """The verdict after the grounding check: `overruled` when the judge said closed but its
    quote did not hold up (small judges claim words the prompt lacks, or accept an adjective)."""

    quote: str
    reason: str
    closed: bool
    overruled: bool = False


class ClosureJudge:
    """Asks an LLM whether a prompt closes an item's context gap; `label` names the judge in
    reports."""

    def __init__(self, model: BaseChatModel, label: str):
        self.model = model
        self.label = label

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
        reply = invoke_structured(
            self.model,
            ClosureReply,
            [SystemMessage(content=CLOSURE_INSTRUCTIONS), HumanMessage(content=message)],
        )
        return grounded(reply, prompt, request, answer)


def grounded(reply: ClosureReply, prompt: str, request: str, answer: AnswerKey) -> ClosureVerdict:
    """The judge's reply as a verdict; a 'closed' reply is overruled when its quote is not in
    the prompt, or names no content word of the answer key (its expected text and keywords)
    that the request lacks: then the prompt names nothing the request did not already say."""
    verdict = ClosureVerdict(quote=reply.quote, reason=reply.reason, closed=reply.closed)
    if not reply.closed:
        return verdict
    quote = " ".join(reply.quote.split()).strip(" .\"'").casefold()
    if not quote or quote not in " ".join(prompt.split()).casefold():
        why = f"the judge's quote {reply.quote!r} is not in the prompt"
    elif not content_words(quote) & (answer_key_words(answer) - content_words(request)):
        why = f"the quote {reply.quote!r} names nothing of the answer key beyond the request"
    else:
        return verdict
    reason = f"Overruled: {why}. (Judge said: {reply.reason})"[:300]
    return verdict.model_copy(update={"closed": False, "overruled": True, "reason": reason})


def answer_key_words(answer: AnswerKey) -> set[str]:
    """Content words of the answer key: its expected text and every keyword synonym."""
    synonyms = " ".join(word for group in answer.keywords for word in group)
    return content_words(f"{answer.expected} {synonyms}")


def content_words(text: str, min_length: int = 2) -> set[str]:
    """Stemmed lowercase words of `text` that are not stop words and have at least
    `min_length` letters before stemming ('Mooncakes' -> 'mooncake', 'poppies' -> 'poppy'),
    and numbers of any length ('4 pm' -> '4', 'pm')."""
    return {
        _stem(word) for word in re.findall(r"\w+", text.casefold())
        if (len(word) >= min_length or word.isdigit()) and word not in STOP_WORDS
    }


def _stem(word: str) -> str:
    """A rough singular: strip a plural 's' or 'es', keeping 'glass', 'platypus', 'iris'."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def sourced_visual_facts(facts: list[dict[str, Any]], prompt: str, request: str) -> int:
    """How many facts cite retrieved evidence (a URL or corpus document, not reasoning or
    memory), are not the subject-naming fact, and reach the prompt: at least one of their
    content words of 4+ letters that the request lacks appears in the prompt."""
    request_words, prompt_words = content_words(request), content_words(prompt)
    count = 0
    for fact in facts:
        statement = str(fact.get("statement", "")).strip()
        if not str(fact.get("source", "")).strip().startswith(EVIDENCE_SOURCES):
            continue
        if statement.startswith(SUBJECT_FACT_PREFIX):
            continue
        if (content_words(statement, min_length=4) - request_words) & prompt_words:
            count += 1
    return count


def closure_judge_model(context: Context) -> BaseChatModel:
    """The judge LLM: CONTEXTGEN_EVAL_JUDGE_MODEL (with _BASE_URL / _API_KEY) when set,
    else the run's own chat model (the embedded default when nothing is configured)."""
    if not _judge_configured():
        from contextgen.tools.chat_models import chat_model_for

        return chat_model_for(context)
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=os.environ.get(JUDGE_MODEL_ENV, "").strip() or DEFAULT_JUDGE_MODEL,
        base_url=os.environ.get(JUDGE_BASE_URL_ENV, "").strip() or None,
        api_key=os.environ.get(JUDGE_API_KEY_ENV) or os.environ.get("OPENAI_API_KEY") or "none",
        temperature=0.0,
        timeout=300,
        max_retries=2,
    )


def closure_judge_label(context: Context) -> str:
    """The closure judge in words, for summary.md: which model, and whether it is one chosen
    to judge or the agent's own (the embedded one when nothing is configured)."""
    if _judge_configured():
        name = os.environ.get(JUDGE_MODEL_ENV, "").strip() or DEFAULT_JUDGE_MODEL
        return f"{name} (set by {JUDGE_MODEL_ENV} / {JUDGE_BASE_URL_ENV})"
    from contextgen.tools.chat_models import DEFAULT_REMOTE_CHAT_MODEL, uses_embedded_model

    advice = f"not a strong judge: set {JUDGE_MODEL_ENV} (and _BASE_URL, _API_KEY) for one"
    if uses_embedded_model(context):
        return f"the embedded model {context.embedded_model}, {advice}"
    return f"the agent's own chat model {context.chat_model or DEFAULT_REMOTE_CHAT_MODEL}, {advice}"


def _judge_configured() -> bool:
    return bool(os.environ.get(JUDGE_MODEL_ENV, "").strip()
                or os.environ.get(JUDGE_BASE_URL_ENV, "").strip())


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
