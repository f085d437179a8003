"""The embedded llama.cpp server (``xllamacpp``): one per model and process, started lazily.

``embedded_base_url`` assembles the GGUF (see ``weights``), starts ``xllamacpp.Server`` on an
ephemeral loopback port, waits for ``/health`` and returns an OpenAI-compatible base URL for
``ChatOpenAI(base_url=..., api_key="local")``. Servers stop at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contextgen.tools.errors import ModelUnavailable
from contextgen.tools.local_llm.weights import ensure_gguf, get_model

log = logging.getLogger(__name__)

DEFAULT_N_CTX = 4096
DEFAULT_START_TIMEOUT_S = 120.0

# Loopback health checks must not go through an HTTP proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class _Running:
    server: Any  # xllamacpp.Server; stops when the last reference goes
    address: str  # e.g. http://127.0.0.1:40589
    pid: int


_lock = threading.Lock()
_servers: dict[str, _Running] = {}
_inherited: list[_Running] = []  # from a parent before fork: never torn down in this process


def _healthy(address: str) -> bool:
    try:
        with _opener.open(f"{address}/health", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def default_threads() -> int:
    """One core less than the machine has (at least 1).

    llama.cpp's threads synchronise at every layer, so when another process takes a core an
    all-cores server stalls: on 2 busy cores, 2 threads gave ~1 token/s where 1 gave ~7.
    """
    return max(1, (os.cpu_count() or 2) - 1)


def _start(model_name: str, gguf: Path, n_ctx: int, n_threads: int, timeout_s: float) -> _Running:
    try:
        import xllamacpp
    except ImportError as exc:
        raise ModelUnavailable(
            "The embedded LLM needs xllamacpp: pip install xllamacpp, "
            "or configure an OpenAI-compatible endpoint instead."
        ) from exc

    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.model_alias = {model_name}
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # the server binds a free ephemeral port itself: no probe-then-bind race
    params.n_ctx = n_ctx
    params.n_parallel = 1
    for cpu in (params.cpuparams, params.cpuparams_batch):
        cpu.n_threads = n_threads
        cpu.poll = 0  # sleep rather than spin between steps: kinder to a shared machine
    params.ui = False
    params.verbosity = 0 if not log.isEnabledFor(logging.DEBUG) else 3

    log.info(
        "Starting embedded llama.cpp server for %s (%s, n_ctx=%d, threads=%d)",
        model_name,
        gguf.name,
        n_ctx,
        n_threads,
    )
    t0 = time.monotonic()
    try:
        server = xllamacpp.Server(params)  # loads the model; returns once listening
    except Exception as exc:
        raise ModelUnavailable(
            f"The embedded llama.cpp server could not load {gguf}: {exc}. Delete the file to "
            "have it assembled again, or configure an OpenAI-compatible endpoint instead."
        ) from exc
    address = str(server.listening_address).rstrip("/")
    while not _healthy(address):
        if time.monotonic() - t0 > timeout_s:
            del server
            raise ModelUnavailable(
                f"The embedded llama.cpp server for {model_name} at {address} was not healthy "
                f"after {timeout_s:.0f}s. Free memory/CPU and retry, or configure an "
                "OpenAI-compatible endpoint instead."
            )
        time.sleep(0.2)
    log.info(
        "Embedded server for %s ready at %s in %.1fs", model_name, address, time.monotonic() - t0
    )
    return _Running(server=server, address=address, pid=os.getpid())


def embedded_base_url(
    model_name: str,
    models_dir: str | os.PathLike[str],
    *,
    n_ctx: int = DEFAULT_N_CTX,
    n_threads: int | None = None,
    timeout_s: float = DEFAULT_START_TIMEOUT_S,
) -> str:
    """OpenAI base URL (``http://127.0.0.1:PORT/v1``) of the embedded server for ``model_name``.

    Assembles the GGUF into ``models_dir`` and starts the server on first call (thread-safe);
    later calls in the same process return the running server (their ``n_ctx``/``n_threads``
    are then ignored). ``n_threads`` defaults to ``default_threads()``. Raises
    ``ModelUnavailable``.
    """
    get_model(model_name)  # fail fast on an unknown name
    with _lock:
        running = _servers.get(model_name)
        if running is None or running.pid != os.getpid():  # a forked child starts its own
            if running is not None:
                _inherited.append(running)
            gguf = ensure_gguf(model_name, models_dir)
            running = _start(model_name, gguf, n_ctx, n_threads or default_threads(), timeout_s)
            _servers[model_name] = running
        return f"{running.address}/v1"


def stop_embedded_servers() -> None:
    """Stop every embedded server this process started."""
    with _lock:
        for name in list(_servers):
            running = _servers.pop(name)
            if running.pid != os.getpid():
                _inherited.append(running)
                continue
            log.info("Stopping embedded server for %s", name)
            del running  # dropping the last reference runs xllamacpp's ~Server


atexit.register(stop_embedded_servers)
