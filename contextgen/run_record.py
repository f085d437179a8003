"""The record of a run: everything needed to explain it, written as run.json (no secrets)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contextgen.graphs.context import Context
from contextgen.runner import RunOutcome

RUN_FILE = "run.json"


def build_run_record(outcome: RunOutcome, context: Context, thread_id: str) -> dict[str, Any]:
    """Assemble run.json's content from the final state and the run's measurements."""
    state = outcome.state
    images = {image.round: image for image in state.get("images", [])}
    verdicts = {verdict.round: verdict for verdict in state.get("verdicts", [])}
    intent = state.get("intent")
    final = state.get("prompt_package")
    prompts = {number: image.prompt for number, image in images.items()}
    if final:
        prompts.setdefault(len(verdicts) or 1, final.prompt)
    rounds = sorted(set(prompts) | set(verdicts))
    return {
        "request": state.get("request"),
        "user_id": state.get("user_id") or context.user_id,
        "thread_id": thread_id,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": _status(outcome),
        "accepted": state.get("accepted", False),
        "intent": intent.model_dump() if intent else None,
        "queries": sorted({item.query for item in state.get("evidence", [])})
        or (intent.search_queries if intent else []),
        "evidence": [
            item.model_dump(exclude={"content"}) | {"excerpt": item.content[:300]}
            for item in state.get("evidence", [])
        ],
        "memories_used": [memory.model_dump() for memory in state.get("memories", [])],
        "rounds": [
            {
                "round": number,
                "prompt": prompts.get(number),
                "image": images[number].model_dump() if number in images else None,
                "verdict": verdicts[number].model_dump() if number in verdicts else None,
            }
            for number in rounds
        ],
        "final_prompt": final.model_dump() if final else None,
        "final_image": state["final_image"].model_dump() if state.get("final_image") else None,
        "notices": list(dict.fromkeys(state.get("notices", []))),
        "path": outcome.path,
        "node_timings": outcome.node_timings,
        "seconds_per_node": _seconds_per_node(outcome.node_timings),
        "wall_seconds": outcome.wall_seconds,
        "llm": {"total": outcome.llm_usage.totals(), "per_node": dict(outcome.llm_usage.per_node)},
        "settings": {key: value for key, value in asdict(context).items()},
    }


def write_run_record(folder: Path, record: dict[str, Any]) -> Path:
    """Write run.json into `folder`, merging timings of earlier invocations of the same thread."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RUN_FILE
    if path.exists():
        earlier = json.loads(path.read_text())
        if earlier.get("thread_id") == record["thread_id"]:
            record["node_timings"] = earlier.get("node_timings", []) + record["node_timings"]
            record["path"] = earlier.get("path", []) + record["path"]
            record["seconds_per_node"] = _seconds_per_node(record["node_timings"])
            record["wall_seconds"] = round(
                earlier.get("wall_seconds", 0) + record["wall_seconds"], 3
            )
    path.write_text(json.dumps(record, indent=2, default=str))
    return path


def _status(outcome: RunOutcome) -> str:
    if outcome.interrupt:
        return "waiting_for_user"
    return (
        "finished"
        if outcome.state.get("prompt_package") and "accepted" in outcome.state
        else ("incomplete")
    )


def _seconds_per_node(timings: list[dict[str, Any]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for timing in timings:
        totals[timing["node"]] = round(totals.get(timing["node"], 0.0) + timing["seconds"], 4)
    return totals
