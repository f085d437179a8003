"""`contextgen generate` end to end on the embedded default: the real CLI in a subprocess, the
embedded llama.cpp 0.5B model, the local corpus in Chroma, Chroma memory, a tiny diffusers
pipeline and the SQLite checkpointer. Asserts the run folder and run.json."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.real_backends import (
    BIN,
    offline_env,
)

pytestmark = pytest.mark.slow

REQUEST = "the semiaquatic egg-laying mammal endemic to eastern Australia, swimming in a creek"
SECRET = "sk-test-secret-that-must-not-leak"


def test_generate_writes_image_run_record_and_report(embedded_default):
    data_dir, generator, out_dir = embedded_default
    env = offline_env(
        data_dir, out_dir, generator, CONTEXTGEN_CHAT_API_KEY=SECRET, CONTEXTGEN_USER="ada"
    )
    done = subprocess.run(
        [str(BIN / "contextgen"), "generate", REQUEST, "--out", str(out_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Prompt:" in done.stdout and str(out_dir / "run.json") in done.stdout
    assert "analyze_intent: done" in done.stderr and "generating round 1" in done.stderr

    record = json.loads((out_dir / "run.json").read_text())
    assert record["request"] == REQUEST and record["user_id"] == "ada"
    assert record["status"] == "finished"
    assert record["intent"]["subject"]
    assert record["path"][0] == "analyze_intent" and record["path"][-1] == "remember"
    assert {"synthesize_prompt", "generate", "judge"} <= set(record["path"])
    assert set(record["seconds_per_node"]) >= {"analyze_intent", "synthesize_prompt", "generate"}
    # The analysis always asks the model; the subject choice only when candidates compete.
    assert record["llm"]["per_node"]["analyze_intent"]["calls"] >= 1
    assert record["llm"]["total"]["calls"] >= 1
    assert record["llm"]["total"]["output_tokens"] > 0
    for item in record["evidence"]:  # whatever was found names where it came from
        assert item["source"].startswith(("corpus:", "http")) and item["provider"]
    final_prompt = record["final_prompt"]
    assert final_prompt["prompt"] and record["rounds"][0]["prompt"] == final_prompt["prompt"]
    for fact in final_prompt["facts"]:
        assert fact["source"] == "reasoning" or fact["source"].startswith(
            ("corpus:", "http", "memory:")
        )

    image = record["final_image"]
    png = Path(image["path"])
    assert png.parent == out_dir and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert hashlib.sha256(png.read_bytes()).hexdigest() == image["sha256"]
    assert (image["width"], image["height"]) == (32, 32)
    assert record["rounds"][0]["verdict"]["judged"] is False  # no VLM configured
    assert any("unjudged" in notice for notice in record["notices"])

    report = (out_dir / "report.html").read_text()
    assert png.name in report
    for text in (report, (out_dir / "run.json").read_text(), done.stdout, done.stderr):
        assert SECRET not in text

    listed = subprocess.run(
        [str(BIN / "contextgen"), "memory", "list"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0 and "Past request" in listed.stdout
