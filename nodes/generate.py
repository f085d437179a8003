"""Generate this round's image (or edit the last one) with the configured diffusers pipeline."""

from __future__ import annotations

import logging
from pathlib import Path

from langgraph.runtime import Runtime

from contextgen.graphs.context import Context
from contextgen.graphs.state import AgentState
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
    round_number = len(state.get("verdicts", [])) + 1
    images = state.get("images", [])
    edit_source = images[-1].path if images and wants_edit(state, context) else None
    out_path = unused_path(Path(context.output_dir), f"round-{round_number}")
    mode = "editing" if edit_source else "generating"

    def on_step(step: int, total: int) -> None:
        runtime.stream_writer(
            {
                "node": "generate",
                "message": f"{mode} round {round_number}",
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
            init_image=edit_source,
            reference_images=package.reference_images or None,
        )
    except GeneratorUnavailable as error:
        logger.info("generator unavailable: %s", error)
        return {"notices": [f"No image: {error}"]}
    return {"images": [artifact]}


def wants_edit(state: AgentState, context: Context) -> bool:
    """True when the judge found a local flaw and an edit model can fix it."""
    verdicts = state.get("verdicts", [])
    return bool(context.edit_model and verdicts and verdicts[-1].problem == "local_flaw")


def unused_path(folder: Path, stem: str) -> Path:
    """`folder/stem.png`, or `stem-2.png`, ... so an earlier image is never overwritten."""
    folder.mkdir(parents=True, exist_ok=True)
    candidate, number = folder / f"{stem}.png", 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stem}-{number}.png"
    return candidate
