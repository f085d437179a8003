"""Shared fixtures: offline environment, a context pointing at temporary folders, and backends
made of in-process fakes."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("LANGGRAPH_CLI_NO_ANALYTICS", "1")

from contextgen.graphs.context import Context  # noqa: E402
from contextgen.tools.backends import Backends  # noqa: E402
from tests import fakes  # noqa: E402


@pytest.fixture
def context(tmp_path) -> Context:
    """A context whose data and outputs live in the test's temporary folder; the (scripted) chat
    model writes the prompt, as a configured endpoint would."""
    return Context(
        data_dir=str(tmp_path / "data"),
        output_dir=str(tmp_path / "out"),
        max_rounds=3,
        generator_model="none",
        prompt_writer="model",
    )


@pytest.fixture
def fake_backends(context):
    """Make `Backends` of in-process fakes for `context`.

    By default: a scripted chat model (one intent needing search, one grounded synthesis, no
    change of state),
    search that knows the platypus, an empty `ListMemory`, a solid-colour generator and a judge
    that accepts. `intents`, `syntheses` and `verdicts` script the chat model and the judge;
    any backend given by name (`search=`, `judge=None`, ...) replaces its default.
    """

    def make(intents=None, syntheses=None, verdicts=None, **given) -> Backends:
        chat = fakes.ScriptedChatModel(
            replies={
                "IntentReply": intents or [fakes.intent_reply()],
                "SynthesisReply": syntheses or [fakes.synthesis_reply()],
                "OutcomeReply": [{"choice": 1}],  # a change of state: none
            },
            calls=[],
        )
        defaults = {
            "chat_model": chat,
            "search": fakes.StaticSearch({"mammal": [fakes.PLATYPUS_HIT]}),
            "memory": fakes.ListMemory(),
            "generator": fakes.SolidColorGenerator(),
            "judge": fakes.ScriptedJudge(verdicts or [fakes.verdict()]),
        }
        return Backends(context, **(defaults | given))

    return make


@pytest.fixture
def embedded_default(tmp_path):
    """A data folder with the 0.5B model and a tiny corpus, a tiny generator, a run folder."""
    from tests.real_backends import prepare_data_dir, remove_models, save_tiny_generator

    data_dir = prepare_data_dir(tmp_path / "data")
    generator = save_tiny_generator(tmp_path / "tiny-qwen-image")
    yield data_dir, generator, tmp_path / "run"
    remove_models(data_dir)
