"""The image agent's routing, end to end on in-process fakes: every branch of the judge loop."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from contextgen.graphs.image_agent import build_graph
from contextgen.graphs.state import Memory
from contextgen.tools.backends import use_backends
from contextgen.tools.errors import SearchUnavailable
from tests.fakes import (
    PLATYPUS_HIT,
    ListMemory,
    SolidColorGenerator,
    StaticSearch,
    intent_reply,
    synthesis_reply,
    verdict,
)

FIRST_ROUND_QUERIES = [
    "semiaquatic egg-laying mammal", "the egg-laying mammal of eastern Australia",
    "egg-laying mammal Australia",
]


def run(context, backends, request="the egg-laying mammal of eastern Australia", **kwargs):
    with use_backends(backends):
        return build_graph(**kwargs).invoke({"request": request}, context=context)


def test_accepted_first_round_grounds_prompt_with_source(context, fake_backends):
    backends = fake_backends(verdicts=[verdict()])
    result = run(context, backends)
    assert result["accepted"] is True
    package = result["prompt_package"]
    assert "platypus" in package.prompt.lower()
    assert package.facts[0].source == PLATYPUS_HIT.source
    assert [v.round for v in result["verdicts"]] == [1]
    assert result["final_image"].round == 1
    assert backends.memory.runs[0]["accepted"] is True


def test_prompt_problem_loops_to_synthesis_with_critique(context, fake_backends):
    backends = fake_backends(
        syntheses=[synthesis_reply("A duck in a creek"), synthesis_reply()],
        verdicts=[verdict("prompt", accepted=False, score=0.3), verdict()],
    )
    result = run(context, backends)
    assert [(v.accepted, v.next_step) for v in result["verdicts"]] == [
        (False, "rewrite"), (True, "finish")
    ]
    second_synthesis = [m for name, m in backends.chat_model.calls if name == "SynthesisReply"][1]
    assert "wrong animal" in second_synthesis[-1].content
    # The subject's own searches (description, request) and the model's query, once each: no
    # new research.
    assert sorted(backends.search.queries) == sorted(FIRST_ROUND_QUERIES)


def test_knowledge_problem_sends_new_queries(context, fake_backends):
    backends = fake_backends(
        verdicts=[
            verdict("knowledge", accepted=False, score=0.2, missing=["platypus bill mammal"]),
            verdict(),
        ],
    )
    result = run(context, backends)
    first_round, second_round = backends.search.queries[:3], backends.search.queries[3:]
    assert sorted(first_round) == sorted(FIRST_ROUND_QUERIES)
    assert second_round == ["platypus bill mammal"]
    assert [v.next_step for v in result["verdicts"]] == ["research", "finish"]
    assert result["accepted"] is True


def test_local_flaw_edits_last_image_when_the_generator_can_edit(context, fake_backends):
    backends = fake_backends(
        generator=SolidColorGenerator(can_edit=True),
        verdicts=[verdict("local_flaw", accepted=False, score=0.6), verdict()],
    )
    result = run(context, backends)
    first, second = backends.generator.calls
    assert (first["mode"], first["input_images"]) == ("text2img", [])
    round_1 = str(Path(context.output_dir) / "round-1.png")
    assert (second["mode"], second["input_images"]) == ("edit", [round_1])
    assert result["final_image"].round == 2 and result["final_image"].edited_from == round_1
    assert [v.next_step for v in result["verdicts"]] == ["edit", "finish"]
    assert len(backends.chat_model.calls) == 2  # no second synthesis for an edit


def test_local_flaw_without_edit_model_rewrites_prompt(context, fake_backends):
    backends = fake_backends(
        verdicts=[verdict("local_flaw", accepted=False, score=0.6), verdict()]
    )
    result = run(context, backends)
    assert [c["mode"] for c in backends.generator.calls] == ["text2img", "text2img"]
    assert [v.next_step for v in result["verdicts"]] == ["rewrite", "finish"]
    assert [name for name, _ in backends.chat_model.calls].count("SynthesisReply") == 2


def test_round_limit_returns_best_image_not_accepted(context, fake_backends):
    context.max_rounds = 2
    scores = iter([0.5, 0.3])
    backends = fake_backends(
        verdicts=[
            lambda r: verdict("prompt", accepted=False, score=next(scores))(r),
        ],
    )
    result = run(context, backends)
    assert result["accepted"] is False
    assert [v.next_step for v in result["verdicts"]] == ["rewrite", "finish"]  # stops at 2
    assert result["final_image"].round == 1  # the better-scored round
    assert backends.memory.runs[0]["accepted"] is False


def test_no_generator_returns_prompt_package_and_says_how(context, fake_backends):
    backends = fake_backends(generator=None, verdicts=[verdict()])
    result = run(context, backends)
    assert result["final_image"] is None
    assert "platypus" in result["prompt_package"].prompt.lower()
    assert any("CONTEXTGEN_GENERATOR" in notice for notice in result["notices"])
    assert result["verdicts"][0].judged is False


def test_no_judge_marks_image_unjudged(context, fake_backends):
    backends = fake_backends(judge=None)
    result = run(context, backends)
    assert result["final_image"] is not None
    assert result["verdicts"][0].judged is False
    assert any("unjudged" in notice for notice in result["notices"])


def test_search_unreachable_continues_on_memory(context, fake_backends):
    memory = ListMemory([Memory(id="m1", kind="preference", text="I like watercolor")])
    backends = fake_backends(
        search=StaticSearch({}, error=SearchUnavailable("connection refused")),
        syntheses=[synthesis_reply("A watercolor platypus", source="M1")],
        memory=memory,
    )
    result = run(context, backends)
    assert any("Search unavailable" in notice for notice in result["notices"])
    assert result["prompt_package"].facts[0].source == "memory:m1"


def test_reasoning_route_searches_nothing(context, fake_backends):
    backends = fake_backends(
        intents=[intent_reply("reason", queries=["should be ignored"])],
        syntheses=[synthesis_reply("Sydney Opera House in daylight", source="reasoning")],
    )
    result = run(context, backends, request="Sydney Opera House when London strikes midnight")
    assert backends.search.queries == []
    assert result["prompt_package"].facts[0].source == "reasoning"


def test_clarify_interrupts_and_resumes_on_sqlite(context, fake_backends, tmp_path):
    context.interactive = True
    backends = fake_backends(
        intents=[
            intent_reply(ambiguous=True, clarifying_question="Which Jaguar: the car or the cat?"),
            intent_reply(),
        ],
    )
    saver = SqliteSaver(sqlite3.connect(tmp_path / "runs.sqlite", check_same_thread=False))
    config = {"configurable": {"thread_id": "t1"}}
    with use_backends(backends):
        agent = build_graph(checkpointer=saver)
        first = agent.invoke({"request": "a jaguar at speed"}, config, context=context)
        assert first["__interrupt__"][0].value["question"] == "Which Jaguar: the car or the cat?"
        result = agent.invoke(Command(resume="the cat"), config, context=context)
    assert result["prompt_package"] is not None
    intent_calls = [m for name, m in backends.chat_model.calls if name == "IntentReply"]
    assert "the cat" in intent_calls[1][-1].content
