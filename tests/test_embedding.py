"""Embedding: `from contextgen import build_graph` inside another LangGraph app (the examples).

The RemoteGraph example runs against a real server in test_langgraph_server.py.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver

from contextgen import build_graph, use_backends
from tests.fakes import PLATYPUS_HIT

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
REQUEST = "the egg-laying mammal of eastern Australia"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # type hints are resolved through the module
    spec.loader.exec_module(module)
    return module


def test_input_and_output_schemas_are_small():
    agent = build_graph()
    assert set(agent.get_input_jsonschema()["properties"]) == {
        "request", "user_id", "reference_images"
    }
    assert set(agent.get_output_jsonschema()["properties"]) == {
        "prompt_package", "final_image", "accepted", "verdicts", "notices"
    }
    assert agent.checkpointer is None and agent.store is None  # the server brings its own


def test_graph_as_subgraph_node(context, fake_backends):
    app = load_example("embed_in_langgraph_app").build_poster_app()
    assert "contextgen" in app.get_graph().nodes
    with use_backends(fake_backends()) as backends:
        result = app.invoke({"request": REQUEST}, context=context)
    assert "platypus" in result["prompt_package"].prompt.lower()
    assert result["prompt_package"].facts[0].source == PLATYPUS_HIT.source
    assert Path(result["final_image"].path).is_file()
    assert result["verdicts"][0].accepted
    assert result["caption"] == "The subject is: Platypus."
    assert sorted(backends.search.queries) == sorted(
        ["semiaquatic egg-laying mammal", REQUEST, "egg-laying mammal Australia"]
    )


def test_subgraph_checkpoints_with_the_host_app(context, fake_backends, tmp_path):
    module = load_example("embed_in_langgraph_app")
    saver = SqliteSaver(sqlite3.connect(tmp_path / "host.sqlite", check_same_thread=False))
    builder_app = module.build_poster_app().builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "host-1"}}
    with use_backends(fake_backends()):
        builder_app.invoke({"request": REQUEST}, config, context=context)
    subgraph_states = builder_app.get_state(config, subgraphs=True)
    assert subgraph_states.values["caption"]
    namespaces = {c.config["configurable"]["checkpoint_ns"] for c in saver.list(None)}
    assert any(ns.startswith("contextgen:") for ns in namespaces)  # the subgraph's own steps


def test_graph_called_from_a_node(context, fake_backends):
    app = load_example("embed_in_langgraph_app").build_caller_app()
    with use_backends(fake_backends()):
        result = app.invoke({"request": REQUEST}, context=context)
    assert result["final_image"].round == 1
    assert result["caption"] == "The subject is: Platypus."
