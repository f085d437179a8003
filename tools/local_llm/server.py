"""The embedded llama.cpp server (``xllamacpp``): one per model and process, started lazily.

``embedded_base_url`` assembles the GGUF (see ``weights``), starts ``xllamacpp.Server`` on an
ephemeral loopback port, waits for ``/health`` and returns an OpenAI-compatible base URL for
``ChatOpenAI(base_url=..., api_key="local")``. Each server keeps the KV cache of the system
prompts it has seen on disk (``prompt_cache_for``; see ``prompt_cache``). Servers stop at
interpreter exit.

Measured and left out, on 2 busy cores with the 1.5B model (process CPU seconds per call;
``contextgen bench llm`` repeats the first): speculative decoding with the 0.5B as draft model
(1.5-2.4x the CPU time although 40-90% of its drafts were accepted: on a CPU the 0.5B costs
over half of the 1.5B per token, and it reads every prompt too), n-gram speculation (no gain:
30-60% accepted), a second thread for prompt evaluation (20% slower while other processes want
the cores), and compact JSON through an llguidance grammar (12-43% fewer output tokens, but the
replies degrade: empty fact lists, fields that echo the request).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contextgen.tools.errors import ModelUnavailable
from contextgen.tools.local_llm.prompt_cache import PromptCache
from contextgen.tools.local_llm.weights import ensure_gguf, get_model

log = logging.getLogger(__name__)

DEFAULT_N_CTX = 4096
DEFAULT_START_TIMEOUT_S = 120.0
DRAFT_MAX_TOKENS = 8
PROMPT_RAM_CACHE_MIB = 512

# Loopback health checks must not go through an HTTP proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


PROMPT_CACHE_FOLDER = "prompt-cache"  # inside the models folder


@dataclass
class _Running:
    server: Any  # xllamacpp.Server; stops when the last reference goes
    address: str  # e.g. http://127.0.0.1:40589
    pid: int
    prompt_cache: PromptCache | None  # None when the models folder is read-only


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


def _start(
    model_name: str,
    gguf: Path,
    n_ctx: int,
    n_threads: int,
    timeout_s: float,
    draft: Path | None = None,
) -> _Running:
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
    # llama.cpp keeps recent prompts' KV caches in RAM to reuse their prefixes (8 GiB by
    # default); a few prompt kinds of a few thousand tokens need far less (~29 KB per token).
    params.cache_ram_mib = PROMPT_RAM_CACHE_MIB
    for cpu in (params.cpuparams, params.cpuparams_batch):
        cpu.n_threads = n_threads
        cpu.poll = 0  # sleep rather than spin between steps: kinder to a shared machine
    params.ui = False
    if draft:  # speculative decoding: the draft model proposes, the model verifies in batches
        params.speculative.types = [
            xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE
        ]
        params.speculative.draft.mparams.path = str(draft)
        params.speculative.draft.n_max = DRAFT_MAX_TOKENS
        for cpu in (params.speculative.draft.cpuparams, params.speculative.draft.cpuparams_batch):
            cpu.n_threads = n_threads
            cpu.poll = 0
    cache_folder = _prompt_cache_folder(gguf.parent)
    if cache_folder:
        params.slot_save_path = f"{cache_folder}/"  # llama.cpp appends file names to it as is
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
    fingerprint = f"{get_model(model_name).sha256}:{getattr(xllamacpp, '__version__', '')}"
    return _Running(
        server=server,
        address=address,
        pid=os.getpid(),
        prompt_cache=PromptCache(address, cache_folder, fingerprint) if cache_folder else None,
    )


def _prompt_cache_folder(models_dir: Path) -> Path | None:
    folder = models_dir / PROMPT_CACHE_FOLDER
    try:
        folder.mkdir(exist_ok=True)
    except OSError as error:
        log.warning("No prompt cache: %s cannot be created (%s)", folder, error)
        return None
    return folder


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


@contextmanager
def standalone_server(
    model_name: str, models_dir: str | os.PathLike[str], *, draft_model: str | None = None
) -> Iterator[str]:
    """A server of its own (not the shared one), optionally with a draft model for speculative
    decoding, stopped on exit: yields its OpenAI base URL. For benchmarks and comparisons."""
    gguf = ensure_gguf(model_name, models_dir)
    draft = ensure_gguf(draft_model, models_dir) if draft_model else None
    running = _start(model_name, gguf, DEFAULT_N_CTX, default_threads(), DEFAULT_START_TIMEOUT_S,
                     draft)
    try:
        yield f"{running.address}/v1"
    finally:
        del running


def prompt_cache_for(base_url: str) -> PromptCache | None:
    """The prompt cache of this process's embedded server at ``base_url``, if it runs one."""
    with _lock:
        for running in _servers.values():
            if running.pid == os.getpid() and base_url.rstrip("/") == f"{running.address}/v1":
                return running.prompt_cache
    return None


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
