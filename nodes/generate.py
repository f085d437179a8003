"""Generate this round's images (or edit the last one) with the configured generator.

First the reference images the prompt package names (the user's, then those search found) are
fetched into the run folder, each once per run and only when something uses them: the edit
model, or the judge. State keeps their records (source, path, sha256), never pixels; a reference
that fails becomes a notice. With `candidates` > 1 the round makes that many images, one seed
each (in one batched call where the generator can), and the judge keeps the best.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from langgraph.runtime import Runtime

from contextgen.graphs.context import Context
from contextgen.graphs.state import (
    AgentState,
    ImageArtifact,
    PromptPackage,
    ReferenceImageRecord,
    current_round,
)
from contextgen.tools.backend_protocols import (
    BatchImageGenerator,
    GenerationMode,
    ImageGenerator,
    ProgressCallback,
)
from contextgen.tools.backends import backends_for
from contextgen.tools.errors import GeneratorUnavailable
from contextgen.tools.reference_images import ReferenceRejected, fetch_reference

logger = logging.getLogger(__name__)

NO_GENERATOR_HINT = (
    "No image generator is configured: set CONTEXTGEN_GENERATOR to a diffusers model id "
    "(with hub access) or a local diffusers folder to get images too."
)
MAX_PARALLEL_FETCHES = 3


def generate(state: AgentState, runtime: Runtime[Context]) -> dict:
    """Render the prompt package; an unavailable generator becomes a notice, not a failure."""
    context = runtime.context
    package = state["prompt_package"]
    backends = backends_for(context)
    generator = backends.generator
    if generator is None:
        return {"notices": [NO_GENERATOR_HINT]}
    folder = Path(context.output_dir)
    update: dict = {}
    if generator.can_edit or backends.judge is not None:
        fetched = fetch_new_references(state, folder, runtime)
        if fetched:
            update["references"] = fetched
            update["notices"] = [
                f"Reference image not used: {record.rejected}"
                for record in fetched
                if record.rejected
            ]
    records = [*state.get("references", []), *update.get("references", [])]
    round_number = current_round(state)
    mode, input_images = generation_mode(
        state, generator, fetched_reference_paths(package, records)
    )
    count = context.candidates
    seeds = [context.seed + (round_number - 1) * count + index for index in range(count)]
    stem = f"round-{round_number}"
    out_paths = [
        str(unused_path(folder, stem if count == 1 else f"{stem}-candidate-{number}"))
        for number in range(1, count + 1)
    ]
    action = "editing" if mode == "edit" else "generating"

    def progress(label: str) -> ProgressCallback:
        def on_step(step: int, total: int) -> None:
            runtime.stream_writer(
                {"node": "generate", "message": f"{action} {label}", "step": step, "total": total}
            )

        return on_step

    try:
        artifacts = render_candidates(
            generator, package, seeds, out_paths, round_number, mode, input_images, progress
        )
    except GeneratorUnavailable as error:
        logger.info("generator unavailable: %s", error)
        return update | {"notices": [*update.get("notices", []), f"No image: {error}"]}
    if count == 1:
        return update | {"images": artifacts}
    if len(artifacts) < count:
        made = f"The generator made {len(artifacts)} of {count} candidates in round {round_number}."
        update["notices"] = [*update.get("notices", []), made]
    return update | {"candidates": artifacts}


def render_candidates(
    generator: ImageGenerator,
    package: PromptPackage,
    seeds: Sequence[int],
    out_paths: Sequence[str],
    round_number: int,
    mode: GenerationMode,
    input_images: Sequence[str],
    progress: Callable[[str], ProgressCallback],
) -> list[ImageArtifact]:
    """One image per seed, numbered as the round's candidates 1..n: in one call when the
    generator batches, else one call per seed."""
    count = len(seeds)
    if count > 1 and isinstance(generator, BatchImageGenerator):
        made = generator.generate_batch(
            prompt=package.prompt,
            negative_prompt=package.negative_prompt,
            seeds=seeds,
            out_paths=out_paths,
            round=round_number,
            on_step=progress(f"round {round_number} ({count} candidates)"),
            mode=mode,
            input_images=input_images,
        )
    else:
        made = [
            generator.generate(
                prompt=package.prompt,
                negative_prompt=package.negative_prompt,
                seed=seed,
                out_path=out_path,
                round=round_number,
                on_step=progress(
                    f"round {round_number}"
                    + (f", candidate {number} of {count}" if count > 1 else "")
                ),
                mode=mode,
                input_images=input_images,
            )
            for number, (seed, out_path) in enumerate(zip(seeds, out_paths, strict=True), 1)
        ]
    return [image.model_copy(update={"candidate": number}) for number, image in enumerate(made, 1)]


def generation_mode(
    state: AgentState, generator: ImageGenerator, references: Sequence[str]
) -> tuple[GenerationMode, list[str]]:
    """Edit the last image (with the references) when the judge asked for an edit; condition on
    the references alone when there are some and the generator can edit; else text-to-image.

    `references` are the local files of the fetched reference images.
    """
    verdicts, images = state.get("verdicts", []), state.get("images", [])
    if verdicts and verdicts[-1].next_step == "edit" and images:
        return "edit", [images[-1].path, *references]
    if references and generator.can_edit:
        return "edit", list(references)
    if references:
        logger.info("No edit model configured: reference images are not used")
    return "text2img", []


def fetch_new_references(
    state: AgentState, folder: Path, runtime: Runtime[Context]
) -> list[ReferenceImageRecord]:
    """Fetch the package's reference images not fetched earlier in the run, in parallel."""
    done = {record.source for record in state.get("references", [])}
    sources = [s for s in state["prompt_package"].reference_images if s not in done]
    if not sources:
        return []
    runtime.stream_writer(
        {"node": "generate", "message": f"fetching {len(sources)} reference image(s)"}
    )
    given = set(state.get("reference_images", []))
    with ThreadPoolExecutor(max_workers=min(len(sources), MAX_PARALLEL_FETCHES)) as pool:
        return list(pool.map(lambda s: fetch_record(s, folder, local_allowed=s in given), sources))


def fetch_record(source: str, folder: Path, local_allowed: bool) -> ReferenceImageRecord:
    """One reference image stored in `folder`, or the reason it was not. Only the user's own
    references may be local files; those from search must be http(s) URLs."""
    if "://" not in source and not local_allowed:
        return ReferenceImageRecord(source=source, rejected=f"{source}: not an http(s) URL")
    try:
        image = fetch_reference(source, folder)
    except ReferenceRejected as error:
        logger.info("reference rejected: %s", error)
        return ReferenceImageRecord(source=source, rejected=str(error))
    return ReferenceImageRecord(
        source=source,
        path=image.path,
        sha256=image.sha256,
        width=image.width,
        height=image.height,
    )


def fetched_reference_paths(
    package: PromptPackage, records: Sequence[ReferenceImageRecord]
) -> list[str]:
    """The local files of the package's reference images that were stored, in its order."""
    stored = {record.source: record.path for record in records if record.path}
    return [stored[source] for source in package.reference_images if source in stored]


def unused_path(folder: Path, stem: str) -> Path:
    """`folder/stem.png`, or `stem-2.png`, ... so an earlier image is never overwritten."""
    folder.mkdir(parents=True, exist_ok=True)
    candidate, number = folder / f"{stem}.png", 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stem}-{number}.png"
    return candidate
