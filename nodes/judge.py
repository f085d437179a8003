"""Let the vision-language judge look at this round's image (or each of its candidates, keeping
the best), beside the fetched reference images, and decide what the loop does next."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from langgraph.runtime import Runtime

from contextgen.graphs.context import Context
from contextgen.graphs.state import (
    AgentState,
    ImageArtifact,
    NextStep,
    PromptPackage,
    Verdict,
    current_round,
)
from contextgen.nodes.generate import fetched_reference_paths
from contextgen.tools.backend_protocols import ImageJudge
from contextgen.tools.backends import backends_for
from contextgen.tools.errors import BackendUnavailable
from contextgen.tools.structured_output import StructuredOutputError

logger = logging.getLogger(__name__)

JudgeFailure = BackendUnavailable | StructuredOutputError


def judge(state: AgentState, runtime: Runtime[Context]) -> dict:
    """Append this round's verdict with its `next_step`; without an image or a judge the verdict
    says 'unjudged' and the run finishes.

    When the round made several candidates, each is judged (in parallel) and the best-scored one
    (the first on a tie) becomes the round's image; with no judge, the first one does.
    """
    package = state["prompt_package"]
    round_number = current_round(state)
    candidates = [image for image in state.get("candidates", []) if image.round == round_number]
    images = candidates or [
        image for image in state.get("images", []) if image.round == round_number
    ]
    if not images:
        return {"verdicts": [unjudged(round_number, "no image was generated")]}
    first_kept: dict = {"images": [images[0]]} if candidates else {}
    backends = backends_for(runtime.context)
    vision_judge = backends.judge
    if vision_judge is None:
        return first_kept | {
            "verdicts": [unjudged(round_number, "no judge model is configured")],
            "notices": ["The image is unjudged: set CONTEXTGEN_JUDGE_MODEL to a VLM to judge it."],
        }
    references = fetched_reference_paths(package, state.get("references", []))
    several = f" ({len(images)} candidates)" if candidates else ""
    runtime.stream_writer({"node": "judge", "message": f"judging round {round_number}{several}"})
    results = judge_each(vision_judge, state["request"], package, images, references)
    pairs = list(zip(images, results, strict=True))
    judged = [(image, r) for image, r in pairs if isinstance(r, Verdict)]
    failures = [str(r) for r in results if not isinstance(r, Verdict)]
    if not judged:
        return first_kept | {
            "verdicts": [unjudged(round_number, "the judge could not answer")],
            "notices": [f"The image is unjudged: {failures[0]}"],
        }
    kept, verdict = max(judged, key=lambda pair: pair[1].score)
    generator = backends.generator
    editable = generator is not None and generator.can_edit
    step = next_step(verdict, runtime.context.max_rounds, editable)
    update: dict = {"verdicts": [verdict.model_copy(update={"next_step": step})]}
    if candidates:
        update["images"] = [kept]
        update["candidate_verdicts"] = [
            r if isinstance(r, Verdict) else unjudged_candidate(image, str(r))
            for image, r in pairs
        ]
    if failures:
        update["notices"] = [
            f"{len(failures)} of {len(images)} candidates are unjudged: {failures[0]}"
        ]
    return update


def judge_each(
    vision_judge: ImageJudge,
    request: str,
    package: PromptPackage,
    images: Sequence[ImageArtifact],
    references: Sequence[str],
) -> list[Verdict | JudgeFailure]:
    """The verdict on each image, in order, or the error the judge raised for it."""

    def one(image: ImageArtifact) -> Verdict | JudgeFailure:
        try:
            verdict = vision_judge.judge(request, package, image, references)
        except (BackendUnavailable, StructuredOutputError) as error:
            logger.warning("judge failed on %s: %s", image.path, error)
            return error
        return verdict.model_copy(update={"round": image.round, "candidate": image.candidate})

    if len(images) == 1:
        return [one(images[0])]
    with ThreadPoolExecutor(max_workers=len(images), thread_name_prefix="judge") as pool:
        return list(pool.map(one, images))


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


def unjudged_candidate(image: ImageArtifact, reason: str) -> Verdict:
    """The record of a candidate the judge could not score (another one was kept)."""
    return unjudged(image.round, reason).model_copy(update={"candidate": image.candidate})
