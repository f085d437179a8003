"""What time and heat do to the subject, as a choice: "an ice cube dropped into a hot frying
pan, ten minutes later" must show what is left, not the ice cube.

A small model asked to reason in free text restates the request; asked to pick one of a few
numbered outcomes, it mostly picks the right one. The outcome becomes a reasoning fact that the
prompt must carry. Asked only when the request lets time pass or brings heat or cold to
something (`lets_time_pass`), or the analysis routed it to reasoning.
"""

from __future__ import annotations

import logging
import re

from langchain_core.language_models import BaseChatModel
from pydantic import Field

from contextgen.tools.structured_output import ChoiceReply, invoke_choice

logger = logging.getLogger(__name__)

# What can be seen after a change of state; the first is "nothing changed".
OUTCOMES = (
    "unchanged",
    "melted into a soft, glossy puddle of liquid",
    "melted and slumped into slush and puddles of water",
    "evaporated completely, leaving the surface dry",
    "boiling and giving off clouds of white steam",
    "frozen solid, covered in frost and ice",
    "giving off thick white fog that spills over the edge",
    "cooled into hard black rock amid hissing clouds of steam",
    "charred and blackened, with wisps of smoke",
)

CUES = re.compile(
    r"\b(?:later|afterwards?|after (?:a|an|one|two|three|\d+|the whole|a whole|several)\b"
    r"|left (?:on|in|out|under|outside)|for (?:the|a|an|one|two|\d+) (?:whole )?"
    r"(?:afternoon|day|days|hours?|minutes?|weeks?|night|summer|winter)"
    r"|dropped (?:in|into|onto)|pour(?:s|ing|ed)? (?:off|into|onto)|photographed again"
    r"|meets? the (?:sea|ocean|water))",
    re.IGNORECASE,
)

# Words a description of the thing stops before ("ice cube dropped into a hot pan" -> "ice cube").
THING_ENDS = frozenset(
    "in on into onto at after under left dropped pouring poured placed put sitting lying when "
    "while with from off near beside photographed".split()
)
MAX_THING_WORDS = 5

INSTRUCTIONS = """You are a physics teacher. Read the scene and decide what the thing in it looks
like at the moment shown, after any heat, cold or time the scene describes. Answer in JSON with
the outcome's number as "choice"."""


class OutcomeReply(ChoiceReply):
    """The model's pick among the numbered outcomes: a number, never free text."""

    choice: int = Field(ge=1, le=len(OUTCOMES))


def lets_time_pass(request: str) -> bool:
    """True when the request lets time pass or brings heat or cold to something ("ten minutes
    later", "left on a dashboard for the whole afternoon", "dropped into warm water")."""
    return CUES.search(request) is not None


def the_thing(description: str) -> str:
    """What changes, from the analysis's description of the subject: its first words, before
    the scene around it ("An ice cube dropped into a hot pan" -> "ice cube")."""
    words = re.sub(r"^(?:the|a|an)\s+", "", description.strip(), flags=re.IGNORECASE).split()
    kept: list[str] = []
    for word in words:
        if word.lower().strip(",.;:") in THING_ENDS or len(kept) == MAX_THING_WORDS:
            break
        kept.append(word.strip(",.;:"))
        if word.endswith((",", ";", ":")):
            break
    if kept and all(word.islower() for word in kept[1:]):  # a capital only from the sentence
        kept[0] = kept[0].lower()
    return " ".join(kept) or "subject"


def change_of_state_conclusion(chat_model: BaseChatModel, request: str, thing: str) -> str | None:
    """'The bar of chocolate is melted into ...', or None when the model sees no change or
    gives no valid number."""
    listing = "\n".join(f"{number}. {text}" for number, text in enumerate(OUTCOMES, start=1))
    message = f"Scene: {request}\n\nThe {thing} at the moment shown is:\n{listing}"
    choice = invoke_choice(chat_model, OutcomeReply, INSTRUCTIONS, message)
    if choice is None:
        return None
    logger.info("change of state for %r: %s", thing, OUTCOMES[choice - 1])
    return None if choice == 1 else f"The {thing} is {OUTCOMES[choice - 1]}."
