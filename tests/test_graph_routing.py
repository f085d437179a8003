"""The image agent's routing, end to end on in-process fakes: every branch of the judge loop."""

from __future__ import annotations

import sqlite3

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from contextgen.graphs.image_agent import build_graph
from contextgen.graphs.state import Memory
from contextgen.tools.backends import Backends, use_backends
from contextgen.tools.errors import SearchUnavailable
from tests.fakes import (
    PLATYPUS_HIT,
    ListMemory,
    ScriptedChatModel,
    ScriptedJudge,
    SolidColorGenerator,
    StaticSearch,
    intent_reply,
    synthesis_reply,
    verdict,
)


def make_backends(
    context,
    intents=None,
    syntheses=None,
    judge_verdicts=None,
    search=None,
    generator="solid",
    memory=None,
):
    chat = ScriptedChatModel(
        replies={
            "IntentReply": intents or [intent_reply()],
            "SynthesisReply": syntheses or [synthesis_reply()],
        }
    )
    return Backends(
        context,
        chat_model=chat,
        search=search if search is not None else StaticSearch({"mammal": [PLATYPUS_HIT]}),
        memory=memory or ListMemory(),
        generator=SolidColorGenerator() if generator == "solid" else generator,
        judge=ScriptedJudge(judge_verdicts) if judge_verdicts else None,
    )


def run(context, backends, request="the egg-laying mammal of eastern Australia", **kwargs):
    with use_backends(backends):
        return build_graph(**kwargs).invoke({"request": request}, context=context)


def test_accepted_first_round_grounds_prompt_with_source(context):
    backends = make_backends(context, judge_verdicts=[verdict()])
    result = run(context, backends)
    assert result["accepted"] is True
    package = result["prompt_package"]
    assert "platypus" in package.prompt.lower()
    assert package.facts[0].source == PLATYPUS_HIT.source
    assert [v.round for v in result["verdicts"]] == [1]
    assert result["final_image"].round == 1
    assert backends.memory.runs[0]["accepted"] is True


def test_prompt_problem_loops_to_synthesis_with_critique(context):
    backends = make_backends(
        context,
        syntheses=[synthesis_reply("A duck in a creek"), synthesis_reply()],
        judge_verdicts=[verdict("prompt", accepted=False, score=0.3), verdict()],
    )
    result = run(context, backends)
    assert [v.accepted for v in result["verdicts"]] == [False, True]
    second_synthesis = [m for name, m in backends.chat_model.calls if name == "SynthesisReply"][1]
    assert "wrong animal" in second_synthesis[-1].content
    assert backends.search.queries == ["egg-laying mammal Australia"]  # no new research


def test_knowledge_problem_sends_new_queries(context):
    backends = make_backends(
        context,
        judge_verdicts=[
            verdict("knowledge", accepted=False, score=0.2, missing=["platypus bill mammal"]),
            verdict(),
        ],
    )
    result = run(context, backends)
    assert backends.search.queries == ["egg-laying mammal Australia", "platypus bill mammal"]
    assert result["accepted"] is True and len(result["verdicts"]) == 2


def test_local_flaw_edits_last_image_when_edit_model_set(context):
    context.edit_model = "some/edit-model"
    backends = make_backends(
        context, judge_verdicts=[verdict("local_flaw", accepted=False, score=0.6), verdict()]
    )
    result = run(context, backends)
    first, second = backends.generator.calls
    assert first["init_image"] is None
    assert second["init_image"] == result["images"][0].path if "images" in result else True
    assert second["init_image"].endswith("round-1.png")
    assert len(backends.chat_model.calls) == 2  # no second synthesis for an edit


def test_local_flaw_without_edit_model_rewrites_prompt(context):
    backends = make_backends(
        context, judge_verdicts=[verdict("local_flaw", accepted=False, score=0.6), verdict()]
    )
    run(context, backends)
    assert [c["init_image"] for c in backends.generator.calls] == [None, None]
    assert [name for name, _ in backends.chat_model.calls].count("SynthesisReply") == 2


def test_round_limit_returns_best_image_not_accepted(context):
    context.max_rounds = 2
    scores = iter([0.5, 0.3])
    backends = make_backends(
        context,
        judge_verdicts=[
            lambda r: verdict("prompt", accepted=False, score=next(scores))(r),
        ],
    )
    result = run(context, backends)
    assert result["accepted"] is False
    assert len(result["verdicts"]) == 2
    assert result["final_image"].round == 1  # the better-scored round
    assert backends.memory.runs[0]["accepted"] is False


def test_no_generator_returns_prompt_package_and_says_how(context):
    backends = make_backends(context, generator=None, judge_verdicts=[verdict()])
    result = run(context, backends)
    assert result["final_image"] is None
    assert "platypus" in result["prompt_package"].prompt.lower()
    assert any("CONTEXTGEN_GENERATOR" in notice for notice in result["notices"])
    assert result["verdicts"][0].judged is False


def test_no_judge_marks_image_unjudged(context):
    backends = make_backends(context)
    result = run(context, backends)
    assert result["final_image"] is not None
    assert result["verdicts"][0].judged is False
    assert any("unjudged" in notice for notice in result["notices"])


def test_search_unreachable_continues_on_memory(context):
    memory = ListMemory([Memory(id="m1", kind="preference", text="I like watercolor")])
    backends = make_backends(
        context,
        search=StaticSearch({}, error=SearchUnavailable("connection refused")),
        syntheses=[synthesis_reply("A watercolor platypus", source="M1")],
        memory=memory,
    )
    result = run(context, backends)
    assert any("Search unavailable" in notice for notice in result["notices"])
    assert result["prompt_package"].facts[0].source == "memory:m1"


def test_reasoning_route_searches_nothing(context):
    backends = make_backends(
        context,
        intents=[intent_reply("reason", queries=["should be ignored"])],
        syntheses=[synthesis_reply("Sydney Opera House in daylight", source="reasoning")],
    )
    result = run(context, backends, request="Sydney Opera House when London strikes midnight")
    assert backends.search.queries == []
    assert result["prompt_package"].facts[0].source == "reasoning"


def test_clarify_interrupts_and_resumes_on_sqlite(context, tmp_path):
    context.interactive = True
    backends = make_backends(
        context,
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
