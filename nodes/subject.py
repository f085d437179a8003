"""The subject of a request that describes it without naming it, resolved as a choice.

A 1.5B model writes poorly and chooses better, though not well enough to trust alone. So the
subject is a pick by number among names that retrieval found (`resolve_subject`), standing only
when its evidence matches the request about as well as the best-matching candidate's. Word
overlap and MiniLM similarity do the accepting; the model proposes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from pydantic import Field

from contextgen.graphs.state import Evidence, Fact, Intent
from contextgen.nodes.grounding import SUBJECT_FACT_PREFIX, key_words, word_share
from contextgen.nodes.request_text import query_text
from contextgen.tools.errors import BackendUnavailable
from contextgen.tools.structured_output import ChoiceReply, invoke_choice

logger = logging.getLogger(__name__)

MAX_CANDIDATES = 6
REQUEST_HITS = 6  # hits of the request's own search, all offered as candidates
SNIPPET_CHARS = 140
# Calibrated in tests/test_grounding.py on Wikipedia summaries: the article a description
# points at shares at least half its content words, or sits this close in MiniLM space, or
# comes near on both (a whole request, with its scene and style, dilutes each: "Tulip" for
# the Dutch bulb-mania request holds 1/3 of its words at 0.33); articles on unrelated things
# do none of these.
MIN_DESCRIPTION_OVERLAP = 0.5
MIN_DESCRIPTION_SIMILARITY = 0.35
NEAR_OVERLAP = 1 / 3
NEAR_SIMILARITY = 0.3
# How far below the best match the model's pick may score and still stand. Measured on the dev
# set's 58 subjects (the request's top 6 hits less the titles it says, those that match offered
# to the model): the best match alone is right for 48, the model's pick for 45, the pick
# standing within 0.13 of the best for 49 (0: 48, 0.1: 49, 0.2: 48, 0.3: 47). 0.13 also keeps
# the right picks in tests/test_grounding.
PICK_MARGIN = 0.13

JUNK_NAMES = frozenset(
    {"unknown", "none", "nothing", "unnamed", "unclear", "unsure", "n a", "na", "null", "nil",
     "subject", "thing", "object", "something", "not sure", "not known", "not named", "no name"}
)


CHOICE_INSTRUCTIONS = """You match a description to the encyclopedia entry that defines that
very thing (not a person, place or group connected to it). Answer in JSON with the entry's
number as "choice", or 0 when no entry defines it."""


class SubjectChoiceReply(ChoiceReply):
    """The model's pick among numbered candidates: a number, never free text."""

    choice: int = Field(ge=0, le=MAX_CANDIDATES, description="0 when none fits")


@dataclass(frozen=True)
class Candidate:
    """A name for the subject, and the evidence that names it."""

    name: str
    evidence: Evidence


@dataclass(frozen=True)
class Match:
    """How well a candidate's evidence matches the description: the share of the description's
    content words it holds, and MiniLM cosine similarity (None when the model cannot load)."""

    overlap: float
    similarity: float | None = None

    @property
    def accepted(self) -> bool:
        similarity = self.similarity if self.similarity is not None else -1.0
        return (
            self.overlap >= MIN_DESCRIPTION_OVERLAP
            or similarity >= MIN_DESCRIPTION_SIMILARITY
            or (self.overlap >= NEAR_OVERLAP and similarity >= NEAR_SIMILARITY)
        )

    @property
    def score(self) -> float:
        return self.overlap + (self.similarity or 0.0)


def resolve_subject(
    chat_model: BaseChatModel, request: str, intent: Intent, evidence: list[Evidence]
) -> Candidate | None:
    """The subject's name and its evidence, or None.

    Each candidate's evidence is matched against the request (measured on the dev set, the
    analysis's description of the subject is the worse yardstick: it is often the scene), and
    only candidates whose evidence matches are chosen from, a title that a longer one extends
    giving way to it ("Leopard" to "Snow leopard": the request's details matched the narrower
    too). The model picks among those by number (no call for a single one); its pick stands
    when its match is nearly as good as the best one's, otherwise (a neighbour, 'none', no
    valid reply) the best-matching candidate is taken.
    """
    candidates = subject_candidates(request, intent, evidence)
    named = [c for c in candidates if same_name(c.name, intent.subject)]  # the request names it
    if named:
        candidates = named[:1]
    matches = request_matches(request, candidates)
    matching = [(c, m) for c, m in zip(candidates, matches, strict=True) if m.accepted]
    names = [c.name for c, _ in matching]
    accepted = [(c, m) for c, m in matching if not narrowed(c.name, names)]
    logger.info(
        "subject candidates %s, accepted %s",
        [(c.name, round(m.score, 2)) for c, m in zip(candidates, matches, strict=True)],
        [c.name for c, _ in accepted],
    )
    if len(accepted) <= 1:
        return accepted[0][0] if accepted else None
    best = max(accepted, key=lambda pair: pair[1].score)
    picked = choose(chat_model, request, [c for c, _ in accepted])
    if picked is None or accepted[picked][1].score < best[1].score - PICK_MARGIN:
        return best[0]
    return accepted[picked][0]


def narrowed(name: str, names: list[str]) -> bool:
    """True when another of `names` holds all of `name`'s words and more: a narrower thing of
    its kind ("Snow leopard" narrows "Leopard", "Great Sphinx of Giza" narrows "Sphinx")."""
    words = set(_bare(name).split())
    return any(words < set(_bare(other).split()) for other in names)


def subject_candidates(request: str, intent: Intent, evidence: list[Evidence]) -> list[Candidate]:
    """The titles of the request's own top hits (the description's where the request was not
    searched), with the analysis's names that some evidence names after the first; one per
    name. Titles that name nothing, titles the request says on its way to describing the
    subject ("Fruit", "Window") and guesses that only restate the request are left out.
    (Hits of the description and of the model's queries are about the scene as often as the
    subject: offered too, they lost more subjects than they found.)"""
    description = intent.subject.strip()
    ranked = sorted(evidence, key=lambda item: item.score, reverse=True)
    own_query = query_text(request)
    own = [item for item in ranked if item.query == own_query] or [
        item for item in ranked if item.query == description  # the request was not searched
    ]
    own = [
        item for item in own[:REQUEST_HITS]
        if not says_instead(request, display_name(item.title), description)
    ]
    candidates = [titled(item) for item in own[:1]]
    for name in intent.candidate_names:
        source = naming_evidence(name, ranked)
        if source is not None and not is_junk_name(name, request, description):
            candidates.append(
                titled(source) if same_name(source.title, name) else Candidate(name.strip(), source)
            )
    candidates += [titled(item) for item in own[1:]]
    unique: dict[str, Candidate] = {}
    for candidate in candidates:
        if not names_nothing(candidate.name):
            unique.setdefault(candidate.name.casefold(), candidate)
    return list(unique.values())[:MAX_CANDIDATES]


def says_instead(request: str, name: str, description: str) -> bool:
    """True when the request already says `name` without it being the subject: a thing the
    request mentions on its way to describing another ("Fruit" for "the small round fruit with a
    bumpy red rind", "Montgolfier brothers" for "the flying craft the Montgolfier brothers
    flew"). The subject the analysis names (the description, or its start: "Big Ben clock
    face") is not something said instead."""
    bare = _bare(name)
    return (
        word_share(name, request) == 1.0
        and _bare(description) != bare
        and not _bare(description).startswith(f"{bare} ")
    )


def titled(evidence: Evidence) -> Candidate:
    """A candidate named by its evidence's title, without a disambiguation in brackets
    ("Kiwi (bird)" -> "Kiwi")."""
    return Candidate(display_name(evidence.title), evidence)


def display_name(title: str) -> str:
    """A title without a trailing bracketed disambiguation; the title itself if that is all."""
    return re.sub(r"\s*\([^()]*\)\s*$", "", title).strip() or title.strip()


def naming_evidence(name: str, evidence: list[Evidence]) -> Evidence | None:
    """The evidence that names `name`: by its title first, else by its text."""
    for item in evidence:
        if same_name(item.title, name):
            return item
    pattern = re.compile(rf"(?<!\w){re.escape(name.strip())}(?!\w)", re.IGNORECASE)
    return next((item for item in evidence if pattern.search(item.content)), None)


def same_name(title: str, name: str) -> bool:
    """True when a title and a name are the same words, ignoring case and a leading article."""
    return bool(title.strip()) and _bare(title) == _bare(name)


def _bare(name: str) -> str:
    words = re.findall(r"\w+", name.casefold())
    return " ".join(words[1:] if words[:1] in (["the"], ["a"], ["an"]) else words)


def names_nothing(name: str) -> bool:
    """True for empty names, stop words only, and placeholders such as 'unknown'."""
    return not key_words(name) or _bare(name) in JUNK_NAMES


def is_junk_name(name: str, request: str, description: str) -> bool:
    """True for a guessed name that names nothing or only repeats the request's own words
    ("mausoleum" for "the marble mausoleum a Mughal emperor built"): a guess must add a name."""
    return names_nothing(name) or word_share(name, f"{request} {description}") == 1.0


def choose(chat_model: BaseChatModel, request: str, candidates: list[Candidate]) -> int | None:
    """The index of the model's pick; None for 'none' or when it gives no valid number."""
    listing = "\n".join(
        f"{number}. {candidate.name}: {snippet(candidate.evidence.content)}"
        for number, candidate in enumerate(candidates, start=1)
    )
    message = f"Entries:\n{listing}\n0. none of these\n\nWhich entry defines: {request}?"
    choice = invoke_choice(chat_model, SubjectChoiceReply, CHOICE_INSTRUCTIONS, message)
    return choice - 1 if choice and choice <= len(candidates) else None


def snippet(text: str) -> str:
    """The start of a text, cut at a word boundary."""
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS].rsplit(" ", 1)[0] + "..."


def evidence_text(evidence: Evidence) -> str:
    return f"{evidence.title}. {evidence.content}"


def request_matches(request: str, candidates: list[Candidate]) -> list[Match]:
    """How well each candidate's evidence matches the request (one MiniLM batch)."""
    texts = [evidence_text(candidate.evidence) for candidate in candidates]
    similarities = embedding_similarities(request, texts) or [None] * len(texts)
    return [
        Match(word_share(request, text), similarity)
        for text, similarity in zip(texts, similarities, strict=True)
    ]


def embedding_similarities(text: str, others: list[str]) -> list[float] | None:
    """Cosine similarity of `text` to each of `others` (MiniLM); None when it cannot load."""
    from contextgen.memory.embeddings import default_embedding_function

    try:
        vectors = default_embedding_function().encode([text, *others])
    except BackendUnavailable as error:
        logger.info("similarity check without embeddings: %s", error)
        return None
    return [float(vectors[0] @ vector) for vector in vectors[1:]]


def naming_fact(subject: Candidate) -> Fact:
    """The first fact of a grounded prompt: the subject's name, citing what named it."""
    return Fact(statement=f"{SUBJECT_FACT_PREFIX} {subject.name}.", source=subject.evidence.source)
