"""The request's text as the graph reads it, in any language or script.

A request enters the graph through `reads_request` (on the first node): it must be text with
something to draw; a request longer than `MAX_REQUEST_CHARS` is cut with a notice, and a request
of symbols only (emoji) is read as the symbols' Unicode names ("🐶" -> "dog face"), with a
notice. Prompts then follow the request's language as the model writes them; the comparisons
below (is this negative-prompt term the subject?) work in scripts written without spaces too,
where words are not split by spaces and character pairs (bigrams) stand in for words.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from contextgen.graphs.state import MAX_REQUEST_CHARS

MAX_QUERY_CHARS = 300  # a long request searches by its start (search APIs cap query length)
EXAMPLE = 'e.g. {"request": "a red fox in snow"}'
NAMEABLE_SYMBOLS = ("So", "Sm", "Sc")  # other, maths and currency symbols: emoji are "So"
MAX_SYMBOL_NAMES = 12
# Scripts written without spaces between words: a word is a run of their characters.
UNSPACED_SCRIPTS = (
    "CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN",
)
TERM_SEPARATORS = re.compile(r"[,;\n，、；]")  # also the full-width comma and the list comma


class RequestError(ValueError):
    """The graph's input has no request it can read; the message says what to send."""


@dataclass(frozen=True)
class RequestText:
    """A request as the graph reads it, with notices on what was changed."""

    text: str
    notices: list[str] = field(default_factory=list)


def read_request(value: object, limit: int = MAX_REQUEST_CHARS) -> RequestText:
    """Check and normalise a request: text with something to draw, at most `limit` characters.

    Raises `RequestError` when there is none (missing, not text, blank, only punctuation).
    """
    if value is None:
        raise RequestError(f"the input has no 'request': send what to draw, {EXAMPLE}")
    if not isinstance(value, str):
        raise RequestError(
            f"'request' must be text, not {type(value).__name__}: send what to draw, {EXAMPLE}"
        )
    text = unicodedata.normalize("NFC", without_control_characters(value)).strip()
    if not text:
        raise RequestError(f"the request is empty: send what to draw, {EXAMPLE}")
    notices = []
    if len(text) > limit:
        notices.append(
            f"The request was {len(text):,} characters; only the first {limit:,} were read. "
            "Shorten it, and put background documents in the corpus (contextgen corpus add)."
        )
        text = cut_at_word(text, limit)
    if not has_words(text):
        names = symbol_names(text)
        if not names:
            raise RequestError(
                f"the request {text[:40]!r} has no words and no nameable symbols: describe what "
                "to draw in words, e.g. 'a red fox in snow'"
            )
        notices.append(
            f"The request has symbols but no words: read as their names ({names}). Describe the "
            "picture in words for a better prompt."
        )
        text = names
    return RequestText(text, notices)


def reads_request(node: Callable[..., dict]) -> Callable[..., dict]:
    """Decorate the graph's first node: it sees the request as `read_request` leaves it, and its
    update carries that request (so every later node reads the same) and the notices."""

    @functools.wraps(node)
    def with_request_read(state, *args, **kwargs) -> dict:
        request = read_request(state.get("request"))
        update = node({**state, "request": request.text}, *args, **kwargs)
        if request.text != state.get("request"):
            update = {**update, "request": request.text}
        if request.notices:
            update = {**update, "notices": [*request.notices, *update.get("notices", [])]}
        return update

    return with_request_read


def without_control_characters(text: str) -> str:
    """`text` with control characters (but newlines and tabs) and lone surrogates removed."""
    return "".join(
        char for char in text
        if char in "\n\t" or unicodedata.category(char) not in ("Cc", "Cs")
    )


def cut_at_word(text: str, limit: int) -> str:
    """The first `limit` characters of `text`, ending at a space when one is near the end."""
    cut = text[:limit]
    space = cut.rfind(" ", limit * 9 // 10)
    return (cut[:space] if space > 0 else cut).rstrip()


def has_words(text: str) -> bool:
    """True when `text` holds a letter or a digit, in any script."""
    return any(unicodedata.category(char)[0] in "LN" for char in text)


def symbol_names(text: str) -> str:
    """The distinct symbols of `text` by their Unicode names, in order: "dog face, cherry
    blossom". A pair of regional indicators is a flag ("flag JP"); joiners, variation selectors
    and skin-tone modifiers are parts of the emoji before them and are skipped."""
    names: list[str] = []
    flag_letters = ""
    for char in text:
        name = unicodedata.name(char, "")
        if name.startswith("REGIONAL INDICATOR SYMBOL LETTER "):
            flag_letters += name[-1]
            if len(flag_letters) == 2:
                names.append(f"flag {flag_letters}")
                flag_letters = ""
        elif name and unicodedata.category(char) in NAMEABLE_SYMBOLS:
            names.append(name.lower())
    return ", ".join(list(dict.fromkeys(names))[:MAX_SYMBOL_NAMES])


def split_terms(text: str) -> list[str]:
    """The comma- or semicolon-separated terms of `text` (any script's commas), stripped."""
    return [term.strip() for term in TERM_SEPARATORS.split(text) if term.strip()]


def word_count(text: str) -> int:
    """Words in `text`: space-separated, where characters of an unspaced script count as one
    word per two (a rough length of a Chinese or Japanese word)."""
    count = 0
    for token in text.split():
        unspaced = sum(is_unspaced(char) for char in token)
        count += max(1, math.ceil(unspaced / 2)) if unspaced else 1
    return count


def names_subject(term: str, subject: str) -> bool:
    """True when `term` names `subject` or part of it, in any script: one holds the other,
    or (in unspaced scripts) they share a character bigram, as "熊猫玩具" shares "熊猫"
    with "大熊猫"."""
    term, subject = comparable(term), comparable(subject)
    if not term or not subject:
        return False
    if subject in term or term in subject:
        return True
    return bool(unspaced_bigrams(term) & unspaced_bigrams(subject))


def comparable(text: str) -> str:
    """`text` folded for comparison: compatibility forms (full-width letters) and case."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


def is_unspaced(char: str) -> bool:
    """True for a character of a script written without spaces between words."""
    return unicodedata.name(char, "").startswith(UNSPACED_SCRIPTS)


def unspaced_bigrams(text: str) -> set[str]:
    """Pairs of neighbouring characters within runs of unspaced scripts."""
    return {
        text[i : i + 2]
        for i in range(len(text) - 1)
        if is_unspaced(text[i]) and is_unspaced(text[i + 1])
    }


def query_text(text: str) -> str:
    """The text as one search query: at most `MAX_QUERY_CHARS`, cut at a word boundary."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_QUERY_CHARS else flat[:MAX_QUERY_CHARS].rsplit(" ", 1)[0]
