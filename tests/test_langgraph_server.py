"""The graph under a real `langgraph dev` server, driven with langgraph-sdk and RemoteGraph.

The server runs in its own process with real backends chosen by environment variables: the
embedded llama.cpp 0.5B model, the local corpus over a tiny documents folder, and a tiny
random Qwen-Image pipeline (2 steps, 32x32). Offline: no analytics, no version check, no
LangSmith tracing. The server is stopped by its process id.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from contextgen.langgraph_dev import running_langgraph_server
from tests.real_backends import (
    REPO,
    offline_env,
    prepare_data_dir,
    remove_models,
    save_tiny_generator,
)

pytestmark = pytest.mark.slow

GRAPH_ID = "contextgen"
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`langgraph dev --no-browser` on a free loopback port; yields its URL and folders."""
    root = tmp_path_factory.mktemp("server")
    data_dir = prepare_data_dir(root / "data")
    generator = save_tiny_generator(root / "tiny-qwen-image")
    out_dir = root / "out"
    env = offline_env(data_dir, out_dir, generator)
    started = time.perf_counter()
    try:
        with running_langgraph_server(REPO / "langgraph.json", env, root / "server.log") as dev:
            TIMINGS["server_start_s"] = round(time.perf_counter() - started, 2)
            yield {"url": dev.url, "out_dir": out_dir}
    finally:
        remove_models(data_dir)
        print(f"\nlanggraph dev timings: {json.dumps(TIMINGS)}")


@pytest.fixture(scope="module")
def client(server):
    from langgraph_sdk import get_sync_client

    return get_sync_client(url=server["url"])


@pytest.fixture(scope="module")
def assistant_id(client) -> str:
    assistants = client.assistants.search(graph_id=GRAPH_ID)
    assert assistants, "the server lists no contextgen assistant"
    return assistants[0]["assistant_id"]


@pytest.fixture(scope="module")
def streamed_run(client, assistant_id):
    """One full run, streamed with updates and custom progress events."""
    thread_id = client.threads.create()["thread_id"]
    started = time.perf_counter()
    parts = [
        (part.event, part.data)
        for part in client.runs.stream(
            thread_id,
            assistant_id,
            input={"request": "the egg-laying mammal of eastern Australia, swimming at dawn"},
            stream_mode=["updates", "custom"],
        )
    ]
    TIMINGS["full_streamed_run_s"] = round(time.perf_counter() - started, 2)
    return thread_id, parts


def test_assistant_graph_and_schemas(client, assistant_id):
    graph = client.assistants.get_graph(assistant_id)
    edges = {(edge["source"], edge["target"]) for edge in graph["edges"]}
    assert {
        ("__start__", "analyze_intent"), ("analyze_intent", "clarify"),
        ("analyze_intent", "search"), ("analyze_intent", "recall_memory"),
        ("clarify", "analyze_intent"), ("search", "synthesize_prompt"),
        ("recall_memory", "synthesize_prompt"), ("synthesize_prompt", "generate"),
        ("generate", "judge"), ("judge", "remember"), ("judge", "search"),
        ("judge", "synthesize_prompt"), ("judge", "generate"), ("remember", "__end__"),
    } <= edges  # every routing branch is drawn
    schemas = client.assistants.get_schemas(assistant_id)
    assert set(schemas["input_schema"]["properties"]) == {"request", "user_id", "reference_images"}
    assert {"prompt_package", "final_image", "verdicts"} <= set(
        schemas["output_schema"]["properties"]
    )
    form = schemas["context_schema"]["properties"]  # Studio's assistant configuration form
    assert form["max_rounds"]["default"] == 3 and form["max_rounds"]["title"] == "Max Rounds"
    assert form["search_provider"]["enum"] == ["auto", "tavily", "local", "none"]
    assert all(field.get("description") for field in form.values())


def test_streamed_run_reports_progress_and_outputs(streamed_run, server):
    _, parts = streamed_run
    assert not [data for event, data in parts if event == "error"], parts
    updates = [data for event, data in parts if event == "updates"]
    custom = [data for event, data in parts if event == "custom"]
    ran = [node for update in updates for node in update]
    for node in ("analyze_intent", "synthesize_prompt", "generate", "judge", "remember"):
        assert node in ran
    progress_nodes = {event["node"] for event in custom}
    assert {"analyze_intent", "synthesize_prompt", "recall_memory"} <= progress_nodes
    steps = [(e["step"], e["total"]) for e in custom if e["node"] == "generate" and "step" in e]
    assert steps == [(1, 2), (2, 2)]  # denoising steps of the tiny pipeline
    final = next(u["remember"] for u in updates if "remember" in u)
    image = Path(final["final_image"]["path"])
    assert image.is_file() and image.parent == server["out_dir"]
    package = next(u["synthesize_prompt"] for u in updates if "synthesize_prompt" in u)
    assert len(package["prompt_package"]["prompt"]) >= 10


def test_thread_history_has_every_step(client, streamed_run):
    thread_id, _ = streamed_run
    history = client.threads.get_history(thread_id, limit=50)
    assert history[0]["next"] == []  # newest first: finished
    waiting_for = [node for state in history for node in state["next"]]
    for node in ("analyze_intent", "synthesize_prompt", "generate", "judge", "remember"):
        assert node in waiting_for
    latest = history[0]["values"]
    assert latest["intent"]["subject"] and latest["final_image"]["round"] == 1


def test_clarify_interrupt_and_resume(client, assistant_id, streamed_run):
    """Ask again on the thread with an ambiguous intent: the run stops at `clarify`, and
    `Command(resume=...)` carries the answer back into intent analysis."""
    thread_id, _ = streamed_run
    intent = {"subject": "a jaguar at speed", "route": "direct", "ambiguous": True,
              "clarifying_question": "The car or the cat?"}
    parts = [(p.event, p.data) for p in client.runs.stream(
        thread_id, assistant_id,
        command={"update": {"request": "a jaguar at speed", "intent": intent}, "goto": "clarify"},
        context={"interactive": True}, stream_mode=["updates"],
    )]
    interrupts = [i for e, d in parts if e == "updates" for i in d.get("__interrupt__", [])]
    assert interrupts[0]["value"]["question"] == "The car or the cat?"

    parts = [(p.event, p.data) for p in client.runs.stream(
        thread_id, assistant_id, command={"resume": "the cat"}, context={"interactive": True},
        interrupt_before=["search", "recall_memory"], stream_mode=["updates"],
    )]
    assert not [d for e, d in parts if e == "error"], parts
    ran = [node for e, d in parts if e == "updates" for node in d]
    assert ran.index("clarify") < ran.index("analyze_intent")
    state = client.threads.get_state(thread_id)
    assert state["values"]["clarification"] == "the cat"
    assert set(state["next"]) <= {"search", "recall_memory"} and state["next"]


def test_remote_graph_as_a_node(server):
    from tests.test_embedding import load_example

    started = time.perf_counter()
    app = load_example("remote_graph").build_remote_app(server["url"])
    result = app.invoke({"request": "a mooncake on a plate, as a product photo"})
    TIMINGS["remote_graph_run_s"] = round(time.perf_counter() - started, 2)
    assert result["prompt_package"]["prompt"]
    assert Path(result["final_image"]["path"]).is_file()
    assert result["summary"].endswith(result["final_image"]["path"])


def test_corpus_builder_graph_indexes_a_folder(client, tmp_path):
    """The second graph in langgraph.json: Studio users index their documents from it."""
    [builder] = client.assistants.search(graph_id="corpus_builder")
    edges = {(e["source"], e["target"]) for e in client.assistants.get_graph(
        builder["assistant_id"])["edges"]}
    assert {("index_folders", "seed_wikipedia"), ("index_folders", "__end__")} <= edges
    folder = tmp_path / "lanterns"
    folder.mkdir()
    (folder / "lantern.md").write_text("# Sky lantern\n\nPaper lanterns rise at night.")
    thread_id = client.threads.create()["thread_id"]
    parts = [(p.event, p.data) for p in client.runs.stream(
        thread_id, builder["assistant_id"],
        input={"folders": [str(folder), str(tmp_path / "missing")]},
        stream_mode=["values", "custom"],
    )]
    assert not [d for e, d in parts if e == "error"], parts
    report = [d for e, d in parts if e == "values"][-1]
    assert report["indexed"] == 1 and report["removed"] == 0 and report["passages"] >= 3
    assert "missing" in report["notices"][0]
    progress = [d for e, d in parts if e == "custom"]
    assert progress[-1]["node"] == "index_folders" and progress[-1]["done"] == 1
