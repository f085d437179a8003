"""A run killed during generation resumes from its last checkpoint without redoing finished
nodes: the real CLI in subprocesses, the SQLite checkpointer, the embedded 0.5B model, the
local corpus and a tiny diffusers pipeline made slow with many denoising steps.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from contextgen.checkpoints import open_checkpointer
from contextgen.graphs.image_agent import build_graph
from tests.real_backends import (
    BIN,
    offline_env,
)

pytestmark = pytest.mark.slow

REQUEST = "the egg-laying mammal of eastern Australia, swimming at dawn"
KILL_DEADLINE_S = 600


def test_killed_run_resumes_without_redoing_finished_nodes(embedded_default):
    data_dir, generator, out_dir = embedded_default
    slow = offline_env(data_dir, out_dir, generator, CONTEXTGEN_STEPS="1000")
    process = subprocess.Popen(
        [str(BIN / "contextgen"), "generate", REQUEST, "--out", str(out_dir)],
        env=slow,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    generating = threading.Event()

    def read_progress() -> None:
        for line in process.stderr:
            lines.append(line)
            if "generating round 1" in line:
                generating.set()

    reader = threading.Thread(target=read_progress, daemon=True)
    reader.start()
    deadline = time.monotonic() + KILL_DEADLINE_S
    while not generating.wait(1) and process.poll() is None and time.monotonic() < deadline:
        pass
    assert generating.is_set(), "".join(lines)
    time.sleep(0.5)  # a few denoising steps in
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    reader.join(timeout=10)
    assert process.returncode == -signal.SIGKILL
    thread_id = re.search(r"^run (\w+) ->", lines[0]).group(1)
    assert not (out_dir / "run.json").exists()  # the killed process wrote nothing more

    agent = build_graph(checkpointer=open_checkpointer(str(data_dir)))
    config = {"configurable": {"thread_id": thread_id}}
    assert agent.get_state(config).next == ("generate",)  # saved after synthesize_prompt
    history_before = len(list(agent.get_state_history(config)))

    resumed = subprocess.run(
        [str(BIN / "contextgen"), "generate", "--thread", thread_id, "--out", str(out_dir)],
        env=offline_env(data_dir, out_dir, generator),  # 2 steps now: finishes quickly
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads((out_dir / "run.json").read_text())
    assert record["thread_id"] == thread_id and record["status"] == "finished"
    # The record covers the whole run; the resumed invocation redid nothing before generate.
    assert record["path"][-3:] == ["generate", "judge", "remember"]
    assert record["path"][0] == "analyze_intent" and record["path"].count("generate") == 1
    assert "synthesize_prompt" in record["path"]
    assert len(record["node_timings"]) == 3  # timed in this invocation only
    assert record["llm"]["total"]["calls"] == 0  # no model call at all after the kill
    assert Path(record["final_image"]["path"]).is_file()
    assert (out_dir / "report.html").is_file()

    history = list(agent.get_state_history(config))
    assert len(history) == history_before + 3
    assert sum("analyze_intent" in s.next for s in history) == 1
    assert sum("synthesize_prompt" in s.next for s in history) == 1
