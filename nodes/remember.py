"""Close the run: pick the final image and store the run and stated preferences in memory.

A run that met instruction-like text in what it retrieved (`suspicious_sources`) is not stored:
its prompt was written next to that text, and a stored run can steer later ones.
"""

from __future__ import annotations

import logging

from langgraph.runtime import Runtime

from contextgen.graphs.context import Context
from contextgen.graphs.state import AgentState, ImageArtifact, Verdict
from contextgen.tools.backends import backends_for

logger = logging.getLogger(__name__)


def remember(state: AgentState, runtime: Runtime[Context]) -> dict:
    """Return the final outputs; a memory failure is a notice and loses nothing else."""
    verdicts = state.get("verdicts", [])
    final_image = best_image(state.get("images", []), verdicts)
    accepted = bool(verdicts and verdicts[-1].accepted)
    update: dict = {"final_image": final_image, "accepted": accepted}
    user_id = state.get("user_id") or runtime.context.user_id
    package = state["prompt_package"]
    runtime.stream_writer({"node": "remember", "message": f"remembering the run for {user_id}"})
    try:
        memory = backends_for(runtime.context).memory
        for preference in state["intent"].stated_preferences:  # the user's own words
            memory.remember_preference(user_id, preference)
        suspicious = list(dict.fromkeys(state.get("suspicious_sources", [])))
        if suspicious:
            update["notices"] = [
                "The run was not stored in memory: instruction-like text was removed from "
                f"{', '.join(suspicious[:3])}, and nothing it touched may steer later runs."
            ]
            return update
        memory.remember_run(
            user_id,
            request=state["request"],
            prompt=package.prompt,
            facts=package.facts,
            accepted=accepted,
            score=verdicts[-1].score if verdicts and verdicts[-1].judged else None,
            image_path=final_image.path if final_image else None,
            subject=package.subject,
        )
    except Exception as error:  # the run's results must survive a broken store
        logger.warning("remember failed: %s", error)
        update["notices"] = [f"The run was not stored in memory ({error})."]
    return update


def best_image(images: list[ImageArtifact], verdicts: list[Verdict]) -> ImageArtifact | None:
    """The image of the best-scored round; the latest one when nothing was judged."""
    if not images:
        return None
    scores = {verdict.round: verdict.score for verdict in verdicts if verdict.judged}
    return max(reversed(images), key=lambda image: scores.get(image.round, -1.0))
