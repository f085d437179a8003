"""The image agent's state: what flows between nodes, and the small models it is made of.

Images never live here: an `ImageArtifact` points at a file in the run's output folder.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import cached_property
from typing import Annotated, Any, Literal, NotRequired

from langgraph.channels import LastValue
from pydantic import BaseModel, Field, TypeAdapter
from typing_extensions import TypedDict

# The longest request the agent reads: longer ones are refused by the CLI and cut (with a
# notice) by the graph (nodes/request_text.py), so a pasted document cannot overflow a small
# model's context.
MAX_REQUEST_CHARS = 2000

Route = Literal["direct", "reason", "search", "search_then_reason"]
ProblemKind = Literal["none", "knowledge", "prompt", "local_flaw"]
NextStep = Literal["finish", "research", "rewrite", "edit"]


class Intent(BaseModel):
    """What the request asks for, and what is missing to draw it."""

    subject: str = Field(description="The main thing to depict, in the user's words or clearer.")
    style: str = Field(default="", description="Visual style or medium, if stated or implied.")
    constraints: list[str] = Field(default_factory=list, description="Explicit requirements.")
    knowledge_gaps: list[str] = Field(
        default_factory=list, description="What must be known to draw it, phrased as questions."
    )
    candidate_names: list[str] = Field(
        default_factory=list,
        description="Guesses at what an unnamed subject is; hypotheses for search to check.",
    )
    route: Route = Field(
        default="direct",
        description="direct: nothing missing; reason: solvable by reasoning alone; "
        "search: needs outside facts; search_then_reason: needs facts, then reasoning on them.",
    )
    search_queries: list[str] = Field(default_factory=list, description="Queries for the gaps.")
    ambiguous: bool = Field(
        default=False, description="True only if the user must choose (search cannot settle it)."
    )
    clarifying_question: str = Field(default="", description="The question to ask, if ambiguous.")
    stated_preferences: list[str] = Field(
        default_factory=list,
        description="Lasting preferences the user states, e.g. 'I always want watercolor'.",
    )


class Evidence(BaseModel):
    """One piece of retrieved text, with where it came from. Untrusted data, never instructions."""

    id: str = Field(description="Short id used to cite it, e.g. 'E3'.")
    query: str
    title: str = ""
    content: str
    source: str = Field(description="URL, or 'corpus:<document id>'.")
    provider: str = Field(description="tavily, local_corpus, ...")
    score: float = 0.0
    image_urls: list[str] = Field(default_factory=list)


class Memory(BaseModel):
    """A recalled memory: a stated preference, a past run, or a remembered fact."""

    id: str
    kind: Literal["preference", "run", "fact"]
    text: str
    score: float = 0.0
    subject: str = Field(default="", description="A past run's resolved subject, if it had one.")


class Fact(BaseModel):
    """A statement used in the final prompt, with its provenance."""

    statement: str
    source: str = Field(description="URL, 'corpus:<id>', 'memory:<id>' or 'reasoning'.")


class PromptPackage(BaseModel):
    """The grounded prompt: useful on its own, with or without an image."""

    prompt: str
    negative_prompt: str = ""
    subject: str = Field(default="", description="The resolved subject's name, if any.")
    facts: list[Fact] = Field(default_factory=list)
    reference_images: list[str] = Field(default_factory=list)
    round: int = 1


class ImageArtifact(BaseModel):
    """A generated image on disk (never the pixels themselves)."""

    path: str
    sha256: str
    width: int
    height: int
    seed: int
    round: int
    prompt: str
    model: str
    edited_from: str | None = None
    candidate: int = Field(
        default=1, description="Which of its round's candidates it is (1 with one per round)."
    )


class ReferenceImageRecord(BaseModel):
    """A reference image as the run fetched it: stored in the run folder with its sha256, or
    rejected with the reason. Never the pixels."""

    source: str = Field(description="The URL or file it came from.")
    path: str = ""
    sha256: str = ""
    width: int = 0
    height: int = 0
    rejected: str = Field(default="", description="Why it is not used; empty when stored.")


class Verdict(BaseModel):
    """The judge's view of one round's image."""

    round: int
    score: float = Field(ge=0.0, le=1.0)
    accepted: bool
    issues: list[str] = Field(default_factory=list)
    problem: ProblemKind = "none"
    missing_knowledge: list[str] = Field(
        default_factory=list, description="Search queries, when the problem is knowledge."
    )
    judged: bool = Field(default=True, description="False when no judge could look at the image.")
    next_step: NextStep = Field(
        default="finish",
        description="What the loop does next (set by the judge node): finish, research the "
        "missing knowledge, rewrite the prompt, or edit the image.",
    )
    candidate: int = Field(
        default=1, description="Which of the round's candidates this verdict is about."
    )


class ValidatedValue(LastValue):
    """A last-value channel that turns JSON into its declared model.

    State edited in LangGraph Studio, or sent with the SDK's `update_state`, arrives as plain
    JSON; nodes expect `Intent`, `PromptPackage`, ... objects.
    """

    @cached_property
    def _adapter(self) -> TypeAdapter:
        return TypeAdapter(self.typ)

    def update(self, values: Sequence[Any]) -> bool:
        return super().update([self._adapter.validate_python(value) for value in values])


class InputState(TypedDict, total=False):
    """What a caller gives: the request, and optionally who asks and reference images.

    The first node reads the request (nodes/request_text.py): missing, not text, blank or only
    punctuation is an error that says what to send; over `MAX_REQUEST_CHARS` it is cut, and
    symbols only (emoji) are read as their names, each with a notice.
    """

    request: str
    user_id: str
    reference_images: list[str]


class OutputState(TypedDict, total=False):
    """What a caller gets back."""

    prompt_package: PromptPackage | None
    final_image: ImageArtifact | None
    accepted: bool
    verdicts: list[Verdict]
    notices: list[str]


class AgentState(InputState, OutputState, total=False):
    """The full state passed between nodes."""

    intent: Annotated[Intent | None, ValidatedValue]
    prompt_package: Annotated[PromptPackage | None, ValidatedValue]
    clarification: str
    queries: list[str]
    evidence: Annotated[list[Evidence], operator.add]
    memories: list[Memory]
    images: Annotated[list[ImageArtifact], operator.add]
    verdicts: Annotated[list[Verdict], operator.add]
    notices: Annotated[list[str], operator.add]
    # Sources whose instruction-like text was removed (tools/untrusted_text.py): a run that
    # met one is not stored in memory, so nothing it carried can steer later runs.
    suspicious_sources: Annotated[list[str], operator.add]
    references: Annotated[list[ReferenceImageRecord], operator.add]
    candidates: Annotated[list[ImageArtifact], operator.add]
    candidate_verdicts: Annotated[list[Verdict], operator.add]


def current_round(state: AgentState) -> int:
    """The round being worked on: one past the rounds already judged."""
    return len(state.get("verdicts", [])) + 1


class SearchTask(TypedDict):
    """The payload `Send` gives one parallel `search` node."""

    query: str
    round: int
    min_results: NotRequired[int]  # the request's own search: its hits are subject candidates
