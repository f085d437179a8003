"""Image scores with a VLM: the WISE rubric and WISE-Verified's binary verdict.

WISE (Niu et al., 2025) rates consistency, realism and aesthetics 0-2 each and combines them as
WiScore = (0.7 C + 0.2 R + 0.1 A) / 2, in 0..1. The overall WISE figure weights its categories
by their prompt counts: cultural 400, time 167, space 133, biology, physics and chemistry 100
each. WISE-Verified asks a yes/no question: does the image show what the explanation says?
"""

from __future__ import annotations

from typing import Annotated

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field, StringConstraints

from contextgen.evaluation.items import AnswerKey, EvalItem

WISE_GROUP_WEIGHTS = {
    "cultural": 0.400,
    "time": 0.167,
    "space": 0.133,
    "biology": 0.100,
    "physics": 0.100,
    "chemistry": 0.100,
}

RUBRIC_INSTRUCTIONS = """You grade an image generated for a request that needs world knowledge.
The explanation says what a correct image must show. Score each 0, 1 or 2:
- consistency: 2 = it shows exactly what the explanation describes; 1 = partly (right idea,
  wrong or missing key details); 0 = wrong or unrelated content.
- realism: 2 = physically and visually plausible; 1 = minor implausibilities; 0 = implausible.
- aesthetics: 2 = well composed and pleasing; 1 = acceptable; 0 = poor.
- verified: true only if the image clearly shows the content the explanation requires.
Answer in JSON with a one-sentence "reason" first."""


class RubricReply(BaseModel):
    """What the VLM returns for one image."""

    reason: Annotated[str, StringConstraints(max_length=300)]
    consistency: int = Field(ge=0, le=2)
    realism: int = Field(ge=0, le=2)
    aesthetics: int = Field(ge=0, le=2)
    verified: bool


def wiscore(consistency: float, realism: float, aesthetics: float) -> float:
    """WISE's WiScore in 0..1 from the three 0-2 ratings."""
    return round((0.7 * consistency + 0.2 * realism + 0.1 * aesthetics) / 2, 4)


def wise_group(item: EvalItem) -> str | None:
    """The WISE category an item counts under for the weighted overall, None if not WISE."""
    text = f"{item.category} {item.subcategory}".casefold()
    for group in ("cultural", "biology", "physics", "chemistry"):
        if group in text:
            return group
    if "time" in item.subcategory.casefold() or "temporal" in item.subcategory.casefold():
        return "time"
    if "space" in item.subcategory.casefold() or "spatial" in item.subcategory.casefold():
        return "space"
    if "spatio" in text and item.id.isdigit():  # WISE numbers time 401-567, space 568-700
        return "time" if int(item.id) <= 567 else "space"
    return None


def weighted_overall(scores_by_group: dict[str, float]) -> float | None:
    """WISE's overall figure over the groups present (weights renormalised), None if none."""
    present = {g: s for g, s in scores_by_group.items() if g in WISE_GROUP_WEIGHTS}
    if not present:
        return None
    total = sum(WISE_GROUP_WEIGHTS[g] for g in present)
    return round(sum(WISE_GROUP_WEIGHTS[g] * s for g, s in present.items()) / total, 4)


class ImageScorer:
    """Scores one image against an item's answer key with a VLM."""

    def __init__(self, model: BaseChatModel):
        self.model = model

    def score(self, request: str, answer: AnswerKey, image_path: str) -> dict:
        from contextgen.tools.structured_output import invoke_structured
        from contextgen.tools.vision_judge import image_data_url

        content = [
            {"type": "text", "text": f"Request: {request}\nExplanation: {answer.expected}"},
            {"type": "image_url", "image_url": {"url": image_data_url(image_path)}},
        ]
        reply = invoke_structured(
            self.model,
            RubricReply,
            [SystemMessage(content=RUBRIC_INSTRUCTIONS), HumanMessage(content=content)],
        )
        return {
            "consistency": reply.consistency,
            "realism": reply.realism,
            "aesthetics": reply.aesthetics,
            "wiscore": wiscore(reply.consistency, reply.realism, reply.aesthetics),
            "verified": reply.verified,
            "reason": reply.reason,
        }
