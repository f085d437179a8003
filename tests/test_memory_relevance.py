"""Memory with a purpose: past runs enter a new run only when they concern its subject."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from langgraph.runtime import Runtime

from contextgen.graphs.state import Intent
from contextgen.memory.embeddings import default_embedding_function
from contextgen.memory.relevance import (
    concerns_same_subject,
    name_core,
    names_subject,
    points_at_the_past,
)
from contextgen.memory.store import MemoryStore
from contextgen.nodes.recall_memory import recall_memory
from contextgen.tools.backends import Backends, use_backends

PAIRS = Path(__file__).parent / "data" / "memory_relevance_pairs.jsonl"


def test_the_rule_is_precise_on_the_labelled_pairs(capsys) -> None:
    """Related and unrelated (request, past run) pairs, many sharing places or kinds of thing
    ("a koala in eastern Australia" against a run about the platypus)."""
    pairs = [json.loads(line) for line in PAIRS.read_text("utf-8").splitlines()]
    embed = default_embedding_function().encode
    new = np.asarray(embed([p["request"] for p in pairs]))
    past = np.asarray(embed([f"{p['past_subject']}: {p['past_request']}" for p in pairs]))
    similarity = (new * past).sum(1) / np.linalg.norm(new, axis=1) / np.linalg.norm(past, axis=1)
    decided = [concerns_same_subject(p["request"], p["past_subject"], float(s))
               for p, s in zip(pairs, similarity, strict=True)]
    related = [p["related"] for p in pairs]
    hits = sum(d and r for d, r in zip(decided, related, strict=True))
    precision = hits / max(sum(decided), 1)
    recall = hits / sum(related)
    with capsys.disabled():
        print(f"\nmemory relevance on {len(pairs)} pairs: precision {precision:.2f}, "
              f"recall {recall:.2f}")
    assert len(pairs) >= 40 and 10 <= sum(related) <= len(pairs) - 10
    assert precision >= 0.95  # a wrong memory is worse than a missing one
    assert recall >= 0.7


@pytest.mark.parametrize(("request_text", "points"), [
    ("the same castle as last time, in winter", True),
    ("our mascot waving", True),
    ("the platypus again", True),
    ("a castle in the snow", False),
    ("the bird on the flag of Uganda", False),
])
def test_points_at_the_past(request_text: str, points: bool) -> None:
    assert points_at_the_past(request_text) is points


def test_names_subject() -> None:
    assert name_core("The Great Wall of China") == {"great", "wall"}
    assert names_subject("Mooncake", "mooncakes on a plate")
    assert names_subject("Platypus", "an Australian animal", ["platypus"])
    assert not names_subject("Snowy owl", "a barn owl at dusk")
    assert not names_subject("Eiffel Tower", "the Tokyo Tower at night")
    assert not names_subject("", "anything")


def test_recall_keeps_unrelated_runs_out_and_related_ones_in(tmp_path, context) -> None:
    runtime = Runtime(context=context, stream_writer=lambda event: None)
    store = MemoryStore(tmp_path / "memory")
    store.remember_preference("default", "Always watercolor")
    store.remember_run("default", "the semiaquatic egg-laying mammal endemic to eastern Australia",
                       "Platypus swimming in a creek", subject="Platypus")
    store.remember_run("default", "a snowy owl on a fence post", "A snowy owl", subject="Snowy owl")
    intent = Intent(subject="the bird on the flag of Uganda",
                    candidate_names=["grey crowned crane"])

    def recalled(request: str, state_intent: Intent = intent) -> list[str]:
        with use_backends(Backends(context, memory=store)):
            update = recall_memory({"request": request, "intent": state_intent}, runtime)
        return [m.subject or m.text for m in update["memories"]]

    assert recalled("the bird on the flag of Uganda") == ["Always watercolor"]
    assert recalled("a koala asleep in a eucalyptus tree in eastern Australia") == [
        "Always watercolor"
    ]
    assert recalled("the platypus again, at night") == ["Always watercolor", "Platypus"]
    with_candidate = Intent(subject="egg-laying mammal", candidate_names=["platypus"])
    assert recalled("the egg-laying mammal with a duck bill", with_candidate) == [
        "Always watercolor", "Platypus"
    ]
