"""The interfaces of the backends a run talks to, one per kind (`tools/backends.py` builds them).

Search has its own, next to its providers: `tools/search/base.py:SearchProvider`. Chat models
(intent analysis, prompt synthesis, the judge's VLM) need none of ours: they are LangChain
`BaseChatModel`s (`ChatOpenAI` against any OpenAI-compatible endpoint, or a fake in tests).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol, runtime_checkable

from contextgen.graphs.state import Fact, ImageArtifact, Memory, PromptPackage, Verdict

GenerationMode = Literal["text2img", "edit"]
ProgressCallback = Callable[[int, int], None]


class MemoryBackend(Protocol):
    """Recalls a user's memories and keeps their runs and stated preferences.

    Implemented by `memory/store.py:MemoryStore` (Chroma) and `memory/in_memory.py:ListMemory`.
    """

    def recall(self, user_id: str, query: str, k: int = 5) -> list[Memory]: ...

    def remember_run(
        self,
        user_id: str,
        request: str,
        prompt: str,
        facts: Sequence[Fact] = (),
        accepted: bool = False,
        score: float | None = None,
        image_path: str | None = None,
        subject: str = "",
    ) -> str: ...

    def remember_preference(self, user_id: str, text: str) -> str: ...


class ImageGenerator(Protocol):
    """Renders a prompt to a PNG file; raises `GeneratorUnavailable` when it cannot.

    The caller picks the mode: `text2img`, or `edit` of `input_images` (the image to edit
    first, then references) with an edit model, which only a generator that `can_edit` has.
    `on_step(step, total)` reports denoising progress.
    """

    @property
    def can_edit(self) -> bool: ...

    def generate(
        self,
        prompt: str,
        negative_prompt: str,
        seed: int,
        out_path: str,
        round: int,
        on_step: ProgressCallback | None = None,
        mode: GenerationMode = "text2img",
        input_images: Sequence[str] = (),
    ) -> ImageArtifact: ...


@runtime_checkable
class BatchImageGenerator(ImageGenerator, Protocol):
    """An `ImageGenerator` that renders several candidates in one call, one per seed (diffusers'
    `num_images_per_prompt`, the images API's `n`). The generate node uses it when it asks for
    more than one candidate; otherwise it calls `generate` once per seed."""

    def generate_batch(
        self,
        prompt: str,
        negative_prompt: str,
        seeds: Sequence[int],
        out_paths: Sequence[str],
        round: int,
        on_step: ProgressCallback | None = None,
        mode: GenerationMode = "text2img",
        input_images: Sequence[str] = (),
    ) -> list[ImageArtifact]: ...


class ImageJudge(Protocol):
    """Looks at an image and returns the verdict for its round (`next_step` is the judge
    node's to set); raises `BackendUnavailable` or `StructuredOutputError` when it cannot.

    `references` are local reference images of the subject (from search or the user), shown
    beside the image.
    """

    def judge(
        self,
        request: str,
        package: PromptPackage,
        image: ImageArtifact,
        references: Sequence[str] = (),
    ) -> Verdict: ...
