"""`contextgen bench`: every benchmark runs and reports its fields (none is a timed test)."""

from __future__ import annotations

import json

import pytest

from contextgen.benchmarks import concurrency, generator, llm, memory_scale, overhead, research
from contextgen.benchmarks.api_servers import Latencies, start_api_servers, stop_api_servers
from contextgen.benchmarks.backends import instant_backends
from contextgen.checkpoints import open_checkpointer, recent_threads
from contextgen.cli import main
from contextgen.graphs.image_agent import build_graph
from contextgen.tools.backends import use_backends
from tests.postgres_server import running_postgres


def test_overhead_reports_both_configurations():
    result = overhead.run(runs=3, warmup=1)
    for name in ("no_checkpointer", "sqlite_checkpointer"):
        entry = result[name]
        assert entry["invoke"]["mean_ms"] > 0 and entry["run_agent"]["mean_ms"] > 0
        assert isinstance(entry["within_target"], bool)
    assert len(overhead.describe(result)) == 2


def test_research_reports_ratio_to_slowest_and_sum():
    result = research.run(repeats=1, scale=0.2)
    for entry in result.values():
        assert entry["slowest_s"] < entry["sum_s"]
        assert entry["research_wall_s"] >= entry["slowest_s"] * 0.9
        assert {"ratio_to_slowest", "ratio_to_sum", "parallel"} <= set(entry)
    assert research.describe(result)


def test_memory_reports_latency_disk_and_embedding_speed():
    result = memory_scale.run(sizes=(200, 500), queries=5, embedding_documents=16)
    assert set(result["sizes"]) == {"200", "500"}
    for size, entry in result["sizes"].items():
        assert entry["memories"] == int(size)
        assert 0 < entry["recall_p50_ms"] <= entry["recall_p95_ms"]
        assert entry["disk_mb"] > 0
    assert result["embedding"]["docs_per_second"] > 0
    assert isinstance(result["within_target"], bool)
    assert len(memory_scale.describe(result)) == 4


def test_generator_reports_first_and_second_times_and_one_load():
    result = generator.run(devices=["cpu"], api_requests=4, api_latency_s=0.5)
    entry = result["devices"]["cpu"]
    assert entry["first_seconds"] > 0 and entry["second_seconds"] > 0
    assert entry["pipeline_loads"] == 1 and entry["reused"] is True
    assert entry["dtype"] == "float32"
    api = result["images_api"]
    assert api["images"] == api["served"] == 4
    assert api["max_in_flight"] > 1  # the requests overlapped
    assert api["wall_seconds"] < 4 * 0.5  # faster than one after another
    assert api["images_per_minute"] > 60 / 0.5
    assert len(generator.describe(result)) == 2 + (not result["gpu"])


def test_max_in_flight_counts_overlapping_spans():
    assert generator.max_in_flight([(0, 1), (0.5, 2), (1.5, 3), (4, 5)]) == 2
    assert generator.max_in_flight([(0, 1), (1, 2)]) == 1  # one ends as the next starts


def test_bench_command_writes_json(tmp_path, capsys):
    assert main(["bench", "overhead", "--runs", "2", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "overhead.json").read_text())
    assert result["benchmark"] == "overhead" and "no_checkpointer" in result
    assert "ms/run" in capsys.readouterr().out


def test_bench_command_rejects_bad_sizes(capsys):
    assert main(["bench", "memory", "--sizes", "ten"]) == 2
    assert "--sizes" in capsys.readouterr().err


def assert_four_runs_each_counted_once(cells: dict) -> None:
    """A store's cells at concurrency 1 and 4: each of the 4 runs finished once, with its image
    and only its own checkpoints, and the speed fields are filled."""
    assert set(cells) == {"1", "4"}
    for cell in cells.values():
        assert cell["verified"], cell
        assert cell["finished"] == 4 and cell["lost"] == 0 and cell["duplicated"] == 0
        assert cell["images"] == 4 and cell["foreign_checkpoints"] == 0
        assert len(cell["checkpoints_per_run"]) == 1 and cell["checkpoints_per_run"][0] > 3
        assert cell["runs_per_minute"] > 0 and 0 < cell["p50_s"] <= cell["p95_s"]


@pytest.fixture(scope="module")
def postgres_url():
    with running_postgres() as server:
        yield server.create_database("bench")


def test_concurrency_counts_every_run_once_on_sqlite_and_postgres(postgres_url):
    fast = Latencies(chat=0.02, search=0.02, images=0.02)
    result = concurrency.run(runs=4, concurrency=(1, 4), database_url=postgres_url,
                             latencies=fast, via="process")
    assert set(result["stores"]) == {"sqlite", "postgres"}
    for cells in result["stores"].values():
        assert_four_runs_each_counted_once(cells)
    assert len(concurrency.describe(result)) == 2 + 4
    assert recent_threads(open_checkpointer("", postgres_url), 10) == []  # cleaned up


def test_concurrency_check_sees_a_checkpoint_of_another_run(context, tmp_path):
    saver = open_checkpointer(str(tmp_path))
    config = {"configurable": {"thread_id": "t-1"}}
    with use_backends(instant_backends(context)):
        build_graph(checkpointer=saver).invoke({"request": "a platypus"}, config,
                                               context=context)
    count, foreign = concurrency._own_checkpoints(saver, "t-1", "a platypus")
    assert count > 3 and foreign == 0
    _, foreign = concurrency._own_checkpoints(saver, "t-1", "a mooncake")
    assert foreign >= count - 1  # all but the empty first checkpoint hold the request


def test_overhead_measures_postgres_when_configured(postgres_url):
    result = overhead.run(runs=2, warmup=1, database_url=postgres_url)
    assert result["postgres_checkpointer"]["invoke"]["mean_ms"] > 0
    assert len(overhead.describe(result)) == 3
    assert recent_threads(open_checkpointer("", postgres_url), 10) == []


@pytest.mark.slow
def test_concurrency_through_langgraph_dev_counts_every_run_once():
    """The real `langgraph dev` server, driven with the SDK (about 15 s)."""
    fast = Latencies(chat=0.02, search=0.02, images=0.02)
    result = concurrency.run(runs=4, concurrency=(1, 4), latencies=fast, via="server")
    assert set(result["stores"]) == {"langgraph dev"}
    assert result["langgraph_dev"]["n_jobs_per_worker"] == 4
    assert result["langgraph_dev"]["thread_pool"] >= 5
    assert_four_runs_each_counted_once(result["stores"]["langgraph dev"])
    lines = concurrency.describe(result)
    assert len(lines) == 2 + 2 + 2 and "--n-jobs-per-worker 4" in lines[-2]


def test_server_gets_the_benchmark_backends_not_the_callers(monkeypatch, tmp_path):
    monkeypatch.setenv("CONTEXTGEN_DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("CONTEXTGEN_CHROMA_URL", "http://elsewhere:8000")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-the-benchmark")
    servers = start_api_servers(Latencies())
    try:
        env = concurrency._server_environment(servers, tmp_path)
    finally:
        stop_api_servers(servers)
    assert env["CONTEXTGEN_CHAT_BASE_URL"] == f"{servers.url}/v1"
    assert env["CONTEXTGEN_GENERATOR_BASE_URL"] == f"{servers.url}/v1"
    assert env["TAVILY_API_BASE_URL"] == servers.url
    assert env["CONTEXTGEN_DATA_DIR"] == str(tmp_path / "data")
    assert not {"CONTEXTGEN_DATABASE_URL", "CONTEXTGEN_CHROMA_URL", "OPENAI_API_KEY"} & set(env)


def test_bench_command_rejects_bad_concurrency(capsys):
    for value in ("0", "eight"):
        assert main(["bench", "concurrency", "--concurrency", value]) == 2
        assert "--concurrency" in capsys.readouterr().err


@pytest.mark.slow
def test_llm_benchmark_on_embedded_small_model(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTEXTGEN_DATA_DIR", str(tmp_path / "data"))
    for name in ("CONTEXTGEN_CHAT_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    result = llm.run(model="qwen2.5-coder-0.5b", requests=1)
    assert result["model"] == "qwen2.5-coder-0.5b"
    # the analysis always calls the model; the prompt is composed on the embedded model, which
    # is asked again only to choose (a subject among several, a change of state)
    assert result["calls_per_request"] >= 1
    assert result["output_tokens_per_second"] > 0
    assert "analyze_intent" in result["per_node_per_request"]
    assert isinstance(result["within_target"], bool)
    assert llm.describe(result)
