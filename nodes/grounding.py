"""Structural grounding for small chat models: the subject is chosen, facts are checked against
their sources, and the prompt is checked against both.

A 1.5B model writes poorly and chooses better, though not well enough to trust alone. So the
subject is a pick by number among names that retrieval found (`resolve_subject`), standing only
when its evidence matches the request's description about as well as the best-matching
candidate's; a fact survives only when its cited text holds its key words (`supported`), and
phrases about looks are copied from the subject's source when the model found too few
(`visual_phrases`); a prompt that drops the name or the facts, or says what no source supports,
is replaced by one composed from verified parts (`PromptParts`). Word checks and MiniLM
similarity do the accepting; the model proposes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from contextgen.graphs.state import Evidence, Fact, Intent
from contextgen.tools.errors import BackendUnavailable
from contextgen.tools.structured_output import StructuredOutputError, invoke_structured

logger = logging.getLogger(__name__)

SUBJECT_FACT_PREFIX = "The subject is:"
MAX_CANDIDATES = 5
DESCRIPTION_HITS = 3  # top hits of the description's own query offered as candidates
SNIPPET_CHARS = 140
# Calibrated in tests/test_grounding.py on Wikipedia summaries: the article a description
# points at shares at least half its content words, or sits this close in MiniLM space;
# articles on unrelated things do neither.
MIN_DESCRIPTION_OVERLAP = 0.5
MIN_DESCRIPTION_SIMILARITY = 0.35
PICK_MARGIN = 0.2  # how far below the best match the model's pick may score and still stand
MIN_SUPPORT = 0.7  # share of a fact's key words its cited text must hold
PROMPT_FACTS = 2  # verified facts a prompt must carry (when there are that many)
SCENE_SHARE = 2 / 3  # of the request's words that do not describe the subject

STOP_WORDS = frozenset(
    "a about above after all also an and any are as at be been being below between both but by "
    "can could did do does each for from had has have having he her here his how i if in into is "
    "it its itself just like look looks many more most much my no not now of off on once one only "
    "or other our out over own same she should so some such than that the their them then there "
    "these they this those through to too under until up very was we were what when where which "
    "while who whom why will with would you your appearance feature features seen shown show "
    "shows known called named typically usually often distinctive iconic famous beautiful "
    "striking unique characteristic notable various".split()
)
JUNK_NAMES = frozenset(
    {"unknown", "none", "nothing", "unnamed", "unclear", "unsure", "n a", "na", "null", "nil",
     "subject", "thing", "object", "something", "not sure", "not known", "not named", "no name"}
)

# Words that make a phrase about looks: colours, materials, shapes, body parts, structures.
VISUAL_WORDS = frozenset(
    "white black brown red orange yellow green blue purple pink grey gray golden gold silver "
    "ivory marble stone stones granite sandstone limestone brick wooden timber iron steel copper "
    "bronze glass concrete clay round flat tall large giant huge tiny curved pointed rotund stout "
    "fur furred feathers feathered scales scaly bill billed beak tail tailless wings horns coat "
    "mane shell fins claws stripes striped spots spotted patches quills quill dome domes tower "
    "towers spire arch arches columns pillars minarets sails lattice roof wall walls gardens "
    "statue robed crowned torch sarsen megalithic lintel".split()
)
# Words a looks phrase stops before, and words it neither starts nor ends with.
PHRASE_BREAKS = frozenset(
    "is are was were be been has have had become becomes on in of at from by to for that which "
    "who whom around near between into over under through during since bounded consisting "
    "located built named known belonging ranges range".split()
)
PHRASE_EDGES = frozenset(
    "a an the its their his her it they this these and or with usually generally typically "
    "often".split()
)
MAX_PHRASE_WORDS = 6

CHOICE_INSTRUCTIONS = """You match a description to the encyclopedia entry that defines that
very thing (not a person, place or group connected to it). Answer in JSON with the entry's
number as "choice", or 0 when no entry defines it."""


class SubjectChoiceReply(BaseModel):
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
        return self.overlap >= MIN_DESCRIPTION_OVERLAP or (
            self.similarity is not None and self.similarity >= MIN_DESCRIPTION_SIMILARITY
        )

    @property
    def score(self) -> float:
        return self.overlap + (self.similarity or 0.0)


def resolve_subject(
    chat_model: BaseChatModel, request: str, intent: Intent, evidence: list[Evidence]
) -> Candidate | None:
    """The subject's name and its evidence, or None.

    The model picks among the candidates by number (no call for a single one). Its pick stands
    when its evidence matches the description nearly as well as the best-matching candidate's;
    otherwise (a neighbour, 'none', no valid reply) the best-matching candidate is taken. Either
    way the evidence must match the description, or no subject is named.
    """
    candidates = subject_candidates(request, intent, evidence)
    named = [c for c in candidates if same_name(c.name, intent.subject)]  # the request names it
    if len(candidates) <= 1 or named:
        only = (named or candidates or [None])[0]
        return only if only and match(intent.subject, only.evidence).accepted else None
    matches = description_matches(intent.subject, candidates)
    best = max(range(len(candidates)), key=lambda index: matches[index].score)
    picked = choose(chat_model, intent, candidates)
    logger.info(
        "subject candidates %s; model picked %s, best match %s",
        [(c.name, round(m.score, 2)) for c, m in zip(candidates, matches, strict=True)],
        None if picked is None else candidates[picked].name,
        candidates[best].name,
    )
    if picked is None or matches[picked].score < matches[best].score - PICK_MARGIN:
        picked = best
    return candidates[picked] if matches[picked].accepted else None


def subject_candidates(request: str, intent: Intent, evidence: list[Evidence]) -> list[Candidate]:
    """The titles of the description's top hits, the analysis's names that some evidence names,
    then every other query's top hit; one per name. Titles that name nothing and guesses that
    only restate the request are left out."""
    description = intent.subject.strip()
    ranked = sorted(evidence, key=lambda item: item.score, reverse=True)
    own_hits = [item for item in ranked if item.query == description][:DESCRIPTION_HITS]
    candidates = [Candidate(item.title, item) for item in own_hits[:1]]
    for name in intent.candidate_names:
        source = naming_evidence(name, ranked)
        if source is not None and not is_junk_name(name, request, description):
            title_named = same_name(source.title, name)
            candidates.append(Candidate(source.title if title_named else name.strip(), source))
    candidates += [Candidate(item.title, item) for item in own_hits[1:]]
    tops: dict[str, Evidence] = {}
    for item in ranked:
        tops.setdefault(item.query, item)
    candidates += [Candidate(item.title, item) for item in tops.values()]
    unique: dict[str, Candidate] = {}
    for candidate in candidates:
        if not names_nothing(candidate.name):
            unique.setdefault(candidate.name.casefold(), candidate)
    return list(unique.values())[:MAX_CANDIDATES]


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
    """True for a guessed name that names nothing or restates the request or description."""
    return names_nothing(name) or _bare(name) in (_bare(request), _bare(description))


def choose(chat_model: BaseChatModel, intent: Intent, candidates: list[Candidate]) -> int | None:
    """The index of the model's pick; None for 'none' or when it gives no valid number."""
    listing = "\n".join(
        f"{number}. {candidate.name}: {snippet(candidate.evidence.content)}"
        for number, candidate in enumerate(candidates, start=1)
    )
    message = f"Entries:\n{listing}\n0. none of these\n\nWhich entry defines: {intent.subject}?"
    try:
        reply = invoke_structured(
            chat_model,
            SubjectChoiceReply,
            [SystemMessage(content=CHOICE_INSTRUCTIONS), HumanMessage(content=message)],
        )
    except StructuredOutputError as error:
        logger.info("no subject chosen: %s", error)
        return None
    return reply.choice - 1 if 0 < reply.choice <= len(candidates) else None


def snippet(text: str) -> str:
    """The start of a text, cut at a word boundary."""
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS].rsplit(" ", 1)[0] + "..."


def evidence_text(evidence: Evidence) -> str:
    return f"{evidence.title}. {evidence.content}"


def match(description: str, evidence: Evidence) -> Match:
    """How well one piece of evidence matches the description; MiniLM only when the words do
    not already settle it."""
    overlap = word_share(description, evidence_text(evidence))
    if overlap >= MIN_DESCRIPTION_OVERLAP:
        return Match(overlap)
    similarities = embedding_similarities(description, [evidence_text(evidence)])
    return Match(overlap, similarities[0] if similarities else None)


def description_matches(description: str, candidates: list[Candidate]) -> list[Match]:
    """How well each candidate's evidence matches the description (one MiniLM batch)."""
    texts = [evidence_text(candidate.evidence) for candidate in candidates]
    similarities = embedding_similarities(description, texts) or [None] * len(texts)
    return [
        Match(word_share(description, text), similarity)
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


def key_words(text: str) -> list[str]:
    """Lowercase content words (letters or numbers, stop words left out)."""
    words = re.findall(r"\w+", text.casefold())
    return [word for word in dict.fromkeys(words) if word not in STOP_WORDS and len(word) > 1]


def same_word(first: str, second: str) -> bool:
    """True for one word in two forms ('feathers'/'feathered', 'bill'/'billed'): equal, or
    sharing a prefix of at least four letters that leaves at most two letters of the shorter."""
    if first == second:
        return True
    shared = len(_common_prefix(first, second))
    return shared >= max(4, min(len(first), len(second)) - 2)


def _common_prefix(first: str, second: str) -> str:
    length = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        length += 1
    return first[:length]


def new_words(text: str, known: str) -> list[str]:
    """The key words of `text` that `known` does not hold in any form."""
    held = key_words(known)
    return [word for word in key_words(text) if not any(same_word(word, k) for k in held)]


def word_share(text: str, source: str) -> float:
    """The share of `text`'s key words that `source` holds, in some form (0 without words)."""
    wanted = key_words(text)
    if not wanted:
        return 0.0
    held = key_words(source)
    found = sum(any(same_word(word, other) for other in held) for word in wanted)
    return found / len(wanted)


def supported(statement: str, source_text: str) -> bool:
    """True when the cited text holds nearly all of the statement's key words."""
    return word_share(statement, source_text) >= MIN_SUPPORT


def carried(prompt: str, statement: str) -> bool:
    """True when the prompt carries at least half of the statement's key words."""
    return word_share(statement, prompt) >= 0.5


def sourced_facts(facts: list[Fact]) -> list[Fact]:
    """Facts drawn from documents (not the naming fact, memory or reasoning)."""
    return [
        fact
        for fact in facts
        if not fact.statement.startswith(SUBJECT_FACT_PREFIX)
        and fact.source != "reasoning"
        and not fact.source.startswith("memory:")
    ]


def visual_phrases(text: str, name: str = "") -> list[str]:
    """Short phrases about looks, copied from `text`: from a visual word (with the word before
    it) to the end of its clause, at most `MAX_PHRASE_WORDS` words ("ivory-white marble
    mausoleum", "white coat with black patches"). Phrases that only repeat the name are left
    out."""
    name_words = set(key_words(name))
    phrases = []
    for clause in re.split(r"[,;.:()]|\s[–-]\s", text):
        words = clause.split()
        bare = [word.lower().strip("'\"") for word in words]
        hit = next(
            (i for i, word in enumerate(bare) if set(word.split("-")) & VISUAL_WORDS), None
        )
        if hit is None:
            continue
        before = bare[hit - 1] if hit else ""
        start = hit - 1 if before and before not in PHRASE_BREAKS | PHRASE_EDGES else hit
        end = hit + 1
        limit = min(len(words), start + MAX_PHRASE_WORDS)
        while end < limit and bare[end] not in PHRASE_BREAKS and not (
            bare[end] in ("and", "or") and bare[end + 1 : end + 2] in (["a"], ["an"], ["the"])
        ):  # "... fur and a broad tail": the next thing starts
            end += 1
        if end == limit < len(words) and "and" in bare[hit + 1 : end]:
            end = hit + 1 + bare[hit + 1 : end].index("and")  # cut short: keep the first part
        while end > hit + 1 and bare[end - 1] in PHRASE_EDGES:
            end -= 1
        phrase = " ".join(words[start:end])
        new_words = [word for word in key_words(phrase) if word not in name_words]
        if end - start >= 2 and any(len(word) > 3 and not word.isdigit() for word in new_words):
            phrases.append(phrase)
    return phrases


def looks_from_evidence(
    subject: Candidate, facts: list[Fact], request: str, chars: int
) -> list[Fact]:
    """Phrases about looks from the first `chars` of the subject's evidence, as facts citing it:
    as many as the sourced facts lack to reach `PROMPT_FACTS`, none that the request or a fact
    already says."""
    wanted = PROMPT_FACTS - len(sourced_facts(facts))
    found: list[Fact] = []
    for phrase in visual_phrases(subject.evidence.content[:chars], subject.name):
        fact = Fact(statement=phrase, source=subject.evidence.source)
        known = [*facts, *found]
        if len(found) < wanted and adds_to(f"{request} {subject.name}", fact) and not any(
            carried(other.statement, phrase) for other in known
        ):
            found.append(fact)
    return found


def adds_to(known: str, fact: Fact) -> bool:
    """True when a fact is a whole phrase that says something `known` (the request and the
    subject's name) does not already say. A phrase ending on a word like 'a' or 'the' was cut
    off by the length bound. Reasoning and memory facts always count."""
    if fact.source == "reasoning" or fact.source.startswith("memory:"):
        return True
    words = re.findall(r"\w+", fact.statement.casefold())
    cut_off = not words or words[-1] in STOP_WORDS | PHRASE_EDGES
    return not cut_off and word_share(fact.statement, known) < 1.0


@dataclass(frozen=True)
class PromptParts:
    """What a grounded prompt is made of: the subject's name, the verified facts, the request,
    the text that describes the subject (the analysis's description and the subject's source),
    and the statements no source supported."""

    name: str
    facts: list[Fact]
    request: str
    described: str = ""
    unsupported: tuple[str, ...] = ()

    def held_by(self, prompt: str) -> bool:
        """True when the prompt names the subject, keeps the request's scene (its words that do
        not describe the subject), carries every reasoning conclusion and `PROMPT_FACTS` sourced
        facts (or all, when there are fewer), and says nothing only an unsupported statement
        said."""
        if self.name and not carried(prompt, self.name):
            return False
        scene = new_words(self.request, f"{self.name} {self.described}")
        if scene and word_share(" ".join(scene), prompt) < SCENE_SHARE:
            return False
        known = f"{self.name} {self.request}"
        claims = (new_words(statement, known) for statement in self.unsupported)
        if any(claim and carried(prompt, " ".join(claim)) for claim in claims):
            return False
        conclusions = [fact for fact in self.facts if fact.source == "reasoning"]
        if not all(carried(prompt, fact.statement) for fact in conclusions):
            return False
        visual = sourced_facts(self.facts)
        needed = min(PROMPT_FACTS, len(visual))
        return sum(carried(prompt, fact.statement) for fact in visual) >= needed

    def composed(self) -> str:
        """The name, up to three sourced facts, the reasoning conclusions, then the request
        itself (its scene and style)."""
        name = self.name[:1].upper() + self.name[1:]
        phrases = [fact.statement.strip().rstrip(".") for fact in sourced_facts(self.facts)[:3]]
        phrases += [
            fact.statement.strip().rstrip(".") for fact in self.facts if fact.source == "reasoning"
        ]
        request = self.request.strip().rstrip(".")
        return ", ".join(part for part in [name, *phrases, request] if part)
