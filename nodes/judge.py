"""Let the vision-language judge look at this round's image, and decide what the loop does next."""

from __future__ import annotations

import logging

from langgraph.runtime import Runtime

from contextgen.graphs.context import Context
from contextgen.graphs.state import AgentState, NextStep, Verdict, current_round
from contextgen.tools.backends import backends_for
from contextgen.tools.errors import BackendUnavailable
from contextgen.tools.structured_output import StructuredOutputError

logger = logging.getLogger(__name__)


def judge(state: AgentState, runtime: Runtime[Context]) -> dict:
    """Append this round's verdict with its `next_step`; without an image or a judge the verdict
    says 'unjudged' and the run finishes."""
    package = state["prompt_package"]
    round_number = current_round(state)
    images = [image for image in state.get("images", []) if image.round == round_number]
    if not images:
        return {"verdicts": [unjudged(round_number, "no image was generated")]}
    backends = backends_for(runtime.context)
    vision_judge = backends.judge
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
    generator = backends.generator
    editable = generator is not None and generator.can_edit
    step = next_step(verdict, runtime.context.max_rounds, editable)
    return {"verdicts": [verdict.model_copy(update={"next_step": step})]}


def next_step(verdict: Verdict, max_rounds: int, can_edit: bool) -> NextStep:
    """Finish (accepted, unjudged, or the round limit reached), research the missing knowledge,
    edit a local flaw when the generator can edit, or else rewrite the prompt."""
    if verdict.accepted or not verdict.judged or verdict.round >= max_rounds:
        return "finish"
    if verdict.problem == "knowledge" and verdict.missing_knowledge:
        return "research"
    if verdict.problem == "local_flaw" and can_edit:
        return "edit"
    return "rewrite"


def unjudged(round_number: int, reason: str) -> Verdict:
    """A verdict that ends the loop: nothing was judged."""
    return Verdict(
        round=round_number, score=0.0, accepted=False, issues=[reason], judged=False,
        next_step="finish",
    )
