"""What time and heat do to the subject: "an ice cube dropped into a hot frying pan, ten
minutes later" must show what is left, not the ice cube.

Worked out only when the request lets time pass or brings heat or cold to something
(`lets_time_pass`). Common materials and conditions are settled by rules (`physics_outcome`:
ice and chocolate melt in the heat, a puddle dries in the sun, dry ice fogs, lava meets the sea
in steam); anything else is a numbered choice for the model. On the dev set the 1.5B chose
"frozen solid" for a snowman after a week at 20 °C and for a puddle in 35 °C sun, so the rules
come first. The outcome becomes a reasoning fact that the prompt must carry.
"""

from __future__ import annotations

import logging
import re

from langchain_core.language_models import BaseChatModel
from pydantic import Field

from contextgen.nodes.grounding import word_share
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

MELTS = re.compile(
    r"\b(?:ice(?! age)|ice cubes?|icicles?|snow\w*|chocolate|butter|ice cream|wax|candles?|"
    r"popsicles?|ice lolly|lollies)\b",
    re.IGNORECASE,
)
WATER = re.compile(r"\b(?:puddles?|water|rain|wet|dew)\b", re.IGNORECASE)
HOT_SURFACE = re.compile(
    r"\b(?:frying pan|pan|stove|skillet|griddle|hotplate|oven)\b", re.IGNORECASE
)
HEAT = re.compile(
    r"\b(?:hot|heat\w*|sun|sunny|sunshine|summer|warm\w*|stove|oven|fire|flames?|dashboard|"
    r"radiator|desert|spring weather)\b",
    re.IGNORECASE,
)
COLD = re.compile(r"\b(?:freez\w*|frost\w*|below zero|winter night|freezer|icy)\b", re.IGNORECASE)
TEMPERATURE = re.compile(r"(-?\d+(?:\.\d+)?)\s*°\s*([CF])", re.IGNORECASE)
WARM_C, COLD_C = 15, 0  # a stated temperature at or above / at or below these


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


def changes_a_named_thing(request: str, description: str) -> bool:
    """True when the request lets time pass on a thing it names ("a snowman in a sunny garden
    after a week"): what to draw is that thing, changed, not some article search found."""
    thing = the_thing(description)
    return lets_time_pass(request) and thing != "subject" and word_share(thing, request) == 1.0


def physics_outcome(request: str) -> int | None:
    """The number of the outcome (1-based, as the model would answer) that common physics
    settles for the request, or None when the rules do not know its material or condition."""
    hot, cold = bool(HEAT.search(request)), bool(COLD.search(request))
    for value, unit in TEMPERATURE.findall(request):
        celsius = float(value) if unit.upper() == "C" else (float(value) - 32) * 5 / 9
        hot, cold = hot or celsius >= WARM_C, cold or celsius <= COLD_C
    text = request.lower()
    if "dry ice" in text:
        return OUTCOMES.index("giving off thick white fog that spills over the edge") + 1
    if re.search(r"\b(?:lava|magma)\b", text) and re.search(r"\b(?:sea|ocean|water)\b", text):
        return OUTCOMES.index("cooled into hard black rock amid hissing clouds of steam") + 1
    if MELTS.search(request) and hot and not cold:
        if HOT_SURFACE.search(request) and re.search(r"\bice\b", text):
            return OUTCOMES.index("evaporated completely, leaving the surface dry") + 1
        if re.search(r"\bsnow", text):
            return OUTCOMES.index("melted and slumped into slush and puddles of water") + 1
        return OUTCOMES.index("melted into a soft, glossy puddle of liquid") + 1
    if WATER.search(request) and hot and not cold:
        return OUTCOMES.index("evaporated completely, leaving the surface dry") + 1
    if WATER.search(request) and cold and not hot:
        return OUTCOMES.index("frozen solid, covered in frost and ice") + 1
    return None


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
    """'The bar of chocolate is melted into ...', or None when nothing changes or the model
    gives no valid number. The rules answer first; the model only where they do not know."""
    choice = physics_outcome(request)
    if choice is None:
        listing = "\n".join(f"{number}. {text}" for number, text in enumerate(OUTCOMES, start=1))
        message = f"Scene: {request}\n\nThe {thing} at the moment shown is:\n{listing}"
        choice = invoke_choice(chat_model, OutcomeReply, INSTRUCTIONS, message)
    if choice is None:
        return None
    logger.info("change of state for %r: %s", thing, OUTCOMES[choice - 1])
    return None if choice == 1 else f"The {thing} is {OUTCOMES[choice - 1]}."
