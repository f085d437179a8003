"""Checkpoints in PostgreSQL (`CONTEXTGEN_DATABASE_URL`): a real server from Debian's packages on
a loopback port (tests/postgres_server.py), the CLI's `runs list|show|replay` in-process on the
fakes, and a `generate` killed mid-image that resumes in a new process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from contextgen.benchmarks.api_servers import (
    Latencies,
    api_environment,
    start_api_servers,
    stop_api_servers,
)
from contextgen.checkpoints import open_checkpointer, open_postgres_checkpointer, recent_threads
from contextgen.cli import main
from contextgen.graphs.image_agent import build_graph
from tests.postgres_server import running_postgres
from tests.real_backends import BIN, offline_env
from tests.test_runs_command import cli  # noqa: F401 (the fixture: the CLI on the fakes)

REQUEST = "the egg-laying mammal of eastern Australia"


@pytest.fixture(scope="module")
def postgres():
    with running_postgres() as server:
        yield server


@pytest.fixture
def database_url(postgres) -> str:
    """A fresh, empty database on the module's server."""
    return postgres.create_database(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def postgres_cli(request, database_url, monkeypatch):
    """test_runs_command's `cli` (in-process, on the fakes) with checkpoints in `database_url`."""
    monkeypatch.setenv("CONTEXTGEN_DATABASE_URL", database_url)
    return request.getfixturevalue("cli")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://someone:s3cret@127.0.0.1:1/runs", "Connection refused"),
        ("postgresql://127.0.0.1:5432:99/runs", 'invalid integer value "5432:99"'),
        ("mysql://someone@127.0.0.1/runs", "is not a PostgreSQL URL"),
    ],
)
def test_a_bad_or_unreachable_database_is_one_line(url, says, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONTEXTGEN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONTEXTGEN_DATABASE_URL", url)
    for argv in (["runs", "list"], ["generate", "a fox", "--out", str(tmp_path / "run")]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and says in err
        assert "CONTEXTGEN_DATABASE_URL" in err and "s3cret" not in err
    assert not (tmp_path / "checkpoints.sqlite").exists()  # no silent fallback to SQLite


def test_list_show_and_replay_on_postgres(postgres_cli, context, database_url, tmp_path, capsys):
    run = postgres_cli
    assert run("generate", REQUEST, "--out", str(tmp_path / "first")) == 0
    assert run("generate", "a platypus at dusk, egg-laying mammal", "--out",
               str(tmp_path / "second")) == 0
    first, second = (json.loads((tmp_path / name / "run.json").read_text())["thread_id"]
                     for name in ("first", "second"))
    capsys.readouterr()

    assert run("runs", "list") == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listing] == [second, first]  # newest first
    assert all("finished" in line for line in listing)

    assert run("runs", "show", first) == 0
    shown = capsys.readouterr().out
    assert "next: synthesize_prompt" in shown and "A platypus swimming" in shown

    assert run("runs", "replay", first, "--from", "synthesize_prompt", "--style",
               "watercolor", "--out", str(tmp_path / "replay")) == 0
    replayed = json.loads((tmp_path / "replay" / "run.json").read_text())
    assert replayed["path"] == ["synthesize_prompt", "generate", "judge", "remember"]
    assert "watercolor" in replayed["final_prompt"]["prompt"]

    assert not (Path(context.data_dir) / "checkpoints.sqlite").exists()
    saver = open_checkpointer(context.data_dir, database_url)
    assert recent_threads(saver, 10) == [second, first]  # the replay forked, no new run
    agent = build_graph(checkpointer=saver)
    head = agent.get_state({"configurable": {"thread_id": first}})
    assert head.values["intent"].style == "watercolor" and head.values["accepted"]


def test_processes_starting_together_set_up_the_tables_once(database_url):
    savers, errors = [], []

    def open_one() -> None:
        try:
            savers.append(open_postgres_checkpointer(database_url))
        except Exception as error:  # noqa: BLE001 (collected, asserted below)
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(savers) == 8
    with savers[0]._cursor() as cursor:
        versions = [row["v"] for row in cursor.execute("SELECT v FROM checkpoint_migrations")]
    assert versions == sorted(set(versions)) and len(versions) == len(savers[0].MIGRATIONS)


@pytest.mark.slow
def test_killed_run_resumes_on_postgres(database_url, tmp_path):
    """The real CLI in subprocesses against local chat, search and images servers; killed
    while the image server holds the request, resumed without redoing a finished node."""
    servers = start_api_servers(Latencies(chat=0.0, search=0.0, images=600.0))
    data_dir, out_dir = tmp_path / "data", tmp_path / "run"
    env = {**offline_env(data_dir, out_dir), **api_environment(servers),
           "CONTEXTGEN_DATABASE_URL": database_url}
    try:
        process = subprocess.Popen([str(BIN / "contextgen"), "generate", REQUEST, "--out",
                                    str(out_dir)], env=env, stderr=subprocess.PIPE, text=True)
        thread_id = re.search(r"^run (\w+) ->", process.stderr.readline()).group(1)
        deadline = time.monotonic() + 300
        while servers.counts[("images", "images")] == 0 and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.1)
        assert servers.counts[("images", "images")] == 1  # generating when killed
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        process.stderr.close()

        agent = build_graph(checkpointer=open_checkpointer(str(data_dir), database_url))
        config = {"configurable": {"thread_id": thread_id}}
        assert agent.get_state(config).next == ("generate",)
        history_before = len(list(agent.get_state_history(config)))
        chat_calls_before = sum(n for (api, _), n in servers.counts.items() if api == "chat")

        servers.latencies.images = 0.0
        resumed = subprocess.run(
            [str(BIN / "contextgen"), "generate", "--thread", thread_id, "--out", str(out_dir)],
            env=env, capture_output=True, text=True, timeout=600,
        )
    finally:
        stop_api_servers(servers)
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads((out_dir / "run.json").read_text())
    assert record["status"] == "finished"
    # The record covers the whole run, though only generate, judge and remember ran again.
    assert record["path"][0] == "analyze_intent" and record["path"].count("generate") == 1
    assert record["path"][-3:] == ["generate", "judge", "remember"]
    assert [timing["node"] for timing in record["node_timings"]] == record["path"][-3:]
    assert servers.counts[("chat", "IntentReply")] == 1  # analysis ran once, before the kill
    assert servers.counts[("chat", "JudgeReply")] == 1
    assert sum(n for (api, _), n in servers.counts.items() if api == "chat") == (
        chat_calls_before + 1)  # only the judge after the kill
    assert servers.counts[("images", "images")] == 2
    assert len(list(agent.get_state_history(config))) == history_before + 3
    assert not (data_dir / "checkpoints.sqlite").exists()


def test_commits_are_asynchronous_unless_the_url_sets_options(database_url):
    def setting(url: str) -> str:
        saver = open_postgres_checkpointer(url)
        try:
            return saver.conn.execute("SHOW synchronous_commit").fetchone()["synchronous_commit"]
        finally:
            saver.conn.close()

    assert setting(database_url) == "off"
    assert setting(f"{database_url}?options=-csynchronous_commit%3Don") == "on"
