"""Bad input through the SDK: a real `langgraph dev` server, driven with langgraph-sdk.

Every case ends in one clear line in the run's error (never a traceback), or in the documented
degraded result: an over-long request is cut with a notice. The server runs the embedded 0.5B
model with no search and no generator, so only the over-long case reaches the model, and it
stops after intent analysis. One server for the module, stopped by its process id.
"""

from __future__ import annotations

import pytest

from contextgen.graphs.state import MAX_REQUEST_CHARS
from contextgen.langgraph_dev import running_langgraph_server
from tests.real_backends import REPO, offline_env, prepare_data_dir, remove_models

pytestmark = pytest.mark.slow

# (id, input, context, what the run's one-line error says)
REFUSED = [
    ("missing-request", {"user_id": "ann"}, None, "the input has no 'request'"),
    ("request-not-text", {"request": 42}, None, "'request' must be text, not int"),
    ("request-a-list", {"request": ["a fox"]}, None, "'request' must be text, not list"),
    ("empty-request", {"request": "  \n "}, None, "the request is empty"),
    ("punctuation-only", {"request": "?!?"}, None, "no words and no nameable symbols"),
    ("a-million-rounds", {"request": "a fox"}, {"max_rounds": 1_000_000},
     "max_rounds (CONTEXTGEN_MAX_ROUNDS) must be between 1 and 10, not 1000000"),
    ("zero-candidates", {"request": "a fox"}, {"candidates": 0},
     "candidates (CONTEXTGEN_CANDIDATES) must be between 1 and 8, not 0"),
    ("unknown-search", {"request": "a fox"}, {"search_provider": "google"},
     "search_provider (CONTEXTGEN_SEARCH) must be one of auto, tavily, local, none"),
]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    """`langgraph dev` with the embedded 0.5B model, no search, no generator."""
    root = tmp_path_factory.mktemp("sdk-bad-input")
    data_dir = prepare_data_dir(root / "data", corpus=False)
    env = offline_env(data_dir, root / "out", "none", CONTEXTGEN_SEARCH="none")
    try:
        with running_langgraph_server(REPO / "langgraph.json", env, root / "server.log") as dev:
            yield dev.url
    finally:
        remove_models(data_dir)


@pytest.fixture(scope="module")
def client(server_url):
    from langgraph_sdk import get_sync_client

    return get_sync_client(url=server_url)


def stream_run(client, graph_input, context=None, **kwargs) -> tuple[str, list[tuple]]:
    """A run on a new thread: its thread id and (event, data) parts."""
    thread_id = client.threads.create()["thread_id"]
    parts = [
        (part.event, part.data)
        for part in client.runs.stream(
            thread_id, "contextgen", input=graph_input, context=context,
            stream_mode=["updates"], **kwargs,
        )
    ]
    return thread_id, parts


@pytest.mark.parametrize(
    ("graph_input", "context", "says"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_bad_input_ends_the_run_with_one_clear_line(client, graph_input, context, says) -> None:
    thread_id, parts = stream_run(client, graph_input, context)
    [error] = [data for event, data in parts if event == "error"]
    message = error["message"]
    assert says in message, error
    assert "\n" not in message and "Traceback" not in message and "File \"" not in message
    assert client.threads.get(thread_id)["status"] == "error"
    assert not [data for event, data in parts if event == "updates" and "synthesize_prompt" in data]


def test_overlong_request_is_cut_and_unknown_context_keys_are_dropped(client) -> None:
    """The degraded results (one model call: the run stops after intent analysis): the request
    is cut with a notice, and the server drops context keys outside `Context`."""
    request = "the egg-laying mammal of eastern Australia, swimming at dawn " * 2000
    thread_id, parts = stream_run(
        client, {"request": request}, {"colour": "red", "max_rounds": 2},
        interrupt_before=["search", "recall_memory"],
    )
    assert not [data for event, data in parts if event == "error"], parts
    values = client.threads.get_state(thread_id)["values"]
    assert len(values["request"]) <= MAX_REQUEST_CHARS and request.startswith(values["request"])
    assert any("only the first 2,000 were read" in notice for notice in values["notices"])
    assert values["intent"]["subject"]  # the model analysed the cut request


def test_unknown_input_keys_are_ignored(client) -> None:
    """Keys outside the input schema never reach the state: the documented degraded result."""
    thread_id, parts = stream_run(
        client, {"request": "", "prompt_package": {"prompt": "injected"}, "colour": "red"}
    )
    [error] = [data for event, data in parts if event == "error"]
    assert "the request is empty" in error["message"]
    values = client.threads.get_state(thread_id)["values"]
    assert "colour" not in values and not values.get("prompt_package")
