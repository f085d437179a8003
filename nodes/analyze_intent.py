"""Analyse the request: what to draw, what is implied, and what is missing to draw it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, StringConstraints

from contextgen.graphs.context import Context
from contextgen.graphs.state import AgentState, Intent
from contextgen.nodes.grounding import key_words
from contextgen.nodes.request_text import query_text, reads_request
from contextgen.nodes.subject import is_junk_name
from contextgen.tools.backends import backends_for
from contextgen.tools.structured_output import invoke_structured

MAX_QUERIES = 3  # the model's own queries
MAX_SEARCHES = 4  # with the description, the request and the candidate names

INTENT_INSTRUCTIONS = """You prepare image requests for a text-to-image model that knows nothing
beyond the words it is given. Read the request and answer in JSON.

- subject: what must be drawn, in the request's words, without the scene, action or style
  around it. If the request describes a thing without naming it ("the pastry shared at the
  Mid-Autumn Festival, on a plate at night"), keep the description ("pastry shared at the
  Mid-Autumn Festival").
- style, constraints: the look asked for, explicit requirements (short; none is fine).
- knowledge_gaps: questions whose answers the image needs and the words do not give
  (names, appearance, places, dates, recent events, what something looks like).
- candidate_names: when the subject is described but not named and you think you know what it
  is, up to 2 names it may be ("mooncake"). They are guesses for search to check; leave the
  list empty when the subject is already named or you do not know.
- route:
  "direct" when nothing is missing;
  "reason" when the gaps can be settled by reasoning alone (time zones, arithmetic, physics);
  "search" when outside facts are needed;
  "search_then_reason" when facts are needed and then reasoning on them.
  A description of a specific thing, place, person, product or event that is not named needs search.
- search_queries: up to 3 short encyclopedia-style queries about the subject itself (not the
  scene) that would find the missing facts, one of them for each candidate name.
- ambiguous: true only when the user must choose between readings and no search could decide;
  then clarifying_question asks it.
- stated_preferences: lasting wishes the user states about all their images ("I always want
  watercolor"); empty otherwise.

Examples:
"a red apple on a table" -> route "direct", no gaps.
"the Sydney Opera House when it has just turned midnight in London" -> route "reason",
gap "What time is it in Sydney when it is midnight in London?".
"the bird on the flag of Uganda, as a sticker" -> route "search",
gap "Which bird is on the flag of Uganda and what does it look like?",
candidate_names ["grey crowned crane"],
queries ["flag of Uganda bird", "grey crowned crane appearance"]."""

ShortText = Annotated[str, StringConstraints(max_length=200)]
# Small models fill a field up to its bound: every bound is output tokens, and time.
Phrase = Annotated[str, StringConstraints(max_length=80)]
Question = Annotated[str, StringConstraints(max_length=100)]


class IntentReply(BaseModel):
    """The schema a model fills for `Intent`; bounded so small models stay on track."""

    # Every field is required: grammar-constrained servers (llama.cpp) let a model skip
    # optional fields, and small models skip the gaps they should think about first.
    subject: ShortText
    style: Phrase
    constraints: list[Phrase] = Field(max_length=3)
    knowledge_gaps: list[Question] = Field(max_length=3)
    candidate_names: list[Annotated[str, StringConstraints(max_length=60)]] = Field(max_length=2)
    route: Literal["direct", "reason", "search", "search_then_reason"]
    search_queries: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        max_length=MAX_QUERIES
    )
    ambiguous: bool
    clarifying_question: Question
    stated_preferences: list[Phrase] = Field(max_length=3)


@reads_request  # checks the request, cuts an over-long one, names emoji (notices)
def analyze_intent(state: AgentState, runtime: Runtime[Context]) -> dict:
    """Turn the request (and any clarification) into an `Intent` and the first search queries."""
    runtime.stream_writer({"node": "analyze_intent", "message": "analysing the request"})
    request = state["request"]
    if state.get("clarification"):
        request += f"\n(The user clarified: {state['clarification']})"
    reply = invoke_structured(
        backends_for(runtime.context).chat_model,
        IntentReply,
        [SystemMessage(content=INTENT_INSTRUCTIONS), HumanMessage(content=f"Request: {request}")],
    )
    intent = normalize_intent(Intent(**reply.model_dump()), request)
    return {"intent": intent, "queries": intent.search_queries}


def normalize_intent(intent: Intent, request: str) -> Intent:
    """Hold the model's answer to what it can mean.

    A search route always searches the subject's own description first (queries about the
    scene find nothing about the subject), then the request itself (the description is the
    model's and may miss the words that find it), then each candidate name no query holds
    yet, then the model's queries; other routes search nothing. Candidate names that name nothing
    ("unknown", the description itself) are dropped. Ambiguity needs a question; a stated
    preference must be in the user's own words (small models copy the examples).
    """
    needs_search = intent.route in ("search", "search_then_reason")
    subject = intent.subject.strip()
    candidates = [
        name.strip()
        for name in intent.candidate_names
        if not is_junk_name(name, request, subject)
    ]
    queries = [q.strip() for q in intent.search_queries if q.strip()] or intent.knowledge_gaps
    queries = queries[:MAX_QUERIES]
    unchecked = [
        name for name in candidates if not any(name.lower() in q.lower() for q in queries)
    ]
    own = [text for text in (subject, query_text(request)) if key_words(text)]
    queries = [*own, *unchecked, *queries] if needs_search else []
    return intent.model_copy(
        update={
            "candidate_names": candidates,
            "search_queries": distinct(q for q in queries if q)[:MAX_SEARCHES],
            "ambiguous": intent.ambiguous and bool(intent.clarifying_question.strip()),
            "stated_preferences": [
                text for text in intent.stated_preferences if said_in(text, request)
            ],
        }
    )


def distinct(texts: Iterable[str]) -> list[str]:
    """The texts in order, each once, ignoring case."""
    seen: dict[str, str] = {}
    for text in texts:
        seen.setdefault(text.casefold(), text)
    return list(seen.values())


def said_in(text: str, request: str) -> bool:
    """True when every content word of `text` appears in `request`."""
    words = {word.strip(".,;:!?\"'").lower() for word in request.split()}
    content = [word.strip(".,;:!?\"'").lower() for word in text.split() if len(word) > 3]
    return bool(content) and all(word in words for word in content)
