"""LangSmith tracing: with the user's variables set, runs are traced, and the judge's base64
image and long texts stay out of the traces. The LangSmith endpoint is a local HTTP server
that records what the real `langsmith` client sends; the graph runs in a subprocess so the
process-wide client is created from that environment.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from contextgen.tracing import MAX_TRACE_CHARS, scrub_trace_payload

REPO = Path(__file__).resolve().parent.parent

RUN_WITH_FAKES = """
import sys
sys.path.insert(0, sys.argv[1])
from langchain_core.tracers.langchain import wait_for_all_tracers
from contextgen import Backends, Context, build_graph, use_backends
from contextgen.tools.vision_judge import VisionJudge
from tests.fakes import (PLATYPUS_HIT, ListMemory, ScriptedChatModel, SolidColorGenerator,
                         StaticSearch, intent_reply, synthesis_reply)
context = Context(data_dir=sys.argv[2], output_dir=sys.argv[3], generator_model="none")
chat = ScriptedChatModel(replies={"IntentReply": [intent_reply()],
                                  "SynthesisReply": [synthesis_reply()],
                                  "JudgeReply": [{"score": 9, "problem": "none", "issues": [],
                                                  "missing_knowledge": []}]})
long_hit = PLATYPUS_HIT.model_copy(update={"content": "A platypus " + "x" * 900})
backends = Backends(context, chat_model=chat, search=StaticSearch({"mammal": [long_hit]}),
                    memory=ListMemory(), generator=SolidColorGenerator(),
                    judge=VisionJudge(chat))
with use_backends(backends):
    result = build_graph().invoke({"request": "the egg-laying mammal"}, context=context)
assert result["accepted"], result
wait_for_all_tracers()
"""


class Recorder(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def _reply(self, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # /info and anything else the client asks
        self._reply({})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        Recorder.bodies.append(self.rfile.read(length))
        self._reply({})

    do_PATCH = do_POST

    def log_message(self, *args):
        pass


@pytest.fixture
def langsmith_endpoint():
    Recorder.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_scrubber_trims_images_long_text_and_lists():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 9000}}
    payload = {
        "messages": [{"content": [image]}],
        "evidence": ["e"] * 25,
        "prompt": "p" * 2000,
        "score": 0.9,
    }
    scrubbed = scrub_trace_payload(payload)
    url = scrubbed["messages"][0]["content"][0]["image_url"]["url"]
    assert url.startswith("[image data") and "AAAA" not in url
    assert len(scrubbed["evidence"]) == 11 and "15 more items" in scrubbed["evidence"][-1]
    assert len(scrubbed["prompt"]) < MAX_TRACE_CHARS + 40 and scrubbed["score"] == 0.9


def test_traces_reach_langsmith_without_images_or_long_texts(langsmith_endpoint, tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "LANGSMITH_TRACING": "true",
        "LANGSMITH_ENDPOINT": langsmith_endpoint,
        "LANGSMITH_API_KEY": "lsv2-test-key",
        "LANGSMITH_PROJECT": "contextgen-test",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN_WITH_FAKES,
            str(REPO),
            str(tmp_path / "data"),
            str(tmp_path / "out"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    sent = b"".join(Recorder.bodies)
    assert b"analyze_intent" in sent and b"synthesize_prompt" in sent and b"judge" in sent
    assert b"lsv2-test-key" not in sent
    payloads = traced_inputs_and_outputs(Recorder.bodies)
    assert payloads, "no run inputs or outputs reached the endpoint"
    assert b"image data" in payloads  # the judge's image was there, and was replaced
    assert b";base64," not in payloads
    assert b"x" * (MAX_TRACE_CHARS + 1) not in payloads  # the long search result was cut


def traced_inputs_and_outputs(bodies: list[bytes]) -> bytes:
    """The `inputs` and `outputs` parts of the client's multipart uploads (not the
    `serialized` description of the fake chat model, which holds its scripted replies)."""
    kept = []
    for body in bodies:
        for part in re.split(rb"\r\n--[0-9a-f]+", b"\r\n" + body):
            header, _, content = part.partition(b"\r\n\r\n")
            name = re.search(rb'name="([^"]+)"', header)
            if name and name.group(1).rsplit(b".", 1)[-1] in (b"inputs", b"outputs"):
                kept.append(content)
    return b"\n".join(kept)
