"""Secrets stay out of every artefact: keys planted in every variable the project reads never
appear in run.json, report.html, the checkpoints, the memory store or the logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from contextgen.benchmarks.api_servers import (
    Latencies,
    api_environment,
    start_api_servers,
    stop_api_servers,
)
from contextgen.run_record import without_credentials

PLANTED = {
    "OPENAI_API_KEY": "sk-planted-openai-0001",
    "CONTEXTGEN_CHAT_API_KEY": "sk-planted-chat-0002",
    "CONTEXTGEN_JUDGE_API_KEY": "sk-planted-judge-0003",
    "CONTEXTGEN_EVAL_JUDGE_API_KEY": "sk-planted-evaljudge-0004",
    "CONTEXTGEN_GENERATOR_API_KEY": "sk-planted-images-0005",
    "TAVILY_API_KEY": "tvly-planted-0006",
    "LANGSMITH_API_KEY": "lsv2-planted-0007",
}


def test_no_planted_key_reaches_an_artefact(tmp_path) -> None:
    servers = start_api_servers(Latencies(chat=0.0, search=0.0, images=0.0))
    try:
        env = {**os.environ, **api_environment(servers), **PLANTED,
               "CONTEXTGEN_DATA_DIR": str(tmp_path / "data"), "CONTEXTGEN_MAX_ROUNDS": "1",
               "LANGSMITH_TRACING": "false"}
        command = [str(Path(sys.executable).parent / "contextgen"), "-v", "generate",
                   "the egg-laying mammal of eastern Australia", "--out", str(tmp_path / "run")]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    finally:
        stop_api_servers(servers)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "run.json").is_file() and (tmp_path / "data").is_dir()
    artefacts = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "checkpoints.sqlite" for p in artefacts)
    assert any(p.name == "chroma.sqlite3" for p in artefacts)  # the run was remembered
    for key in PLANTED.values():
        assert key not in done.stdout and key not in done.stderr
        for artefact in artefacts:
            assert key.encode() not in artefact.read_bytes(), f"{key} in {artefact}"


def test_urls_are_recorded_without_credentials() -> None:
    assert without_credentials("postgresql://app:hunter22@db.internal:5432/runs") == (
        "postgresql://db.internal:5432/runs"
    )
    assert without_credentials("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert without_credentials(3) == 3
