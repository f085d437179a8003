"""The bad-input table: every case ends in one clear line (or a documented degraded result),
never a traceback, and nothing already produced is touched.

Each case runs the real CLI in-process with its data and output folders in a temporary folder;
none of them reaches a model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from contextgen.cli import main

# (id, argv, environment, exit code, what the one line must say)
CASES = [
    ("generate-no-request", ["generate"], {}, 2, "give a request"),
    ("generate-blank-request", ["generate", "   "], {}, 2, "give a request"),
    ("generate-request-too-long", ["generate", "x" * 100_000], {}, 2,
     "the request is 100,000 characters; at most 2,000 are read"),
    ("generate-answer-without-thread", ["generate", "a fox", "--answer", "yes"], {}, 2,
     "--answer needs --thread"),
    ("generate-missing-reference", ["generate", "a fox", "--reference", "{tmp}/none.png"], {}, 2,
     "does not exist"),
    ("generate-reference-not-image", ["generate", "a fox", "--reference", "{tmp}/notes.txt"], {},
     2, "not a readable image"),
    ("generate-zero-rounds", ["generate", "a fox", "--max-rounds", "0"], {}, 2,
     "max_rounds (CONTEXTGEN_MAX_ROUNDS) must be between 1 and 10"),
    ("generate-a-million-rounds", ["generate", "a fox", "--max-rounds", "1000000"], {}, 2,
     "must be between 1 and 10, not 1000000"),
    ("generate-rounds-not-a-number", ["generate", "a fox", "--max-rounds", "many"], {}, 2,
     "invalid int value"),
    ("generate-unknown-thread", ["generate", "--thread", "nosuchrun"], {}, 2,
     "no run with thread id 'nosuchrun'"),
    ("generate-out-is-a-file", ["generate", "a fox", "--out", "{tmp}/notes.txt"], {}, 2,
     "cannot hold files"),
    ("env-rounds-not-a-number", ["generate", "a fox"], {"CONTEXTGEN_MAX_ROUNDS": "abc"}, 2,
     "CONTEXTGEN_MAX_ROUNDS must be a whole number, not 'abc'"),
    ("env-zero-steps", ["generate", "a fox"], {"CONTEXTGEN_STEPS": "0"}, 2,
     "steps (CONTEXTGEN_STEPS) must be between 1 and 1000"),
    ("env-huge-width", ["generate", "a fox"], {"CONTEXTGEN_WIDTH": "100000"}, 2,
     "width (CONTEXTGEN_WIDTH) must be between"),
    ("env-threshold-above-one", ["generate", "a fox"], {"CONTEXTGEN_ACCEPT_THRESHOLD": "2"}, 2,
     "accept_threshold (CONTEXTGEN_ACCEPT_THRESHOLD) must be between 0.0 and 1.0"),
    ("env-negative-seed", ["generate", "a fox"], {"CONTEXTGEN_SEED": "-1"}, 2,
     "seed (CONTEXTGEN_SEED) must be between 0"),
    ("env-unknown-search", ["generate", "a fox"], {"CONTEXTGEN_SEARCH": "google"}, 2,
     "search_provider (CONTEXTGEN_SEARCH) must be one of auto, tavily, local, none"),
    ("env-unknown-dtype", ["generate", "a fox"], {"CONTEXTGEN_DTYPE": "int8"}, 2,
     "dtype (CONTEXTGEN_DTYPE) must be one of"),
    ("env-unknown-embedded-model", ["generate", "a fox"], {"CONTEXTGEN_EMBEDDED_MODEL": "gpt-9"},
     2, "embedded_model (CONTEXTGEN_EMBEDDED_MODEL) must be one of"),
    ("env-max-results-zero", ["generate", "a fox"], {"CONTEXTGEN_MAX_RESULTS": "0"}, 2,
     "max_results_per_query (CONTEXTGEN_MAX_RESULTS) must be between 1 and 20"),
    ("corpus-add-missing-folder", ["corpus", "add", "{tmp}/missing"], {}, 2,
     "is not a folder of .txt/.md documents"),
    ("corpus-add-a-file", ["corpus", "add", "{tmp}/notes.txt"], {}, 2,
     "is not a folder of .txt/.md documents"),
    ("corpus-add-no-text", ["corpus", "add", "{tmp}/pictures"], {}, 2,
     "No .txt or .md documents with text"),
    ("corpus-add-only-binary-text", ["corpus", "add", "{tmp}/binary"], {}, 2,
     "No .txt or .md documents with text"),
    ("memory-forget-nothing", ["memory", "forget"], {}, 2, "give one memory id"),
    ("memory-forget-both", ["memory", "forget", "pref-1", "--all"], {}, 2, "give one memory id"),
    ("memory-forget-unknown", ["memory", "forget", "pref-nosuch"], {}, 2,
     "no memory 'pref-nosuch' for user 'default'"),
    ("memory-prefer-blank", ["memory", "prefer", "  "], {}, 2, "the preference is empty"),
    ("runs-show-without-history", ["runs", "show", "abc"], {}, 2, "no runs in"),
    ("runs-replay-prompt-not-generate",
     ["runs", "replay", "abc", "--from", "judge", "--prompt", "x"], {}, 2,
     "--prompt replaces the written prompt: use it with --from generate"),
    ("runs-replay-style-too-early", ["runs", "replay", "abc", "--from", "search", "--style", "x"],
     {}, 2, "--style applies from synthesize_prompt on"),
    ("runs-replay-unknown-node", ["runs", "replay", "abc", "--from", "paint"], {}, 2,
     "invalid choice: 'paint'"),
    ("eval-missing-file", ["eval", "{tmp}/missing.jsonl", "--out", "{tmp}/eval"], {}, 2,
     "is not a file"),
    ("eval-not-json", ["eval", "{tmp}/notes.txt", "--out", "{tmp}/eval"], {}, 2, "notes.txt"),
    ("eval-too-many-repeats", ["eval", "{tmp}/items.jsonl", "--out", "{tmp}/eval", "--repeats",
                               "11"], {}, 2, "--repeats must be between 1 and 10"),
    ("eval-zero-limit", ["eval", "{tmp}/items.jsonl", "--out", "{tmp}/eval", "--limit", "0"], {},
     2, "--limit must be at least 1"),
    ("eval-zero-workers", ["eval", "{tmp}/items.jsonl", "--out", "{tmp}/eval", "--workers", "0"],
     {}, 2, "--workers must be at least 1"),
    ("eval-out-is-a-file", ["eval", "{tmp}/items.jsonl", "--out", "{tmp}/notes.txt"], {}, 2,
     "cannot hold files"),
    ("eval-unknown-category", ["eval", "{tmp}/items.jsonl", "--out", "{tmp}/eval",
                               "--categories", "astronomy"], {}, 2, "astronomy"),
    ("bench-unknown", ["bench", "everything"], {}, 2, "invalid choice: 'everything'"),
    ("bench-out-is-a-file", ["bench", "overhead", "--out", "{tmp}/notes.txt"], {}, 2,
     "cannot hold files"),
    ("bench-bad-sizes", ["bench", "memory", "--sizes", "ten,twenty"], {}, 2,
     "--sizes must be numbers"),
    ("no-command", [], {}, 2, "required: command"),
]


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """Data and outputs in a temporary folder, and the files the cases point at."""
    monkeypatch.setenv("CONTEXTGEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONTEXTGEN_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("CONTEXTGEN_GENERATOR", "none")
    (tmp_path / "notes.txt").write_text("just notes, not an image or a benchmark", "utf-8")
    (tmp_path / "pictures").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "pictures" / "photo.png")
    (tmp_path / "binary").mkdir()
    (tmp_path / "binary" / "data.txt").write_bytes(bytes(range(256)) * 8)
    item = {"id": "fox", "prompt": "a fox", "expected": "a fox", "keywords": ["fox"]}
    (tmp_path / "items.jsonl").write_text(json.dumps(item) + "\n", "utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "env", "code", "says"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_gets_one_clear_line(workspace, monkeypatch, capsys, argv, env, code, says):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = sorted(p.relative_to(workspace) for p in workspace.rglob("*"))
    with pytest.raises(SystemExit) as exited:  # argparse's own errors exit
        sys.exit(main([arg.replace("{tmp}", str(workspace)) for arg in argv]))
    err = capsys.readouterr().err
    assert exited.value.code == code, err
    assert says in err, err
    assert "Traceback" not in err
    message = [line for line in err.splitlines() if line.startswith(("contextgen: ", "usage:"))]
    assert message, err
    produced = ("data", "outputs", "eval")  # folders the command may create, never fill
    after = [p for p in sorted(p.relative_to(workspace) for p in workspace.rglob("*"))
             if p.parts[0] not in produced]
    assert after == [p for p in before if p.parts[0] not in produced]


def test_forty_cases_at_least() -> None:
    assert len(CASES) >= 40 and len({case[0] for case in CASES}) == len(CASES)


def test_a_non_utf8_argument_is_named(workspace, capsys) -> None:
    argument = b"a fox \xff\xfe".decode("utf-8", "surrogateescape")
    assert main(["generate", argument]) == 2
    assert "is not valid UTF-8 text" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["graph"], ["--help"], ["corpus", "status"], ["runs", "list"]])
def test_every_command_survives_a_closed_pipe(workspace, argv) -> None:
    """`contextgen ... | head`: the reader is gone before anything is written; the command
    stops quietly, with no BrokenPipeError traceback."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    command = [str(Path(sys.executable).parent / "contextgen"), *argv]
    try:
        done = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write_end)
    err = done.stderr.decode()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert done.returncode in (0, 2), err
