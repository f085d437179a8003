"""Memory and corpus on a Chroma server (`CONTEXTGEN_CHROMA_URL`): chromadb's own `chroma run` on
a loopback port with its data in a temporary folder, used by the real CLI and by two processes
writing at once, and still holding everything after the server restarts on the same folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.real_backends import BIN, DOCUMENTS, free_port, offline_env

pytestmark = pytest.mark.slow

START_DEADLINE_S = 60
# One writer: remembers three preferences, waits for the other writer, then recalls them all.
WRITER = """
import json, sys, time
from pathlib import Path
from contextgen.memory.store import MemoryStore

url, name, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
store = MemoryStore(folder / "unused", url=url)
for number in range(3):
    store.remember_preference("team", f"{name} prefers palette number {number}")
(folder / f"{name}.done").touch()
deadline = time.monotonic() + 120
while len(list(folder.glob("*.done"))) < 2 and time.monotonic() < deadline:
    time.sleep(0.1)
print(json.dumps(sorted(m.text for m in store.recall("team", "preferred palette", k=10))))
"""


class ChromaServer:
    """`chroma run --path FOLDER` on a fixed loopback port; stop and start again at will."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(BIN / "chroma"), "run", "--path", str(self.folder), "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "chroma run exited at start"
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"chroma run did not answer within {START_DEADLINE_S} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def chroma_server(tmp_path):
    server = ChromaServer(tmp_path / "chroma")
    server.start()
    yield server
    server.stop()


def contextgen(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run([str(BIN / "contextgen"), *argv], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_memory_and_corpus_live_on_the_chroma_server(chroma_server, tmp_path):
    data_dir = tmp_path / "data"
    env = {**offline_env(data_dir, tmp_path / "outputs"),
           "CONTEXTGEN_CHROMA_URL": chroma_server.url}
    documents = tmp_path / "documents"
    documents.mkdir()
    for name, text in DOCUMENTS.items():
        (documents / name).write_text(text)

    added = contextgen(env, "corpus", "add", str(documents))
    assert "Indexed 2 new passage(s)" in added
    assert contextgen(env, "corpus", "status").startswith(f"2 passages in {chroma_server.url}")

    writers_dir = tmp_path / "writers"
    writers_dir.mkdir()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, chroma_server.url, name,
                                 str(writers_dir)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
               for name in ("alice", "bob")]
    expected = sorted(f"{name} prefers palette number {n}" for name in ("alice", "bob")
                      for n in range(3))
    for writer in writers:
        out, err = writer.communicate(timeout=600)
        assert writer.returncode == 0, err
        assert json.loads(out) == expected  # each process recalls the other's memories too

    def remembered() -> list[str]:
        listing = contextgen(env, "memory", "list", "--user", "team")
        return sorted(line.split("]  ", 1)[1] for line in listing.splitlines())

    def top_hit_source() -> str:
        code = ("import sys; from contextgen.tools.search.local_corpus import LocalCorpus; "
                "print(LocalCorpus('unused', url=sys.argv[1]).search('egg-laying mammal')[0]"
                ".source)")
        done = subprocess.run([sys.executable, "-c", code, chroma_server.url], env=env,
                              capture_output=True, text=True, timeout=600, check=True)
        return done.stdout.strip()

    platypus_passage = f"corpus:{documents / 'platypus.md'}#0"
    assert remembered() == expected
    assert top_hit_source() == platypus_passage

    chroma_server.stop()
    chroma_server.start()  # same folder, same port
    platypus_passage = f"corpus:{documents / 'platypus.md'}#0"
    assert remembered() == expected
    assert top_hit_source() == platypus_passage
    assert not (data_dir / "memory").exists() and not (data_dir / "corpus").exists()
