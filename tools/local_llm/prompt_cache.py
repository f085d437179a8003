"""Each system prompt's KV cache on disk, so a new process does not evaluate it again.

Within a process llama.cpp already reuses the longest cached prefix of a prompt (its slot and
its RAM prompt cache). A new process starts cold, and the static system prompts are the larger
part of each call's input: on 2 cores, evaluating them again costs 20 to 30 s per run. After
the first call with a system prompt, the server's slot is saved to
`<models>/prompt-cache/<key>.bin` (llama.cpp's `/slots` save action, a few milliseconds); the
first call with that system prompt in a later process restores it, so only the request's own
part is evaluated. The key hashes the model, the llama.cpp build and the system prompt, so a
changed prompt or an upgrade starts a new file; the least recently used files beyond
`MAX_FILES` are deleted. A cache that fails is logged and skipped, never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

MAX_FILES = 8  # a file holds one call's KV cache: ~29 KB per token for the 1.5B model

# Loopback requests must not go through an HTTP proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PromptCache:
    """The saved slot states of one embedded server (one slot, id 0)."""

    def __init__(self, address: str, folder: Path, fingerprint: str) -> None:
        self.address = address
        self.folder = folder
        self.fingerprint = fingerprint
        self._used: set[str] = set()  # keys this process has sent: llama.cpp caches them itself
        self._lock = threading.Lock()

    def key(self, system_prompt: str) -> str:
        """The file stem for `system_prompt` on this model and build."""
        return hashlib.sha256(f"{self.fingerprint}\x1f{system_prompt}".encode()).hexdigest()[:24]

    @contextmanager
    def reuse(self, system_prompt: str) -> Iterator[None]:
        """Around one request with `system_prompt`: restore its saved state before this process
        first sends it, and save the state after the request when no file holds it yet."""
        key = self.key(system_prompt)
        path = self.folder / f"{key}.bin"
        with self._lock:  # the server has one slot: requests run one at a time anyway
            if key not in self._used and path.is_file():
                self._restore(path)
            yield
            self._used.add(key)
            if not path.is_file():
                self._save(path)

    def _restore(self, path: Path) -> None:
        try:
            self._slot_action("restore", path.name)
            os.utime(path)  # recently used: kept by the pruning
            log.debug("Restored the prompt cache %s", path.name)
        except (OSError, ValueError) as error:
            log.warning("Prompt cache %s could not be restored (%s); deleting it", path, error)
            path.unlink(missing_ok=True)

    def _save(self, path: Path) -> None:
        temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
        try:
            self._slot_action("save", temporary.name)
            os.replace(temporary, path)  # readers never see a half-written file
        except (OSError, ValueError) as error:
            log.warning("Prompt cache %s could not be saved: %s", path, error)
            temporary.unlink(missing_ok=True)
            return
        files = sorted(self.folder.glob("*.bin"), key=lambda f: f.stat().st_mtime, reverse=True)
        for old in files[MAX_FILES:]:
            old.unlink(missing_ok=True)

    def _slot_action(self, action: str, filename: str) -> None:
        request = urllib.request.Request(
            f"{self.address}/slots/0?action={action}",
            data=json.dumps({"filename": filename}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with _opener.open(request, timeout=60) as response:
                json.load(response)
        except urllib.error.HTTPError as error:
            raise ValueError(f"HTTP {error.code}: {error.read()[:200]!r}") from error
