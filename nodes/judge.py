"""Let the vision-language judge look at this round's image."""

from __future__ import annotations

import logging

from langgraph.runtime import Runtime

from contextgen.graphs.context import Context
from contextgen.graphs.state import AgentState, Verdict
from contextgen.tools.backends import backends_for
from contextgen.tools.errors import BackendUnavailable
from contextgen.tools.structured_output import StructuredOutputError

logger = logging.getLogger(__name__)


def judge(state: AgentState, runtime: Runtime[Context]) -> dict:
    """Append this round's verdict; without an image or a judge the verdict says 'unjudged'."""
    package = state["prompt_package"]
    round_number = len(state.get("verdicts", [])) + 1
    images = [image for image in state.get("images", []) if image.round == round_number]
    if not images:
        return {"verdicts": [unjudged(round_number, "no image was generated")]}
    vision_judge = backends_for(runtime.context).judge
    if vision_judge is None:
        return {
            "verdicts": [unjudged(round_number, "no judge model is configured")],
            "notices": ["The image is unjudged: set CONTEXTGEN_JUDGE_MODEL to a VLM to judge it."],
        }
    runtime.stream_writer({"node": "judge", "message": f"judging round {round_number}"})
    try:
        verdict = vision_judge.judge(state["request"], package, images[-1])
    except (BackendUnavailable, StructuredOutputError) as error:
        logger.warning("judge failed: %s", error)
        return {
            "verdicts": [unjudged(round_number, "the judge could not answer")],
            "notices": [f"The image is unjudged: {error}"],
        }
    return {"verdicts": [verdict]}


def unjudged(round_number: int, reason: str) -> Verdict:
    """A verdict that ends the loop: nothing was judged."""
    return Verdict(round=round_number, score=0.0, accepted=False, issues=[reason], judged=False)
