"""The record of a run, built once from its final state: `RunSummary`.

Everything that shows a run reads this one object: run.json and report.html
(`write_run_files`), the summary `generate` and `runs replay` print (`RunSummary.text`),
`runs show`, and eval's results.jsonl. It holds no secrets: settings are the `Context`'s
fields, and API keys are never fields.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field

from contextgen.graphs.context import Context
from contextgen.graphs.state import (
    Fact,
    ImageArtifact,
    Intent,
    Memory,
    PromptPackage,
    ReferenceImageRecord,
    Verdict,
)
from contextgen.runner import RunOutcome

RUN_FILE = "run.json"
# Checkpoint metadata key naming the folder a thread's run record lives in, so a resumed or
# replayed run keeps writing to its own folder.
RUN_FOLDER_KEY = "contextgen_run_folder"
EXCERPT_CHARS = 300

Status = Literal["finished", "waiting_for_user", "incomplete"]


class EvidenceExcerpt(BaseModel):
    """One piece of evidence as recorded: where it came from and the start of its text."""

    id: str
    query: str
    title: str = ""
    source: str
    provider: str
    score: float = 0.0
    image_urls: list[str] = Field(default_factory=list)
    excerpt: str = ""


class CandidateRecord(BaseModel):
    """One of a round's candidate images and the judge's verdict on it (None: not judged)."""

    image: ImageArtifact
    verdict: Verdict | None = None


class RoundRecord(BaseModel):
    """One generate-and-judge round: its prompt, image and verdict (each may be missing), and
    with several candidates per round all of them (`image` is the one kept)."""

    round: int
    prompt: str | None = None
    image: ImageArtifact | None = None
    verdict: Verdict | None = None
    candidates: list[CandidateRecord] = Field(default_factory=list)


class RunSummary(BaseModel):
    """One run (all invocations of one thread written to one folder), as everything reads it."""

    request: str | None = None
    user_id: str
    thread_id: str
    finished_at: str
    status: Status
    accepted: bool = False
    intent: Intent | None = None
    queries: list[str] = Field(default_factory=list)
    evidence: list[EvidenceExcerpt] = Field(default_factory=list)
    memories_used: list[Memory] = Field(default_factory=list)
    rounds: list[RoundRecord] = Field(default_factory=list)
    final_prompt: PromptPackage | None = None
    final_image: ImageArtifact | None = None
    references: list[ReferenceImageRecord] = Field(default_factory=list)
    notices: list[str] = Field(default_factory=list)
    path: list[str] = Field(default_factory=list)
    node_timings: list[dict[str, Any]] = Field(default_factory=list)
    wall_seconds: float = 0.0
    llm: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    replay: dict[str, Any] | None = None

    @classmethod
    def from_outcome(
        cls, outcome: RunOutcome, context: Context, thread_id: str, **extra: Any
    ) -> RunSummary:
        """Build the summary of one invocation from its final state and measurements."""
        state = outcome.state
        images = {image.round: image for image in state.get("images", [])}
        verdicts = {verdict.round: verdict for verdict in state.get("verdicts", [])}
        final = state.get("prompt_package")
        candidate_verdicts = {
            (verdict.round, verdict.candidate): verdict
            for verdict in state.get("candidate_verdicts", [])
        }
        candidates: dict[int, list[CandidateRecord]] = {}
        for image in state.get("candidates", []):
            candidates.setdefault(image.round, []).append(
                CandidateRecord(
                    image=image, verdict=candidate_verdicts.get((image.round, image.candidate))
                )
            )
        prompts = {number: image.prompt for number, image in images.items()}
        prompts |= {number: items[0].image.prompt for number, items in candidates.items()}
        if final:
            prompts.setdefault(final.round, final.prompt)
        intent = state.get("intent")
        evidence = state.get("evidence", [])
        return cls(
            request=state.get("request"),
            user_id=state.get("user_id") or context.user_id,
            thread_id=thread_id,
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            status=_status(outcome),
            accepted=state.get("accepted", False),
            intent=intent,
            queries=sorted({item.query for item in evidence})
            or (intent.search_queries if intent else []),
            evidence=[
                EvidenceExcerpt(
                    **item.model_dump(exclude={"content"}), excerpt=item.content[:EXCERPT_CHARS]
                )
                for item in evidence
            ],
            memories_used=state.get("memories", []),
            rounds=[
                RoundRecord(
                    round=number,
                    prompt=prompts.get(number),
                    image=images.get(number),
                    verdict=verdicts.get(number),
                    candidates=candidates.get(number, []),
                )
                for number in sorted(set(prompts) | set(verdicts))
            ],
            final_prompt=final,
            final_image=state.get("final_image"),
            references=state.get("references", []),
            notices=list(dict.fromkeys(state.get("notices", []))),
            path=outcome.path,
            node_timings=outcome.node_timings,
            wall_seconds=outcome.wall_seconds,
            llm={"total": outcome.llm_usage.totals(), "per_node": dict(outcome.llm_usage.per_node)},
            settings={name: without_credentials(value) for name, value in asdict(context).items()},
            **extra,
        )

    # -- what readers ask of a run ---------------------------------------------------------

    @property
    def prompt(self) -> str | None:
        """The final prompt, or None when no prompt was written."""
        return self.final_prompt.prompt if self.final_prompt else None

    @property
    def facts(self) -> list[Fact]:
        """The final prompt's facts with their sources."""
        return self.final_prompt.facts if self.final_prompt else []

    @property
    def verdicts(self) -> list[Verdict]:
        """Every round's verdict, in round order."""
        return [item.verdict for item in self.rounds if item.verdict is not None]

    @property
    def images(self) -> list[ImageArtifact]:
        """Every round's image, in round order."""
        return [item.image for item in self.rounds if item.image is not None]

    @property
    def seconds_per_node(self) -> dict[str, float]:
        """Seconds spent in each node, summed over its runs."""
        totals: dict[str, float] = {}
        for timing in self.node_timings:
            totals[timing["node"]] = round(totals.get(timing["node"], 0.0) + timing["seconds"], 4)
        return totals

    @property
    def cost(self) -> dict[str, Any]:
        """What the images cost: how many were generated and judged, and the seconds spent in
        the generate and judge nodes."""
        seconds = self.seconds_per_node
        generated = sum(len(item.candidates) or int(item.image is not None) for item in self.rounds)
        judged = sum(
            sum(1 for c in item.candidates if c.verdict and c.verdict.judged)
            if item.candidates
            else int(item.verdict is not None and item.verdict.judged)
            for item in self.rounds
        )
        return {
            "images_generated": generated,
            "images_judged": judged,
            "generate_seconds": seconds.get("generate", 0.0),
            "judge_seconds": seconds.get("judge", 0.0),
        }

    def to_record(self) -> dict[str, Any]:
        """run.json's content (JSON types only)."""
        return self.model_dump(mode="json") | {
            "seconds_per_node": self.seconds_per_node,
            "cost": self.cost,
        }

    def merged_with(self, earlier: dict[str, Any]) -> RunSummary:
        """This invocation continued from an earlier one of the same thread (its run.json):
        the path, node timings, wall time and LLM totals then cover the whole run."""
        if earlier.get("thread_id") != self.thread_id:
            return self
        earlier_total = (earlier.get("llm") or {}).get("total") or {}
        total = dict(self.llm.get("total") or {})
        for key in ("calls", "input_tokens", "output_tokens", "seconds"):
            total[key] = total.get(key, 0) + earlier_total.get(key, 0)
        total["output_tokens_per_second"] = (
            round(total["output_tokens"] / total["seconds"], 2) if total.get("seconds") else 0.0
        )
        return self.model_copy(
            update={
                "path": list(earlier.get("path", [])) + self.path,
                "node_timings": list(earlier.get("node_timings", [])) + self.node_timings,
                "wall_seconds": round(earlier.get("wall_seconds", 0) + self.wall_seconds, 3),
                "llm": {**self.llm, "total": total},
            }
        )

    def text(self, out_dir: Path | None = None) -> str:
        """The summary printed at the end of a run: prompt, facts, verdicts, notices, and
        where run.json is when `out_dir` is given."""
        package = self.final_prompt
        lines = ["", "Prompt:", "  " + (package.prompt if package else "(none)")]
        if package and package.negative_prompt:
            lines += ["Negative prompt:", "  " + package.negative_prompt]
        if package and package.facts:
            lines.append("Facts:")
            lines += [f"  - {fact.statement}  [{fact.source}]" for fact in package.facts]
        for verdict in self.verdicts:
            if verdict.judged:
                issues = f" ({'; '.join(verdict.issues)})" if verdict.issues else ""
                accepted = "accepted" if verdict.accepted else "not accepted"
                score = f"score {verdict.score:.2f}"
                lines.append(f"Round {verdict.round}: {score}, {accepted}{issues}")
        lines += [f"Note: {notice}" for notice in self.notices]
        lines.append(f"Image: {self.final_image.path}" if self.final_image else "Image: none")
        if out_dir is not None:
            lines.append(f"Run record: {out_dir / RUN_FILE}  ({self.wall_seconds:.1f}s)")
        return "\n".join(lines)


def write_run_files(folder: Path, summary: RunSummary) -> RunSummary:
    """Write run.json and report.html into `folder`, merged with an earlier invocation of the
    same thread recorded there. Returns the summary as written."""
    from contextgen.report_html import write_report

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RUN_FILE
    if path.exists():
        try:
            summary = summary.merged_with(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError):  # a torn file: this one replaces it
            pass
    record = summary.to_record()
    path.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    write_report(folder, record)
    return summary


def without_credentials(value: Any) -> Any:
    """A setting as it may be recorded: a URL loses its user and password
    (postgresql://user:secret@host/db -> postgresql://host/db)."""
    if not isinstance(value, str) or "@" not in value or "://" not in value:
        return value
    parts = urlsplit(value)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _status(outcome: RunOutcome) -> Status:
    if outcome.interrupt:
        return "waiting_for_user"
    finished = outcome.state.get("prompt_package") and "accepted" in outcome.state
    return "finished" if finished else "incomplete"
