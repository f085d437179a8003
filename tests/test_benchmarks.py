"""`contextgen bench`: every benchmark runs and reports its fields (none is a timed test)."""

from __future__ import annotations

import json

import pytest

from contextgen.benchmarks import generator, llm, memory_scale, overhead, research
from contextgen.cli import main


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
    result = generator.run(devices=["cpu"])
    entry = result["devices"]["cpu"]
    assert entry["first_seconds"] > 0 and entry["second_seconds"] > 0
    assert entry["pipeline_loads"] == 1 and entry["reused"] is True


def test_bench_command_writes_json(tmp_path, capsys):
    assert main(["bench", "overhead", "--runs", "2", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "overhead.json").read_text())
    assert result["benchmark"] == "overhead" and "no_checkpointer" in result
    assert "ms/run" in capsys.readouterr().out


def test_bench_command_rejects_bad_sizes(capsys):
    assert main(["bench", "memory", "--sizes", "ten"]) == 2
    assert "--sizes" in capsys.readouterr().err


@pytest.mark.slow
def test_llm_benchmark_on_embedded_small_model(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTEXTGEN_DATA_DIR", str(tmp_path / "data"))
    for name in ("CONTEXTGEN_CHAT_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    result = llm.run(model="qwen2.5-coder-0.5b", requests=1)
    assert result["model"] == "qwen2.5-coder-0.5b"
    assert result["calls_per_request"] >= 2
    assert result["output_tokens_per_second"] > 0
    assert {"analyze_intent", "synthesize_prompt"} <= set(result["per_node_per_request"])
    assert isinstance(result["within_target"], bool)
    assert llm.describe(result)
