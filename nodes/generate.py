"""Generate this round's image (or edit the last one) with the configured generator."""

from __future__ import annotations

import logging
from pathlib import Path

from langgraph.runtime import Runtime

from contextgen.graphs.context import Context
from contextgen.graphs.state import AgentState, current_round
from contextgen.tools.backend_protocols import GenerationMode, ImageGenerator
from contextgen.tools.backends import backends_for
from contextgen.tools.errors import GeneratorUnavailable

logger = logging.getLogger(__name__)

NO_GENERATOR_HINT = (
    "No image generator is configured: set CONTEXTGEN_GENERATOR to a diffusers model id "
    "(with hub access) or a local diffusers folder to get images too."
)


def generate(state: AgentState, runtime: Runtime[Context]) -> dict:
    """Render the prompt package; an unavailable generator becomes a notice, not a failure."""
    context = runtime.context
    package = state["prompt_package"]
    generator = backends_for(context).generator
    if generator is None:
        return {"notices": [NO_GENERATOR_HINT]}
    round_number = current_round(state)
    mode, input_images = generation_mode(state, generator)
    out_path = unused_path(Path(context.output_dir), f"round-{round_number}")
    action = "editing" if mode == "edit" else "generating"

    def on_step(step: int, total: int) -> None:
        runtime.stream_writer(
            {
                "node": "generate",
                "message": f"{action} round {round_number}",
                "step": step,
                "total": total,
            }
        )

    try:
        artifact = generator.generate(
            prompt=package.prompt,
            negative_prompt=package.negative_prompt,
            seed=context.seed + round_number - 1,
            out_path=str(out_path),
            round=round_number,
            on_step=on_step,
            mode=mode,
            input_images=input_images,
        )
    except GeneratorUnavailable as error:
        logger.info("generator unavailable: %s", error)
        return {"notices": [f"No image: {error}"]}
    return {"images": [artifact]}


def generation_mode(
    state: AgentState, generator: ImageGenerator
) -> tuple[GenerationMode, list[str]]:
    """Edit the last image (with the references) when the judge asked for an edit; condition on
    the references alone when there are some and the generator can edit; else text-to-image."""
    references = state["prompt_package"].reference_images
    verdicts, images = state.get("verdicts", []), state.get("images", [])
    if verdicts and verdicts[-1].next_step == "edit" and images:
        return "edit", [images[-1].path, *references]
    if references and generator.can_edit:
        return "edit", list(references)
    if references:
        logger.info("No edit model configured: reference images are not used")
    return "text2img", []


def unused_path(folder: Path, stem: str) -> Path:
    """`folder/stem.png`, or `stem-2.png`, ... so an earlier image is never overwritten."""
    folder.mkdir(parents=True, exist_ok=True)
    candidate, number = folder / f"{stem}.png", 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stem}-{number}.png"
    return candidate
