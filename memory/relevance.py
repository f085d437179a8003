"""When a past run concerns a new request: the rule that keeps memories from hijacking subjects.

Preferences always apply. A past run (or a remembered fact) enters a new run only when it is
about the same subject:

1. its subject's name is in the request or is one of the analysis's candidate names, or
2. the request points at the past ("like last time", "our mascot", "again") and the two
   requests are at least loosely alike, or
3. the two requests are near paraphrases.

Similarity is the cosine of the new request and the past run's "<subject>: <request>" (how
memory/store.py embeds runs).

Embedding similarity alone cannot tell "the platypus again" from "a koala in eastern
Australia" (both sit near a run about the platypus); the name and the pointer to the past can.
The thresholds are calibrated on tests/data/memory_relevance_pairs.jsonl (see
tests/test_memory_relevance.py, which reports precision and recall).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PARAPHRASE_SIMILARITY = 0.75
POINTED_SIMILARITY = 0.40

_PAST_POINTERS = re.compile(
    r"\b(again|last time|as before|like before|from before|before|previous(ly)?|earlier|"
    r"same|as usual|we used|you made|our|my|remember)\b",
    re.IGNORECASE,
)
_ARTICLES = {"the", "a", "an"}


def points_at_the_past(request: str) -> bool:
    """True when the request refers to something earlier ("the same castle as last time")."""
    return bool(_PAST_POINTERS.search(request))


def words(text: str) -> set[str]:
    """Lower-case words with a plural 's' dropped ("mooncakes" -> "mooncake")."""
    return {_singular(word) for word in re.findall(r"[^\W_]+", text.lower())}


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def name_core(name: str) -> set[str]:
    """The words that make a name: articles, brackets and a trailing "of ..." left out
    ("The Great Wall of China" -> {great, wall})."""
    name = re.sub(r"\(.*?\)", " ", name)
    name = re.split(r"\bof\b", name, maxsplit=1, flags=re.IGNORECASE)[0]
    return words(name) - _ARTICLES


def names_subject(subject: str, request: str, candidate_names: Iterable[str] = ()) -> bool:
    """True when the request, or a candidate name, names `subject`."""
    core = name_core(subject)
    if not core:
        return False
    if core <= words(request):
        return True
    return any(core <= words(name) or (name_core(name) and name_core(name) <= core)
               for name in candidate_names)


def concerns_same_subject(
    request: str, past_subject: str, similarity: float, candidate_names: Iterable[str] = ()
) -> bool:
    """The rule above, for a past run about `past_subject` (empty when it had none) at cosine
    `similarity` to this request."""
    if past_subject and names_subject(past_subject, request, candidate_names):
        return True
    if points_at_the_past(request) and similarity >= POINTED_SIMILARITY:
        return True
    return similarity >= PARAPHRASE_SIMILARITY
