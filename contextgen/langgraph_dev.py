"""A real `langgraph dev` server in a subprocess: offline (no analytics, no version check, no
LangSmith tracing), on a free port of 127.0.0.1, stopped by its process id. The concurrency
benchmark and the SDK integration tests start theirs here.

`langgraph dev` runs LangGraph's in-memory runtime: threads, runs and checkpoints live in the
server process with its own checkpointer (pickled under `.langgraph_api` in its working folder),
not in contextgen's SQLite or PostgreSQL store. Backends are chosen by the environment given.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# The installed package's graphs by module name, so a config can live in any folder.
SERVED_GRAPHS = {"contextgen": "contextgen.graphs.image_agent:graph"}
OFFLINE_ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
START_TIMEOUT_S = 120.0


@dataclass
class LanggraphServer:
    """A started `langgraph dev`: where it listens, its process, its log and its job limit."""

    url: str
    process: subprocess.Popen
    log_path: Path
    n_jobs_per_worker: int

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's log (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")[-chars:]


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(folder: Path, graphs: Mapping[str, str] = SERVED_GRAPHS) -> Path:
    """A langgraph.json in `folder` serving `graphs` (module:variable) with the offline env."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"dependencies": ["."], "graphs": dict(graphs), "env": OFFLINE_ENV,
              "python_version": "3.11"}
    path = folder / "langgraph.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _langgraph_cli() -> str:
    beside_python = Path(sys.executable).parent / "langgraph"
    found = str(beside_python) if beside_python.exists() else shutil.which("langgraph")
    if not found:
        raise RuntimeError("langgraph-cli is not installed: pip install 'langgraph-cli[inmem]'")
    return found


def _answers(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/ok", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def start_langgraph_server(config: Path, env: Mapping[str, str], log_path: Path,
                           n_jobs_per_worker: int = 1,
                           timeout_s: float = START_TIMEOUT_S) -> LanggraphServer:
    """Start `langgraph dev --no-browser --no-reload` from `config`'s folder (its paths are
    relative to the working folder) with `env` plus the offline settings, and wait until it
    answers /ok. `n_jobs_per_worker` is how many runs it executes at once (`langgraph dev`
    runs one unless told). Raises RuntimeError with the log's end when it does not start."""
    port = free_port()
    log = log_path.open("w")
    process = subprocess.Popen(
        [_langgraph_cli(), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
         "--port", str(port), "--config", str(config),
         "--n-jobs-per-worker", str(n_jobs_per_worker)],
        cwd=config.parent, env={**env, **OFFLINE_ENV}, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()  # the child holds its own descriptor
    server = LanggraphServer(f"http://127.0.0.1:{port}", process, log_path, n_jobs_per_worker)
    started = time.perf_counter()
    while not _answers(server.url):
        if process.poll() is not None or time.perf_counter() - started > timeout_s:
            stop_langgraph_server(server)
            raise RuntimeError(f"langgraph dev did not start:\n{server.log_tail()}")
        time.sleep(0.2)
    return server


def stop_langgraph_server(server: LanggraphServer) -> None:
    """SIGTERM the server's process, SIGKILL it when it has not exited after 20 s."""
    process = server.process
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def running_langgraph_server(config: Path, env: Mapping[str, str], log_path: Path,
                             n_jobs_per_worker: int = 1,
                             timeout_s: float = START_TIMEOUT_S) -> Iterator[LanggraphServer]:
    """`start_langgraph_server` for the `with` block, stopped on the way out."""
    server = start_langgraph_server(config, env, log_path, n_jobs_per_worker, timeout_s)
    try:
        yield server
    finally:
        stop_langgraph_server(server)
