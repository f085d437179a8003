"""Best-of-N: CONTEXTGEN_CANDIDATES images per round, one seed each, the judge keeps the best.

The graph runs on in-process fakes (a per-seed judge), and against a local images API server
through the real `openai` client, where the candidates come from one request with `n`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from contextgen.graphs.context import Context
from contextgen.graphs.image_agent import build_graph
from contextgen.graphs.state import Verdict
from contextgen.run_record import RunSummary
from contextgen.runner import run_agent
from contextgen.tools.backends import use_backends
from contextgen.tools.errors import BackendUnavailable
from contextgen.tools.images_api_generator import ImagesApiGenerator, ImagesApiSettings
from tests.fake_images_server import FakeImages, start_fake_images, stop_fake_images

REQUEST = "the egg-laying mammal of eastern Australia"


class SeedJudge:
    """Scores each image by its seed (`scores`, default 0.1); accepts at `accept` or more.
    Seeds in `fail_on` make it raise, as an unreachable VLM does."""

    def __init__(self, scores: dict[int, float], accept: float = 0.8, fail_on=()):
        self.scores, self.accept, self.fail_on = scores, accept, set(fail_on)
        self.seen: list[int] = []

    def judge(self, request, package, image, references=()) -> Verdict:
        self.seen.append(image.seed)
        if image.seed in self.fail_on:
            raise BackendUnavailable("the judge model is unreachable")
        score = self.scores.get(image.seed, 0.1)
        return Verdict(round=image.round, score=score, accepted=score >= self.accept,
                       problem="none" if score >= self.accept else "prompt")


def run(context: Context, backends) -> RunSummary:
    with use_backends(backends):
        outcome = run_agent(build_graph(), {"request": REQUEST}, context=context,
                            config={"configurable": {"thread_id": "best-of-n"}})
    return RunSummary.from_outcome(outcome, context, "best-of-n")


def test_candidates_setting_is_bounded_and_per_run(monkeypatch, tmp_path):
    monkeypatch.setenv("CONTEXTGEN_CANDIDATES", "4")
    assert Context(data_dir=str(tmp_path)).candidates == 4
    monkeypatch.setenv("CONTEXTGEN_CANDIDATES", "9")
    with pytest.raises(ValueError, match="candidates .CONTEXTGEN_CANDIDATES. must be between 1"):
        Context(data_dir=str(tmp_path))
    monkeypatch.delenv("CONTEXTGEN_CANDIDATES")
    one, four = Context(candidates=1), Context(candidates=4)
    assert one.backend_key == four.backend_key  # a per-run option: the same backends


def test_each_round_makes_n_seeded_candidates_and_the_best_goes_on(context, fake_backends):
    context = replace(context, candidates=3, seed=10)
    # Round 1 (seeds 10-12): candidate 2 is best but rejected; round 2 (13-15): 15 is accepted.
    judge = SeedJudge({10: 0.3, 11: 0.6, 12: 0.2, 13: 0.4, 15: 0.9})
    backends = fake_backends(judge=judge)
    run_record = run(context, backends)

    assert [call["seed"] for call in backends.generator.calls] == [10, 11, 12, 13, 14, 15]
    assert sorted(judge.seen) == [10, 11, 12, 13, 14, 15]
    first, second = run_record.rounds
    assert [c.image.candidate for c in first.candidates] == [1, 2, 3]
    assert [c.verdict.score for c in first.candidates] == [0.3, 0.6, 0.2]
    assert (first.image.seed, first.verdict.score, first.verdict.candidate) == (11, 0.6, 2)
    assert first.verdict.next_step == "rewrite"
    assert (second.image.seed, second.verdict.accepted) == (15, True)
    assert Path(first.image.path).name == "round-1-candidate-2.png"
    assert run_record.accepted and run_record.final_image == second.image
    assert run_record.cost["images_generated"] == 6 and run_record.cost["images_judged"] == 6
    assert run_record.cost["generate_seconds"] > 0


def test_an_edit_round_edits_the_kept_candidate(context, fake_backends):
    from tests.fakes import SolidColorGenerator

    context = replace(context, candidates=2)
    flaw = {0: 0.2, 1: 0.6}  # round 1 keeps seed 1; round 2 (seeds 2, 3) accepts seed 3

    class FlawJudge(SeedJudge):
        def judge(self, request, package, image, references=()):
            verdict = super().judge(request, package, image, references)
            return verdict if verdict.accepted else verdict.model_copy(
                update={"problem": "local_flaw"})

    backends = fake_backends(generator=SolidColorGenerator(can_edit=True),
                             judge=FlawJudge(flaw | {3: 0.9}))
    record = run(context, backends)
    kept = record.rounds[0].image
    edits = [call for call in backends.generator.calls if call["mode"] == "edit"]
    assert [call["input_images"] for call in edits] == [[kept.path], [kept.path]]
    assert record.final_image.edited_from == kept.path and record.final_image.seed == 3


def test_a_candidate_the_judge_cannot_score_is_recorded_and_another_kept(context, fake_backends):
    context = replace(context, candidates=2, max_rounds=1)
    record = run(context, fake_backends(judge=SeedJudge({1: 0.5}, fail_on={0})))
    [only] = record.rounds
    assert [c.verdict.judged for c in only.candidates] == [False, True]
    assert only.image.seed == 1 and only.verdict.judged
    assert any("1 of 2 candidates are unjudged" in notice for notice in record.notices)


def test_without_a_judge_the_first_candidate_is_kept_unjudged(context, fake_backends):
    context = replace(context, candidates=3)
    record = run(context, fake_backends(judge=None))
    [only] = record.rounds
    assert len(only.candidates) == 3 and only.image == only.candidates[0].image
    assert only.verdict.judged is False and record.final_image == only.image
    assert record.cost["images_generated"] == 3 and record.cost["images_judged"] == 0


def test_one_candidate_records_no_candidates(context, fake_backends):
    record = run(context, fake_backends())
    assert [r.candidates for r in record.rounds] == [[]]
    assert Path(record.final_image.path).name == "round-1.png"
    assert record.cost["images_generated"] == 1


@pytest.fixture
def images_server() -> Iterator[FakeImages]:
    state = start_fake_images()
    yield state
    stop_fake_images(state)


def test_images_api_candidates_come_from_one_request_with_n(
    context, fake_backends, images_server, monkeypatch
):
    monkeypatch.delenv("CONTEXTGEN_GENERATOR_API_KEY", raising=False)
    context = replace(context, candidates=3, max_rounds=1, seed=5)
    generator = ImagesApiGenerator(ImagesApiSettings(
        base_url=images_server.url, model="Qwen/Qwen-Image", width=32, height=32))
    record = run(context, fake_backends(generator=generator, judge=SeedJudge({5: 0.5})))

    [request] = images_server.image_requests()
    assert (request.fields["n"], request.fields["seed"]) == (3, 5)
    [only] = record.rounds
    images = [c.image for c in only.candidates]
    assert [i.candidate for i in images] == [1, 2, 3]
    assert len({i.sha256 for i in images}) == 3  # three different images
    assert all(Path(i.path).is_file() and (i.width, i.height) == (32, 32) for i in images)
    assert {i.seed for i in images} == {5}  # the server seeds the batch from the request's seed


def test_images_api_edit_sends_n_with_the_input_images(images_server, tmp_path, monkeypatch):
    monkeypatch.delenv("CONTEXTGEN_GENERATOR_API_KEY", raising=False)
    from tests.fake_images_server import solid_png

    source = tmp_path / "round-1.png"
    source.write_bytes(solid_png(16, 16, b"\x10\x20\x30"))
    generator = ImagesApiGenerator(ImagesApiSettings(
        base_url=images_server.url, edit_model="Qwen/Qwen-Image-Edit-2509", width=16, height=16))
    outs = [str(tmp_path / f"edit-{n}.png") for n in (1, 2)]
    edited = generator.generate_batch("make it red", "", [7, 8], outs, 2, mode="edit",
                                      input_images=[str(source)])
    [request] = images_server.image_requests()
    assert request.path == "/v1/images/edits" and request.fields["n"] == "2"
    assert [e.edited_from for e in edited] == [str(source)] * 2
    assert [e.path for e in edited] == outs
