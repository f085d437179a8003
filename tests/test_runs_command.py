"""`contextgen runs list|show|replay`: checkpointed runs, inspected and forked (time travel).

The CLI runs in-process on the SQLite checkpointer with the in-process fakes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contextgen.checkpoints import open_checkpointer
from contextgen.cli import main
from contextgen.graphs.image_agent import build_graph
from contextgen.tools.backends import use_backends
from tests.fakes import synthesis_reply

SAMPLE = Path(__file__).parent / "data" / "eval_sample.jsonl"


def echo_style_synthesis(messages):
    """A synthesis reply whose prompt carries the style the model was given."""
    style = next(line for line in messages[-1].content.splitlines() if line.startswith("Style:"))
    return synthesis_reply(f"A platypus swimming in a creek at dawn, {style}")


@pytest.fixture
def cli(context, fake_backends, tmp_path, monkeypatch):
    """Run `contextgen ...` in-process on fakes, with data and outputs in tmp_path."""
    monkeypatch.setenv("CONTEXTGEN_DATA_DIR", context.data_dir)
    monkeypatch.setenv("CONTEXTGEN_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("CONTEXTGEN_GENERATOR", "none")  # the fake generator is handed in
    monkeypatch.setenv("CONTEXTGEN_PROMPT_WRITER", "model")  # the scripted model writes it
    backends = fake_backends(syntheses=[echo_style_synthesis])

    def run(*argv: str) -> int:
        with use_backends(backends):
            return main(list(argv))

    run.backends = backends
    return run


def test_list_show_and_replay_with_a_new_style(cli, context, tmp_path, capsys):
    assert cli("generate", "the egg-laying mammal of eastern Australia", "--out",
               str(tmp_path / "first")) == 0
    first = json.loads((tmp_path / "first" / "run.json").read_text())
    thread_id = first["thread_id"]
    assert (tmp_path / "first" / "report.html").is_file()
    capsys.readouterr()

    assert cli("runs", "list") == 0
    listing = capsys.readouterr().out
    assert thread_id in listing and "finished" in listing

    assert cli("runs", "show", thread_id) == 0
    shown = capsys.readouterr().out
    assert "next: synthesize_prompt" in shown and "A platypus swimming" in shown

    calls_before = [name for name, _ in cli.backends.chat_model.calls]
    assert cli("runs", "replay", thread_id, "--from", "synthesize_prompt",
               "--style", "watercolor") == 0
    replay_dir = tmp_path / "outputs" / f"{thread_id}-replay-1"
    replayed = json.loads((replay_dir / "run.json").read_text())
    assert replayed["path"] == ["synthesize_prompt", "generate", "judge", "remember"]
    assert replayed["replay"]["from_node"] == "synthesize_prompt"
    assert "watercolor" in replayed["final_prompt"]["prompt"]
    assert "watercolor" not in first["final_prompt"]["prompt"]
    new_calls = [name for name, _ in cli.backends.chat_model.calls][len(calls_before):]
    assert new_calls == ["SynthesisReply"]  # analysis and search were not redone
    assert (replay_dir / "report.html").is_file()

    # The original branch is still in the history; the thread's head is the fork.
    agent = build_graph(checkpointer=open_checkpointer(context.data_dir))
    config = {"configurable": {"thread_id": thread_id}}
    head = agent.get_state(config)
    assert head.values["intent"].style == "watercolor" and head.values["accepted"]
    prompts = {s.values["prompt_package"].prompt for s in agent.get_state_history(config)
               if s.values.get("prompt_package")}
    assert len(prompts) == 2


def test_replay_from_generate_with_a_given_prompt(cli, tmp_path, capsys):
    cli("generate", "the egg-laying mammal of eastern Australia", "--out", str(tmp_path / "a"))
    thread_id = json.loads((tmp_path / "a" / "run.json").read_text())["thread_id"]
    assert cli("runs", "replay", thread_id, "--from", "generate", "--prompt",
               "A platypus, pencil sketch", "--out", str(tmp_path / "b")) == 0
    replayed = json.loads((tmp_path / "b" / "run.json").read_text())
    assert replayed["path"] == ["generate", "judge", "remember"]
    assert replayed["rounds"][0]["image"]["prompt"] == "A platypus, pencil sketch"
    assert cli.backends.generator.calls[-1]["prompt"] == "A platypus, pencil sketch"


def test_no_store_and_unknown_run_are_usage_errors(cli, tmp_path, capsys):
    assert cli("runs", "list") == 2
    assert "start one with contextgen generate" in capsys.readouterr().err
    cli("generate", "the egg-laying mammal of eastern Australia", "--out", str(tmp_path / "a"))
    capsys.readouterr()
    assert cli("runs", "show", "nope") == 2
    assert "contextgen runs list" in capsys.readouterr().err
    assert cli("runs", "replay", "nope", "--from", "generate") == 2


def test_bad_reference_images_are_usage_errors_before_any_work(cli, tmp_path, capsys):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not a picture")
    for reference, message in [(tmp_path / "missing.png", "does not exist"),
                               (not_an_image, "is not a readable image")]:
        assert cli("generate", "a fox", "--reference", str(reference)) == 2
        assert message in capsys.readouterr().err
    assert cli.backends.chat_model.calls == []  # refused before the agent ran


def test_an_output_folder_that_cannot_hold_files_is_refused_before_any_work(cli, tmp_path, capsys,
                                                                            monkeypatch):
    a_file = tmp_path / "taken"
    a_file.write_text("a file, not a folder")
    assert cli("generate", "a fox", "--out", str(a_file / "run")) == 2
    assert "cannot hold files" in capsys.readouterr().err
    assert cli("eval", str(SAMPLE), "--out", str(a_file)) == 2
    assert "choose another folder" in capsys.readouterr().err
    monkeypatch.setenv("CONTEXTGEN_OUTPUT_DIR", str(a_file))
    assert cli("generate", "a fox") == 2
    assert "the run folder (CONTEXTGEN_OUTPUT_DIR)" in capsys.readouterr().err
    assert cli.backends.chat_model.calls == []


def test_ctrl_c_during_generation_keeps_finished_steps_for_resume(cli, tmp_path, capsys):
    generator = cli.backends.generator
    real_generate = generator.generate

    def interrupted(**kwargs):
        generator.generate = real_generate  # only the first attempt is interrupted
        raise KeyboardInterrupt

    generator.generate = interrupted
    out = tmp_path / "run"
    assert cli("generate", "the egg-laying mammal of eastern Australia", "--out", str(out)) == 130
    err = capsys.readouterr().err
    thread_id = err.split("resume with: contextgen generate --thread ")[1].split()[0]
    partial = json.loads((out / "run.json").read_text())  # what finished is kept
    assert partial["status"] == "incomplete" and partial["final_prompt"]["prompt"]
    assert "synthesize_prompt" in partial["path"] and (out / "report.html").is_file()
    calls_before = len(cli.backends.chat_model.calls)

    assert cli("generate", "--thread", thread_id, "--out", str(out)) == 0
    assert len(cli.backends.chat_model.calls) == calls_before  # intent and prompt not redone
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "finished" and record["final_image"]
    assert record["path"][: len(partial["path"])] == partial["path"]  # both invocations


def test_a_damaged_checkpoint_file_is_reported_and_kept(cli, context, capsys):
    damaged = Path(context.data_dir) / "checkpoints.sqlite"
    damaged.parent.mkdir(parents=True, exist_ok=True)
    damaged.write_bytes(b"not a database")
    for argv in (("runs", "list"), ("generate", "a fox")):
        assert cli(*argv) == 1
        assert "is not a readable checkpoint database" in capsys.readouterr().err
    assert damaged.read_bytes() == b"not a database"
    assert cli.backends.chat_model.calls == []
