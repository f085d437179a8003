"""The VLM judge's message and verdict mapping, and the context's environment fallbacks."""

from __future__ import annotations

import pytest
from PIL import Image

from contextgen.graphs.context import Context
from contextgen.graphs.state import Fact, ImageArtifact, PromptPackage
from contextgen.tools.vision_judge import VisionJudge
from tests.fakes import ScriptedChatModel


def test_judge_sends_image_and_facts_and_applies_threshold(tmp_path):
    path = tmp_path / "round-1.png"
    Image.new("RGB", (8, 8), "red").save(path)
    image = ImageArtifact(
        path=str(path), sha256="", width=8, height=8, seed=0, round=1, prompt="p", model="m"
    )
    package = PromptPackage(
        prompt="a platypus", facts=[Fact(statement="It has a bill.", source="reasoning")]
    )
    vlm = ScriptedChatModel(
        replies={
            "JudgeReply": [
                {
                    "score": 6,
                    "problem": "local_flaw",
                    "issues": ["odd tail"],
                    "missing_knowledge": [],
                }
            ]
        }
    )
    verdict = VisionJudge(vlm, accept_threshold=0.7).judge("the mammal", package, image)
    assert verdict.score == 0.6 and not verdict.accepted and verdict.problem == "local_flaw"
    content = vlm.calls[0][1][-1].content
    assert "It has a bill." in content[0]["text"]
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_context_reads_environment_for_defaults(monkeypatch):
    monkeypatch.setenv("CONTEXTGEN_MAX_ROUNDS", "5")
    monkeypatch.setenv("CONTEXTGEN_INTERACTIVE", "yes")
    monkeypatch.setenv("CONTEXTGEN_ACCEPT_THRESHOLD", "0.5")
    context = Context()
    assert (context.max_rounds, context.interactive, context.accept_threshold) == (5, True, 0.5)
    assert Context(max_rounds=2).max_rounds == 2  # explicit values win


def test_context_rejects_bad_values(monkeypatch):
    monkeypatch.setenv("CONTEXTGEN_MAX_ROUNDS", "many")
    with pytest.raises(ValueError, match="CONTEXTGEN_MAX_ROUNDS"):
        Context()
    monkeypatch.delenv("CONTEXTGEN_MAX_ROUNDS")
    with pytest.raises(ValueError, match="max_rounds"):
        Context(max_rounds=0)


@pytest.mark.parametrize(
    ("given", "expected"),
    [({"max_rounds": "3"}, ("max_rounds", 3)), ({"interactive": "no"}, ("interactive", False)),
     ({"accept_threshold": 1}, ("accept_threshold", 1.0))],
)
def test_context_values_sent_as_text_are_parsed(given, expected):
    name, value = expected
    assert getattr(Context(**given), name) == value


@pytest.mark.parametrize(
    ("given", "message"),
    [({"max_rounds": "many"}, "max_rounds must be a whole number, not 'many'"),
     ({"max_rounds": 2.5}, "max_rounds must be a whole number"),
     ({"max_rounds": True}, "max_rounds must be a whole number"),
     ({"interactive": "maybe"}, "interactive must be true or false"),
     ({"chat_model": 5}, "chat_model must be text")],
)
def test_context_values_of_the_wrong_type_are_refused_by_name(given, message):
    with pytest.raises(ValueError, match=message):
        Context(**given)
