"""Run benchmark items through the agent (and the bare baseline), score them, append results.

`results.jsonl` gets one line per item, arm, repeat and candidate count as soon as it is
scored, so an interrupted evaluation resumes where it stopped: finished (id, arm, repeat,
candidates) runs are skipped on a rerun, failed ones are tried again. The agent sees only the
item's request; the answer key goes to the judges alone.

Each agent run is a thread of one checkpointed graph (SQLite in the output folder, PostgreSQL
when `CONTEXTGEN_DATABASE_URL` is set), as in `contextgen bench concurrency`: workers share the
graph, every run has its own thread id (in its result line), and `contextgen runs show` reads it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contextgen.evaluation.closure import ClosureJudge, keyword_hit, sourced_visual_facts
from contextgen.evaluation.image_score import ImageScorer
from contextgen.evaluation.items import EvalItem
from contextgen.graphs.context import Context

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
MAX_REPEATS = 10


@dataclass
class EvalOptions:
    """What to run: which arms, how many items, which categories, how many at once, and how
    many times each item runs (`repeats`, to see how stable the verdicts are)."""

    baseline: bool = False
    limit: int | None = None
    categories: list[str] = field(default_factory=list)
    workers: int = 1
    use_memory: bool = False
    repeats: int = 1
    candidates: list[int] = field(default_factory=list)  # images per round; empty: the context's


def select_items(items: list[EvalItem], options: EvalOptions) -> list[EvalItem]:
    """Filter by category (or subcategory, case-insensitive), then keep the first `limit`."""
    if options.categories:
        wanted = {c.strip().casefold() for c in options.categories if c.strip()}
        items = [i for i in items
                 if i.category.casefold() in wanted or i.subcategory.casefold() in wanted]
    return items[: options.limit] if options.limit else items


def read_results(path: Path) -> list[dict[str, Any]]:
    """The latest line for each (id, arm, repeat, candidates) in a results file (later lines
    win); a line without `repeat` or `candidates` (files written before they existed) is repeat 1
    with 1 candidate."""
    latest: dict[tuple[str, str, int, int], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a kill: redo that item
                    continue
                record.setdefault("repeat", 1)
                record.setdefault("candidates", 1)
                latest[result_key(record)] = record
    return list(latest.values())


def result_key(record: dict[str, Any]) -> tuple[str, str, int, int]:
    """(id, arm, repeat, candidates): what one line of results.jsonl is the result of."""
    return (str(record["id"]), record.get("arm", "agent"), int(record.get("repeat", 1)),
            int(record.get("candidates", 1)))


class EvalHarness:
    """Evaluate items with one set of backends, writing `results.jsonl` into `out_dir`."""

    def __init__(
        self,
        context: Context,
        out_dir: str | Path,
        *,
        backends=None,
        closure_judge: ClosureJudge | None = None,
        image_scorer: ImageScorer | None = None,
        options: EvalOptions | None = None,
        agent=None,
    ):
        from contextgen.memory.in_memory import ListMemory
        from contextgen.tools.backends import Backends

        self.context = context
        self.out_dir = Path(out_dir)
        self.options = options or EvalOptions()
        if backends is None:
            # Without memory, items must not see each other's runs: an empty in-process one.
            backends = Backends(context) if self.options.use_memory else Backends(
                context, memory=ListMemory()
            )
        self.backends = backends
        self._closure_judge = closure_judge
        self._image_scorer = image_scorer
        self._agent = agent
        self._checkpointer = None
        self._write_lock = threading.Lock()

    @property
    def results_path(self) -> Path:
        return self.out_dir / RESULTS_FILE

    # -- judges and the agent, made on first use ------------------------------------------

    @property
    def closure_judge(self) -> ClosureJudge:
        if self._closure_judge is None:
            from contextgen.evaluation.closure import closure_judge_label, closure_judge_model

            self._closure_judge = ClosureJudge(closure_judge_model(self.context),
                                               closure_judge_label(self.context))
        return self._closure_judge

    @property
    def image_scorer(self) -> ImageScorer | None:
        """The VLM image scorer when a judge model is configured, else None."""
        if self._image_scorer is None and self.context.judge_model:
            from contextgen.tools.chat_models import judge_model_for

            self._image_scorer = ImageScorer(judge_model_for(self.context))
        return self._image_scorer

    @property
    def candidate_counts(self) -> list[int]:
        """Images per round the agent runs at: the options', else the context's one count."""
        return sorted(set(self.options.candidates)) or [self.context.candidates]

    @property
    def agent(self):
        """The image agent on the eval's checkpointer (made on first use; see `close`)."""
        if self._agent is None:
            from contextgen.checkpoints import open_checkpointer
            from contextgen.graphs.image_agent import build_graph

            self._checkpointer = open_checkpointer(str(self.out_dir), self.context.database_url)
            self._agent = build_graph(checkpointer=self._checkpointer)
        return self._agent

    def close(self) -> None:
        """Close the checkpointer this harness opened (the next run opens it again)."""
        if self._checkpointer is not None:
            self._checkpointer.conn.close()
            self._checkpointer, self._agent = None, None

    # -- running -------------------------------------------------------------------------

    def pending(self, items: list[EvalItem]) -> list[tuple[EvalItem, str, int, int]]:
        """(item, arm, repeat, candidates) runs not yet finished in results.jsonl, repeat by
        repeat. The agent runs at every candidate count; the baseline (one image) once."""
        done = {result_key(r) for r in read_results(self.results_path) if not r.get("error")}
        runs = [("agent", count) for count in self.candidate_counts]
        if self.options.baseline:
            runs.insert(1, ("baseline", 1))
        return [
            (item, arm, repeat, candidates)
            for repeat in range(1, self.options.repeats + 1)
            for item in items
            for arm, candidates in runs
            if (item.id, arm, repeat, candidates) not in done
        ]

    def run(
        self, items: list[EvalItem], progress: Callable[[Iterable], Iterable] | None = None
    ) -> list[dict[str, Any]]:
        """Evaluate the pending (item, arm, repeat, candidates) runs; returns every result in
        the file. A checkpoint store that cannot be opened raises BackendUnavailable."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tasks = self.pending(select_items(items, self.options))
        wrap = progress or (lambda iterable: iterable)
        if any(arm == "agent" for _, arm, _, _ in tasks):
            _ = self.agent  # open the store once, before the workers share it
        try:
            if self.options.workers <= 1:
                for task in wrap(tasks):
                    self._append(self.evaluate(*task))
            else:
                with ThreadPoolExecutor(self.options.workers, thread_name_prefix="eval") as pool:
                    futures = [pool.submit(self.evaluate, *task) for task in tasks]
                    for future in wrap(as_completed(futures)):
                        self._append(future.result())
        finally:
            self.close()
        return read_results(self.results_path)

    def evaluate(self, item: EvalItem, arm: str, repeat: int = 1,
                 candidates: int = 1) -> dict[str, Any]:
        """One item through one arm (its `repeat`-th run, `candidates` images per round),
        scored. Failures are recorded, never raised."""
        from contextgen.tools.backends import use_backends

        record: dict[str, Any] = {
            "id": item.id, "arm": arm, "repeat": repeat, "candidates": candidates,
            "category": item.category, "subcategory": item.subcategory, "request": item.prompt,
        }
        # Each repeat and candidate count runs under its own name: its own image folder. Each
        # agent attempt is a new thread, so a retry starts clean and evals sharing a database
        # never meet.
        name = item.id + (f"-repeat-{repeat}" if repeat > 1 else "") + (
            f"-candidates-{candidates}" if candidates > 1 else "")
        context = replace(self.context, output_dir=str(self.out_dir / "images" / arm
                                                       / _safe_name(name)))
        # Set after: Context reads CONTEXTGEN_CANDIDATES over a value equal to its default (1).
        context.candidates = candidates
        if arm == "agent":
            record["thread_id"] = f"eval-{name}-{uuid.uuid4().hex[:8]}"
        with use_backends(self.backends):
            try:
                if arm == "agent":
                    run = self._run_agent(item, context, record["thread_id"])
                else:
                    run = self._run_baseline(item, context)
                record |= run
                record |= self._score(item, record)
                record["error"] = None
            except Exception as error:  # one failing item must not stop the evaluation
                logger.warning("item %s (%s) failed: %s", item.id, arm, error)
                record.setdefault("final_prompt", None)
                record |= {"closure": False, "closure_reason": f"the run failed: {error}",
                           "keyword_hit": False if item.answer.keywords else None,
                           "error": f"{type(error).__name__}: {error}"}
        record["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return record

    def _run_agent(self, item: EvalItem, context: Context, thread_id: str) -> dict[str, Any]:
        from contextgen.run_record import RUN_FOLDER_KEY, RunSummary
        from contextgen.runner import run_agent

        # Only the request goes in: the answer key never reaches the agent.
        config = {"configurable": {"thread_id": thread_id},
                  "metadata": {RUN_FOLDER_KEY: context.output_dir}}
        outcome = run_agent(self.agent, {"request": item.prompt}, context=context, config=config)
        run = RunSummary.from_outcome(outcome, context, thread_id)
        intent = run.intent
        return {
            "final_prompt": run.prompt,
            "facts": [fact.model_dump() for fact in run.facts],
            "route": intent.route if intent else None,
            "candidate_names": list(intent.candidate_names) if intent else [],
            "queries": list(intent.search_queries) if intent else [],
            "rounds": len(run.rounds),
            "round_scores": [verdict.score for verdict in run.verdicts if verdict.judged],
            "accepted": run.accepted,
            "image": run.final_image.path if run.final_image else None,
            "wall_seconds": run.wall_seconds,
            "seconds_per_node": run.seconds_per_node,
            "llm_calls": int(run.llm["total"]["calls"]),
            "input_tokens": int(run.llm["total"]["input_tokens"]),
            "output_tokens": int(run.llm["total"]["output_tokens"]),
            "llm_per_node": run.llm["per_node"],
            "search_calls": run.path.count("search"),
            **run.cost,  # images generated and judged (every candidate), generate and judge seconds
            "notices": run.notices,
        }

    def _run_baseline(self, item: EvalItem, context: Context) -> dict[str, Any]:
        """The bare path: the request itself is the prompt; an image when a generator exists."""
        started = time.perf_counter()
        from contextgen.tools.errors import GeneratorUnavailable

        image_path, seconds, notices = None, {}, []
        if self.image_scorer is not None and self.backends.generator is not None:
            Path(context.output_dir).mkdir(parents=True, exist_ok=True)
            try:
                artifact = self.backends.generator.generate(
                    prompt=item.prompt, negative_prompt="", seed=context.seed,
                    out_path=str(Path(context.output_dir) / "round-1.png"), round=1,
                )
                image_path = artifact.path
            except GeneratorUnavailable as error:  # as the agent's generate node does
                notices.append(f"No image: {error}")
            seconds = {"generate": round(time.perf_counter() - started, 4)}
        return {
            "final_prompt": item.prompt, "facts": [], "route": None, "candidate_names": [],
            "queries": [], "rounds": 0,
            "round_scores": [], "accepted": None, "image": image_path,
            "wall_seconds": round(time.perf_counter() - started, 3),
            "seconds_per_node": seconds, "llm_calls": 0, "input_tokens": 0,
            "output_tokens": 0, "llm_per_node": {}, "search_calls": 0,
            "images_generated": 1 if image_path else 0, "images_judged": 0,
            "generate_seconds": seconds.get("generate", 0.0), "judge_seconds": 0.0,
            "notices": notices,
        }

    def _score(self, item: EvalItem, record: dict[str, Any]) -> dict[str, Any]:
        prompt = record.get("final_prompt") or ""
        started = time.perf_counter()
        verdict = self.closure_judge.judge(item.prompt, item.answer, prompt)
        grounding = sourced_visual_facts(record.get("facts") or [], prompt, item.prompt)
        scores: dict[str, Any] = {
            "closure": verdict.closed,
            "closure_reason": verdict.reason,
            "closure_overruled": verdict.overruled,
            "closure_judge": self.closure_judge.label,
            "keyword_hit": keyword_hit(item.answer.keywords, prompt),
            "closure_judge_seconds": round(time.perf_counter() - started, 3),
            "sourced_visual_facts": grounding if record.get("arm") == "agent" else None,
            "image_score": None,
        }
        if record.get("image") and self.image_scorer is not None:
            scores["image_score"] = self.image_scorer.score(item.prompt, item.answer,
                                                            record["image"])
        return scores

    def _append(self, record: dict[str, Any]) -> None:
        with self._write_lock, self.results_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, default=str) + "\n")


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80] or "item"
