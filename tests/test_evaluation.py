"""The evaluation harness: readers, scoring, resumable results, reports, and the CLI on the
real embedded model (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from contextgen.checkpoints import open_sqlite_checkpointer
from contextgen.cli import main
from contextgen.evaluation.closure import (
    ClosureJudge,
    ClosureReply,
    ClosureVerdict,
    closure_judge_label,
    grounded,
    keyword_hit,
    sourced_visual_facts,
)
from contextgen.evaluation.harness import EvalHarness, EvalOptions, read_results, result_key
from contextgen.evaluation.image_score import (
    WISE_GROUP_WEIGHTS,
    weighted_overall,
    wiscore,
    wise_group,
)
from contextgen.evaluation.items import AnswerKey, EvalItem, ItemFormatError, load_items
from contextgen.evaluation.summary import scaling_curve, summarize, write_reports
from contextgen.graphs.image_agent import build_graph
from contextgen.graphs.state import Verdict
from contextgen.tools.backends import Backends
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

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "eval_sample.jsonl"
WISE_SAMPLE = DATA / "wise_sample.json"
SECRET = "SECRET-ANSWER-xyzzy"


class RecordingChatModel(BaseChatModel):
    """Scripted structured replies; keeps every message the agent's model is shown."""

    seen: list[BaseMessage] = []
    prompt: str = "A platypus swimming in a creek at dawn"

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.seen.extend(messages)
        schema = kwargs["response_format"]["json_schema"]["name"]
        reply = intent_reply() if schema == "IntentReply" else synthesis_reply(self.prompt)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(json.dumps(reply)))])


class RecordingClosureJudge:
    """Closes the gap when the prompt contains the first keyword (or 'platypus')."""

    label = "a recording judge"

    def __init__(self):
        self.seen: list[tuple[str, AnswerKey, str]] = []

    def judge(self, request: str, answer: AnswerKey, prompt: str) -> ClosureVerdict:
        self.seen.append((request, answer, prompt))
        word = answer.keywords[0][0] if answer.keywords else "platypus"
        closed = word.lower() in prompt.lower()
        return ClosureVerdict(quote=word if closed else "",
                              reason=f"{'names' if closed else 'lacks'} {word}", closed=closed)


class FakeImageScorer:
    def __init__(self):
        self.seen: list[str] = []

    def score(self, request: str, answer: AnswerKey, image_path: str) -> dict:
        self.seen.append(image_path)
        return {"consistency": 2, "realism": 1, "aesthetics": 1, "wiscore": wiscore(2, 1, 1),
                "verified": True, "reason": "fine"}


def fake_backends(context, generator=None, judge=None) -> Backends:
    return Backends(
        context,
        chat_model=RecordingChatModel(seen=[]),
        search=StaticSearch({"mammal": [PLATYPUS_HIT]}),
        memory=ListMemory(),
        generator=generator,
        judge=judge,
    )


def harness(context, out, **kwargs) -> EvalHarness:
    options = kwargs.pop("options", EvalOptions(baseline=True))
    return EvalHarness(context, out, backends=kwargs.pop("backends", fake_backends(context)),
                       closure_judge=kwargs.pop("closure_judge", RecordingClosureJudge()),
                       options=options, **kwargs)


# -- readers ---------------------------------------------------------------------------------


def test_reads_plain_jsonl_sample_with_keyword_groups():
    items = load_items(SAMPLE)
    assert len(items) == 8
    by_id = {item.id: item for item in items}
    assert by_id["festival-pastry"].answer.keywords == [["mooncake", "moon cake", "mooncakes"]]
    assert by_id["old-copper-roof"].answer.keywords == [["green", "verdigris", "patina"]]
    assert by_id["monterey-guitar"].answer.keywords == []
    assert {item.category for item in items} == {"cultural", "natural_science", "spatio_temporal"}


def test_reads_wise_format():
    items = load_items(WISE_SAMPLE)
    assert [item.id for item in items] == ["1", "402", "801"]
    assert items[0].category == "Cultural knowledge" and items[0].subcategory == "Festival"
    assert "glutinous rice" in items[0].answer.expected
    assert items[0].answer.keywords == []
    assert [wise_group(item) for item in items] == ["cultural", "time", "chemistry"]


def test_wise_items_without_category_take_it_from_the_file_name(tmp_path):
    path = tmp_path / "cultural_common_sense.json"
    path.write_text('[{"prompt_id": 7, "Prompt": "The bird of longevity in Japanese art", '
                    '"Explanation": "A red-crowned crane.", "Subcategory": "Art"}]')
    [item] = load_items(path)
    assert item.category == "cultural_common_sense" and wise_group(item) == "cultural"


def test_reads_t2i_reasonbench_style(tmp_path):
    path = tmp_path / "idiom.jsonl"
    path.write_text(
        json.dumps({"id": 7, "prompt": "A man who spills the beans at dinner",
                    "explicit_meaning": "A man revealing a secret to shocked guests",
                    "evaluation_criteria": ["shows guests reacting", "no literal beans"]})
        + "\n"
    )
    (item,) = load_items(path)
    assert item.id == "7" and item.category == "idiom"
    assert "revealing a secret" in item.answer.expected
    assert "no literal beans" in item.answer.expected


def test_rejects_unknown_format(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "no prompt here"}\n')
    with pytest.raises(ItemFormatError, match="Prompt"):
        load_items(path)


@pytest.mark.parametrize("content, message", [
    ('[{"Prompt": 3, "Explanation": "a crane"}]', "must be non-empty text"),
    ('[{"Prompt": "the bird of longevity"}]', "no 'Explanation'"),
    ('{"id": "a", "prompt": "  ", "keywords": ["crane"]}', "must be non-empty text"),
    ('{"id": "a", "prompt": "the bird of longevity"}', "no answer key"),
])
def test_items_without_a_request_text_or_answer_key_are_refused(tmp_path, content, message):
    path = tmp_path / "items.json"
    path.write_text(content)
    with pytest.raises(ItemFormatError, match=message):
        load_items(path)


# -- scoring ---------------------------------------------------------------------------------


def test_keyword_hit_any_synonym_case_insensitive_whole_words():
    assert keyword_hit([["mooncake", "moon cake"]], "Golden MOON CAKE on a plate") is True
    assert keyword_hit([["ice"]], "a service counter") is False
    assert keyword_hit([["crane"], ["grey", "gray"]], "a gray crowned crane") is True
    assert keyword_hit([["crane"], ["grey", "gray"]], "a crowned crane") is False
    assert keyword_hit([], "anything") is None


MOONCAKE = AnswerKey(expected="Mooncakes: round golden-brown pastries with a stamped pattern.",
                     keywords=[["mooncake", "moon cake"]])
PASTRY_REQUEST = "The round pastries shared at the Mid-Autumn Festival"


def test_closed_verdict_needs_a_quote_found_in_the_prompt():
    prompt = "Round golden Mooncakes with a lotus stamp on a plate"
    kept = grounded(ClosureReply(quote="mooncakes with", reason="names it", closed=True), prompt,
                    PASTRY_REQUEST, MOONCAKE)
    assert kept.closed is True and kept.overruled is False
    invented = grounded(ClosureReply(quote="moon cake", reason="names it", closed=True), prompt,
                        PASTRY_REQUEST, MOONCAKE)
    assert invented.closed is False and invented.overruled is True
    assert "is not in the prompt" in invented.reason
    unquoted = ClosureReply(quote="", reason="names it", closed=True)
    assert grounded(unquoted, prompt, PASTRY_REQUEST, MOONCAKE).overruled is True
    refused = grounded(ClosureReply(quote="", reason="no", closed=False), prompt,
                       PASTRY_REQUEST, MOONCAKE)
    assert refused.closed is False and refused.overruled is False


def test_closed_verdict_whose_quote_only_repeats_the_request_is_overruled():
    prompt = "Round pastries shared at the Mid-Autumn Festival, golden mooncakes on a plate"
    riddle = ClosureReply(quote="round pastries shared at the", reason="r", closed=True)
    repeated = grounded(riddle, prompt, PASTRY_REQUEST, MOONCAKE)
    assert repeated.closed is False and repeated.overruled is True
    assert "names nothing of the answer key beyond the request" in repeated.reason
    named = ClosureReply(quote="golden mooncakes", reason="names it", closed=True)
    assert grounded(named, prompt, PASTRY_REQUEST, MOONCAKE).closed is True


KILIMANJARO_REQUEST = "the tallest mountain in Africa, seen from the savanna at dawn"
KILIMANJARO = AnswerKey(expected="Mount Kilimanjaro, a snow-capped dormant volcano above the "
                        "plains", keywords=[["Kilimanjaro"]])


@pytest.mark.parametrize("prompt, quote, closed", [
    # an adjective added to the request's own words
    ("A majestic mountain in Africa, seen from the savanna at dawn", "A majestic mountain", False),
    # a synonym the answer key does not use
    ("The Roof of Africa at dawn, seen from the savanna", "The Roof of Africa", False),
    # the right name only in a fact: the judge quotes it, but the prompt lacks it
    ("The highest peak in Africa, seen from the savanna at dawn", "Kilimanjaro", False),
    # the right name in the prompt, plural and case aside
    ("Snow-capped KILIMANJARO above the savanna at dawn", "Snow-capped KILIMANJARO", True),
    ("Twin snow-capped volcanoes above the savanna at dawn", "snow-capped volcanoes", True),
])
def test_closure_needs_answer_key_words_the_request_lacks(prompt, quote, closed):
    reply = ClosureReply(quote=quote, reason="mentions Kilimanjaro", closed=True)
    verdict = grounded(reply, prompt, KILIMANJARO_REQUEST, KILIMANJARO)
    assert verdict.closed is closed and verdict.overruled is (not closed)
    if not closed:
        assert verdict.reason.startswith("Overruled: ")
        assert "mentions Kilimanjaro" in verdict.reason  # the judge's own reason is kept


def test_closure_credits_a_number_the_request_lacks():
    request = "The clock face of Big Ben in London when it is 8 am in Los Angeles in August"
    answer = AnswerKey(expected="The clock shows four in the afternoon.",
                       keywords=[["four", "4 pm", "4 o'clock"]])
    prompt = "Big Ben's clock face showing 4 o'clock, London in August"
    quoted = ClosureReply(quote="showing 4 o'clock", reason="the right time", closed=True)
    assert grounded(quoted, prompt, request, answer).closed is True
    clock = ClosureReply(quote="Big Ben's clock face", reason="the right time", closed=True)
    assert grounded(clock, prompt, request, answer).overruled is True


def test_closure_judge_checks_the_models_reply():
    model = ScriptedChatModel(replies={"ClosureReply": [
        {"quote": "A majestic mountain", "reason": "mentions Kilimanjaro", "closed": True},
        {"quote": "Kilimanjaro", "reason": "names it", "closed": True},
    ]}, calls=[])
    judge = ClosureJudge(model, "a scripted judge")
    adjective = judge.judge(KILIMANJARO_REQUEST, KILIMANJARO,
                            "A majestic mountain in Africa, seen from the savanna at dawn")
    assert adjective.closed is False and adjective.overruled is True
    assert "names nothing of the answer key beyond the request" in adjective.reason
    named = judge.judge(KILIMANJARO_REQUEST, KILIMANJARO, "Kilimanjaro at dawn")
    assert named.closed is True and named.overruled is False
    shown = str(model.calls[0][1][-1].content)
    assert "Kilimanjaro" in shown and KILIMANJARO_REQUEST in shown


def test_closure_judge_label_says_when_it_is_the_embedded_model(context, monkeypatch):
    for name in ("CONTEXTGEN_EVAL_JUDGE_MODEL", "CONTEXTGEN_EVAL_JUDGE_BASE_URL",
                 "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert closure_judge_label(context).startswith(
        f"the embedded model {context.embedded_model}, not a strong judge")
    monkeypatch.setenv("CONTEXTGEN_EVAL_JUDGE_MODEL", "gpt-4o")
    assert closure_judge_label(context).startswith("gpt-4o (set by CONTEXTGEN_EVAL_JUDGE_MODEL")


def test_sourced_visual_facts_cite_evidence_and_reach_the_prompt():
    request = "The egg-laying mammal with a bill like a duck, swimming in a creek"
    prompt = "A platypus with dense brown fur and webbed feet, swimming in a creek at dawn"
    facts = [
        {"statement": "The subject is: platypus.", "source": "https://w.org/Platypus"},
        {"statement": "Platypuses have dense brown fur.", "source": "https://w.org/Platypus"},
        {"statement": "Its feet are webbed.", "source": "corpus:wiki:Platypus#0"},
        {"statement": "It has a bill like a duck.", "source": "corpus:wiki:Platypus#0"},
        {"statement": "It hunts shrimp at night.", "source": "corpus:wiki:Platypus#1"},
        {"statement": "Its fur is brown.", "source": "reasoning"},
        {"statement": "Its feet are webbed.", "source": "memory:abc"},
    ]
    # counted: the fur (URL) and the webbed feet (corpus); the subject's name, a fact that only
    # repeats the request, one the prompt leaves out, and unsourced ones are not
    assert sourced_visual_facts(facts, prompt, request) == 2
    assert sourced_visual_facts([], prompt, request) == 0


def test_wiscore_and_wise_weights():
    assert wiscore(2, 2, 2) == 1.0
    assert wiscore(1, 2, 0) == pytest.approx((0.7 + 0.4) / 2)
    assert sum(WISE_GROUP_WEIGHTS.values()) == pytest.approx(1.0)
    assert weighted_overall({"cultural": 1.0, "time": 0.0}) == pytest.approx(0.4 / 0.567, 1e-3)
    assert weighted_overall({"unknown": 1.0}) is None


# -- the harness -----------------------------------------------------------------------------


def test_answer_key_never_reaches_the_agent(context, tmp_path):
    items = load_items(SAMPLE) + [
        EvalItem(id="sentinel", prompt="the egg-laying mammal", category="cultural",
                 answer=AnswerKey(expected=SECRET, keywords=[["zzsecretword"]]))
    ]
    backends = fake_backends(context)
    judge = RecordingClosureJudge()
    harness(context, tmp_path / "eval", backends=backends, closure_judge=judge).run(items)
    shown = "\n".join(str(m.content) for m in backends.chat_model.seen)
    assert shown  # the agent did run
    for item in items:
        assert item.answer.expected not in shown
    assert SECRET not in shown and "zzsecretword" not in shown
    assert "verdigris" not in shown and "Stratocaster" not in shown
    # only the judge saw the answer keys
    assert any(answer.expected == SECRET for _, answer, _ in judge.seen)


def test_results_have_required_fields_for_both_arms(context, tmp_path):
    out = tmp_path / "eval"
    items = load_items(SAMPLE)
    records = harness(context, out, options=EvalOptions(baseline=True, limit=3)).run(items)
    assert len(records) == 6
    assert len((out / "results.jsonl").read_text().splitlines()) == 6
    for record in records:
        for field in ("id", "closure", "keyword_hit", "final_prompt", "wall_seconds",
                      "seconds_per_node", "llm_calls", "input_tokens", "output_tokens",
                      "search_calls", "rounds", "images_generated", "closure_reason",
                      "repeat", "closure_overruled", "closure_judge", "sourced_visual_facts"):
            assert field in record, field
        assert isinstance(record["closure"], bool)
        assert record["error"] is None
    agent = {r["id"]: r for r in records if r["arm"] == "agent"}
    baseline = {r["id"]: r for r in records if r["arm"] == "baseline"}
    assert agent["festival-pastry"]["llm_calls"] == 2
    # the description, the request, then the model's query
    assert agent["festival-pastry"]["search_calls"] == 3
    assert agent["festival-pastry"]["queries"] == [
        "semiaquatic egg-laying mammal", agent["festival-pastry"]["request"],
        "egg-laying mammal Australia",
    ]
    assert baseline["festival-pastry"]["queries"] == []
    assert agent["festival-pastry"]["rounds"] == 1
    assert baseline["festival-pastry"]["final_prompt"] == items[0].prompt
    assert baseline["festival-pastry"]["llm_calls"] == 0
    assert agent["festival-pastry"]["keyword_hit"] is False  # the fake always draws a platypus


def test_rerun_skips_finished_items_and_retries_failures(context, tmp_path):
    out = tmp_path / "eval"
    items = load_items(SAMPLE)[:2]
    first = harness(context, out, options=EvalOptions(limit=2))
    first.run(items)
    assert len(read_results(out / "results.jsonl")) == 2
    # mark one as failed: only that one runs again
    lines = (out / "results.jsonl").read_text().splitlines()
    failed = json.loads(lines[0]) | {"error": "boom"}
    (out / "results.jsonl").write_text("\n".join([json.dumps(failed), lines[1]]) + "\n")
    backends = fake_backends(context)
    again = harness(context, out, backends=backends, options=EvalOptions(limit=2))
    assert [(i.id, arm, repeat, n) for i, arm, repeat, n in again.pending(items)] == [
        (failed["id"], "agent", 1, 1)]
    again.run(items)
    assert len(backends.chat_model.seen) > 0
    assert all(not r["error"] for r in read_results(out / "results.jsonl"))
    third = fake_backends(context)
    harness(context, out, backends=third, options=EvalOptions(limit=2)).run(items)
    assert third.chat_model.seen == []  # nothing left to do


def test_failing_item_is_recorded_not_raised(context, tmp_path):
    class Broken(RecordingChatModel):
        def _generate(self, *args, **kwargs):
            raise RuntimeError("model exploded")

    backends = Backends(context, chat_model=Broken(seen=[]), search=None, memory=ListMemory(),
                        generator=None, judge=None)
    (record,) = harness(context, tmp_path / "e", backends=backends,
                        options=EvalOptions(limit=1)).run(load_items(SAMPLE))
    assert record["closure"] is False and "model exploded" in record["error"]


def test_workers_evaluate_concurrently_with_same_results(context, tmp_path):
    records = harness(context, tmp_path / "e",
                      options=EvalOptions(baseline=True, workers=3)).run(load_items(SAMPLE))
    assert len(records) == 16 and all(r["error"] is None for r in records)


class CandidateJudge:
    """Scores an image by its candidate number (`scores`); never accepts, so every round runs."""

    def __init__(self, scores: dict[int, float]):
        self.scores = scores

    def judge(self, request, package, image, references=()) -> Verdict:
        return Verdict(round=image.round, score=self.scores[image.candidate], accepted=False,
                       problem="prompt", issues=["not yet"])


# `fake_backends` as a test argument is tests/conftest.py's fixture (fakes for every backend).


def test_candidate_counts_run_apart_record_cost_and_resume(context, fake_backends, tmp_path,
                                                          monkeypatch):
    monkeypatch.setenv("CONTEXTGEN_CANDIDATES", "4")  # never overrides a count the eval asks for
    context = replace(context, max_rounds=2)
    out = tmp_path / "eval"
    items = load_items(SAMPLE)[:2]
    backends = fake_backends(judge=CandidateJudge({1: 0.5, 2: 0.7}))
    options = EvalOptions(baseline=True, candidates=[2, 1])
    records = harness(context, out, backends=backends, options=options).run(items)

    assert sorted((r["id"], r["arm"], r["candidates"]) for r in records) == sorted(
        [(i.id, "agent", n) for i in items for n in (1, 2)]
        + [(i.id, "baseline", 1) for i in items])
    agent = {(r["id"], r["candidates"]): r for r in records if r["arm"] == "agent"}
    for item in items:
        one, two = agent[item.id, 1], agent[item.id, 2]
        # two rounds each: every candidate generated and judged, the best one's score kept
        assert (one["images_generated"], one["images_judged"], one["round_scores"]) == (
            2, 2, [0.5, 0.5])
        assert (two["images_generated"], two["images_judged"], two["round_scores"]) == (
            4, 4, [0.7, 0.7])
        assert two["generate_seconds"] > 0 and two["judge_seconds"] > 0
        assert Path(two["image"]).parent.name == f"{item.id}-candidates-2"
        assert Path(one["image"]).parent.name == item.id
    assert len({r["thread_id"] for r in agent.values()}) == 4
    assert scaling_curve(records, "judge_score", 2, candidates=2) == [0.7, 0.7]

    # a results file written before candidate counts existed: its lines are 1 candidate
    results = out / "results.jsonl"
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    results.write_text("".join(
        json.dumps({k: v for k, v in r.items() if (k, v) != ("candidates", 1)}) + "\n"
        for r in lines))
    assert harness(context, out, options=options).pending(items) == []
    more = harness(context, out, options=EvalOptions(candidates=[1, 2, 4])).pending(items)
    assert [(i.id, arm, n) for i, arm, _, n in more] == [(i.id, "agent", 4) for i in items]


def test_workers_share_the_checkpointed_graph_one_result_per_run(context, fake_backends,
                                                                 tmp_path, monkeypatch, capsys):
    out = tmp_path / "eval"
    items = load_items(SAMPLE)
    options = EvalOptions(baseline=True, workers=4, repeats=2, candidates=[1, 2])
    backends = fake_backends(chat_model=RecordingChatModel(seen=[]))  # answers every schema
    records = harness(context, out, backends=backends, options=options).run(items)

    expected = [(i.id, arm, repeat, n) for i in items for repeat in (1, 2)
                for arm, n in (("agent", 1), ("agent", 2), ("baseline", 1))]
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(result_key(r) for r in lines) == sorted(expected)  # none lost or duplicated
    assert len(records) == len(expected) and all(r["error"] is None for r in records)
    agent = [r for r in lines if r["arm"] == "agent"]
    assert len({r["thread_id"] for r in agent}) == len(agent)
    saver = open_sqlite_checkpointer(str(out))  # the eval's own store, in its output folder
    try:
        graph = build_graph(checkpointer=saver)
        for record in agent:
            config = {"configurable": {"thread_id": record["thread_id"]}}
            assert graph.get_state(config).values["prompt_package"].prompt == record[
                "final_prompt"]
            requests = {c.checkpoint["channel_values"].get("request", record["request"])
                        for c in saver.list(config)}
            assert requests == {record["request"]}  # each thread's checkpoints are its own
    finally:
        saver.conn.close()

    monkeypatch.setenv("CONTEXTGEN_DATA_DIR", str(out))
    assert main(["runs", "show", agent[0]["thread_id"]]) == 0
    shown = capsys.readouterr().out
    assert f"Run {agent[0]['thread_id']}: finished" in shown
    assert f"Run folder: {Path(agent[0]['image']).parent}" in shown


def test_results_record_overruled_verdicts_the_judge_and_grounding(context, tmp_path):
    items = [i for i in load_items(SAMPLE) if i.id in ("festival-pastry", "duck-billed-mammal")]
    model = ScriptedChatModel(replies={"ClosureReply": [
        {"quote": "Platypus", "reason": "names the subject", "closed": True},
    ]}, calls=[])
    judge = ClosureJudge(model, "a scripted judge")
    records = harness(context, tmp_path / "e", closure_judge=judge,
                      options=EvalOptions()).run(items)
    by_id = {r["id"]: r for r in records}
    pastry, platypus = by_id["festival-pastry"], by_id["duck-billed-mammal"]
    # the agent always writes about a platypus: a gap closed for one item, not the other
    assert pastry["closure"] is False and pastry["closure_overruled"] is True
    assert platypus["closure"] is True and platypus["closure_overruled"] is False
    assert {r["closure_judge"] for r in records} == {"a scripted judge"}
    # the scripted synthesis states nothing about the platypus's looks its source supports
    assert [r["sourced_visual_facts"] for r in records] == [0, 0]

    write_reports(records, tmp_path)
    closure_section = (tmp_path / "summary.md").read_text().split("## Context closure")[1]
    judge_line = ("The closure judge is a scripted judge. "
                  "1 of its 2 'closed' verdicts were overruled")
    assert closure_section.index(judge_line) < closure_section.index("| category |")
    grounding = closure_section.split("## Grounding (agent runs closed by keyword)")[1]
    assert "| 1 | 0.0% | 0.00 |" in grounding  # only the platypus item is closed by keyword


class ThreadRecordingAgent:
    """The real agent graph, noting each run's thread id and output folder."""

    def __init__(self):
        from contextgen.graphs.image_agent import build_graph

        self.graph = build_graph()
        self.runs: list[tuple[str, str]] = []

    def stream(self, graph_input, config, **kwargs):
        self.runs.append((config["configurable"]["thread_id"], kwargs["context"].output_dir))
        return self.graph.stream(graph_input, config, **kwargs)


def test_repeats_run_apart_and_resume_from_a_file_without_repeats(context, tmp_path):
    out = tmp_path / "eval"
    items = load_items(SAMPLE)[:2]
    first = ThreadRecordingAgent()
    harness(context, out, agent=first, options=EvalOptions()).run(items)
    # a results file written before repeats existed: its lines count as repeat 1
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    (out / "results.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "repeat"}) + "\n" for r in lines))
    again = ThreadRecordingAgent()
    records = harness(context, out, agent=again, options=EvalOptions(repeats=3)).run(items)
    assert len(again.runs) == 4  # repeats 2 and 3 of both items; repeat 1 was done
    assert sorted((r["id"], r["repeat"]) for r in records) == sorted(
        (i.id, n) for i in items for n in (1, 2, 3))
    runs = first.runs + again.runs
    assert len({thread for thread, _ in runs}) == 6 and len({folder for _, folder in runs}) == 6
    assert harness(context, out, options=EvalOptions(repeats=3)).pending(items) == []


def test_images_scored_with_wise_rubric_for_agent_and_raw_request_baseline(context, tmp_path):
    generator = SolidColorGenerator()
    backends = fake_backends(context, generator=generator, judge=ScriptedJudge([verdict()]))
    scorer = FakeImageScorer()
    items = load_items(WISE_SAMPLE)
    records = harness(context, tmp_path / "e", backends=backends, image_scorer=scorer,
                      options=EvalOptions(baseline=True)).run(items)
    baseline_prompts = [call["prompt"] for call in generator.calls
                        if call["prompt"] in {i.prompt for i in items}]
    assert sorted(baseline_prompts) == sorted(i.prompt for i in items)
    assert len(scorer.seen) == 6
    assert all(r["image_score"]["wiscore"] == pytest.approx(0.85) for r in records)
    agent = [r for r in records if r["arm"] == "agent"]
    assert all(r["images_generated"] == 1 and r["round_scores"] == [0.9] for r in agent)
    summary = summarize(records)
    assert summary["wise"]["agent"] == pytest.approx(0.85)
    assert summary["table"]["overall"]["agent"]["verified"] == 1.0


# -- reports ---------------------------------------------------------------------------------


def _record(item_id, arm, category, closure, rounds=1, keyword=None, repeat=1):
    return {"id": item_id, "arm": arm, "repeat": repeat, "category": category, "closure": closure,
            "keyword_hit": keyword, "rounds": rounds, "wall_seconds": 1.0, "llm_calls": 2,
            "seconds_per_node": {"analyze_intent": 0.5}, "image_score": None}


def test_summary_tables_deltas_and_plot(tmp_path):
    records = [
        _record("a", "agent", "cultural", True, keyword=True),
        _record("b", "agent", "cultural", True, rounds=2, keyword=False),
        _record("c", "agent", "science", False),
        _record("a", "baseline", "cultural", False, rounds=0, keyword=False),
        _record("b", "baseline", "cultural", True, rounds=0, keyword=False),
        _record("c", "baseline", "science", False, rounds=0),
    ]
    summary = write_reports(records, tmp_path)
    table = summary["table"]
    assert table["cultural"]["agent"]["closure"] == 1.0
    assert table["cultural"]["baseline"]["closure"] == 0.5
    assert table["overall"]["agent"]["keyword_hit"] == 0.5
    markdown = (tmp_path / "summary.md").read_text()
    assert "| cultural | 2 | 100.0% | 50.0% | +50.0 pt |" in markdown
    assert "**overall**" in markdown and "Keyword hit" in markdown and "WiScore" not in markdown
    keyword_table = markdown.split("## Keyword hit")[1]
    assert "| **overall** | 2 | 50.0% | 0.0% | +50.0 pt |" in keyword_table  # items with keywords
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert scaling_curve(records, "closure", 2) == pytest.approx([1 / 3, 2 / 3], abs=1e-3)
    assert "per repeat" not in markdown  # one repeat: nothing to compare


def test_summary_reports_keyword_hit_per_repeat_and_stability(tmp_path):
    records = [
        _record("a", "agent", "cultural", True, keyword=True, repeat=1),
        _record("a", "agent", "cultural", True, keyword=True, repeat=2),
        _record("b", "agent", "cultural", True, keyword=True, repeat=1),
        _record("b", "agent", "cultural", False, keyword=False, repeat=2),
        _record("c", "agent", "science", False, repeat=1),  # no keywords: not measured
        _record("c", "agent", "science", False, repeat=2),
    ]
    summary = write_reports(records, tmp_path)
    assert summary["repeats"]["agent"]["stable"] == {"share": 0.5, "n": 2}
    repeats = (tmp_path / "summary.md").read_text().split("## Keyword hit per repeat")[1]
    for row in ("| 1 | 100.0% (2) |", "| 2 | 50.0% (2) |", "| **all repeats** | 75.0% (4) |",
                "| **stable** | 50.0% (2) |"):
        assert row in repeats, row


def _costed(item_id, candidates, closure, round_scores, images, wall, generate):
    return {"id": item_id, "arm": "agent", "repeat": 1, "candidates": candidates,
            "category": "cultural", "closure": closure, "keyword_hit": None,
            "rounds": len(round_scores), "round_scores": round_scores, "image_score": None,
            "images_generated": images, "images_judged": images, "wall_seconds": wall,
            "generate_seconds": generate, "judge_seconds": 0.5, "llm_calls": 2,
            "input_tokens": 900, "output_tokens": 100, "seconds_per_node": {}}


def test_summary_shows_score_and_cost_per_candidate_count(tmp_path):
    records = [
        _costed("a", 1, True, [0.4, 0.6], 2, 10.0, 4.0),
        _costed("b", 1, False, [0.5], 1, 6.0, 2.0),
        _costed("a", 4, True, [0.8], 4, 12.0, 6.0),
        _costed("b", 4, True, [0.7, 0.9], 8, 20.0, 12.0),
    ]
    summary = write_reports(records, tmp_path)
    assert summary["candidates"][4]["judge_score"] == pytest.approx(0.85)
    markdown = (tmp_path / "summary.md").read_text()
    assert "The agent ran at 1, 4 candidates per round" in markdown
    table = markdown.split("## Candidates per round (agent, means per item)")[1]
    assert ("| candidates | n | judge score | WiScore | closure | images generated | images judged"
            " | wall s | generate s | judge s | LLM calls | input tokens | output tokens | errors |"
            ) in table
    assert "| 1 | 2 | 0.550 | – | 50.0% | 1.5 | 1.5 | 8 | 3 | 0.5 | 2 | 900 | 100 | 0 |" in table
    assert "| 4 | 2 | 0.850 | – | 100.0% | 6 | 6 | 16 | 9 | 0.5 | 2 | 900 | 100 | 0 |" in table
    # within one round, the best score so far; items count once finished or not
    assert scaling_curve(records, "judge_score", 2, candidates=1) == [0.45, 0.55]
    assert scaling_curve(records, "judge_score", 2, candidates=4) == [0.75, 0.85]
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    one_count = write_reports([r for r in records if r["candidates"] == 1], tmp_path)
    assert list(one_count["candidates"]) == [1]
    assert "Candidates per round" not in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize("candidates", ["0", "1,x", "2,9", ","])
def test_eval_refuses_candidate_counts_out_of_bounds(tmp_path, capsys, candidates):
    code = main(["eval", str(SAMPLE), "--out", str(tmp_path / "o"), "--candidates", candidates])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "contextgen: error: --candidates takes counts from 1 to 8 separated by commas, e.g. "
        f"1,2,4; got {candidates!r}")


@pytest.mark.parametrize("repeats", ["0", "11"])
def test_eval_refuses_repeats_out_of_bounds(tmp_path, capsys, repeats):
    code = main(["eval", str(SAMPLE), "--out", str(tmp_path / "o"), "--repeats", repeats])
    error = capsys.readouterr().err
    assert code == 2
    assert error.strip() == f"contextgen: error: --repeats must be between 1 and 10, got {repeats}"


# -- the command, on the real embedded 0.5B model --------------------------------------------


@pytest.mark.slow
def test_eval_cli_on_embedded_model_agent_and_baseline(tmp_path):
    out = tmp_path / "eval"
    env = {
        **os.environ,
        "CONTEXTGEN_DATA_DIR": str(tmp_path / "data"),
        "CONTEXTGEN_EMBEDDED_MODEL": "qwen2.5-coder-0.5b",
        "CONTEXTGEN_GENERATOR": "none",
        "CONTEXTGEN_SEARCH": "none",
        "HF_HUB_OFFLINE": "1",
    }
    for name in ("CONTEXTGEN_CHAT_BASE_URL", "OPENAI_API_KEY", "TAVILY_API_KEY",
                 "CONTEXTGEN_EVAL_JUDGE_MODEL", "CONTEXTGEN_EVAL_JUDGE_BASE_URL",
                 "CONTEXTGEN_JUDGE_MODEL"):
        env.pop(name, None)
    command = [sys.executable, "-m", "contextgen.cli", "eval", str(SAMPLE), "--out", str(out),
               "--baseline", "--limit", "2", "--no-progress"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    records = read_results(out / "results.jsonl")
    assert sorted((r["id"], r["arm"]) for r in records) == sorted(
        (i, a) for i in ("festival-pastry", "uganda-bird") for a in ("agent", "baseline"))
    for record in records:
        assert isinstance(record["closure"], bool) and record["closure_reason"]
        assert record["keyword_hit"] in (True, False)
        assert record["final_prompt"]
    agent = [r for r in records if r["arm"] == "agent"]
    assert all(r["llm_calls"] >= 1 and r["output_tokens"] > 0 for r in agent), agent
    assert "closure" in done.stdout
    assert "Context closure" in (out / "summary.md").read_text()
    assert (out / "scaling.png").stat().st_size > 0
    # resumable: a rerun has nothing left to do
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 run(s) to do" in again.stderr
