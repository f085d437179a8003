"""Long-term memory in Chroma: a user's preferences, past runs and remembered facts.

Each user has two collections of their own, so users never see each other's memories and a
recall never filters a store-wide collection (whose cost grows with every user's memories):

* `<prefix>-<user hash>-prefs`: the user's preferences, few and all recalled, newest first;
* `<prefix>-<user hash>-mem`: past runs and facts, recalled by an unfiltered nearest-neighbour
  query of the request.

The user hash is a digest of the user id (any string makes a valid collection name); the
readable id is kept in the collection's metadata. Each record carries `kind` (preference, run,
fact) and `created_at` metadata. Collections are created on first write; reads of a user
without them find nothing. Embedded Chroma (`PersistentClient`) in a folder, or a shared
Chroma server (`HttpClient`) when a URL is given (`Context.chroma_url` picks, in tools/backends).

Stores written by the earlier single-collection layout (one `contextgen_memories` collection
filtered by `user_id`) are not migrated: that collection is left alone and not read.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings
from chromadb.errors import NotFoundError

from contextgen.graphs.state import Fact, Memory
from contextgen.memory.embeddings import MiniLMEmbeddingFunction, default_embedding_function
from contextgen.tools.errors import BackendUnavailable

logger = logging.getLogger(__name__)

Kind = Literal["preference", "run", "fact"]
KINDS: tuple[Kind, ...] = ("preference", "run", "fact")
CHROMA_URL_ENV = "CONTEXTGEN_CHROMA_URL"
LAYOUT_VERSION = 2

Group = Literal["prefs", "mem"]
GROUPS: tuple[Group, ...] = ("prefs", "mem")


def _group(kind: str) -> Group:
    """Preferences live in their own collection; runs and facts share the other."""
    return "prefs" if kind == "preference" else "mem"


def chroma_client(path: str | Path | None = None, url: str | None = None) -> ClientAPI:
    """A Chroma client: `HttpClient` for a URL (e.g. http://host:8000), else `PersistentClient`."""
    settings = Settings(anonymized_telemetry=False)
    if url:
        parsed = urlparse(url if "://" in url else f"http://{url}")
        ssl = parsed.scheme == "https"
        try:
            return chromadb.HttpClient(
                host=parsed.hostname or "localhost",
                port=parsed.port or (443 if ssl else 8000),
                ssl=ssl,
                settings=settings,
            )
        except Exception as exc:
            raise BackendUnavailable(
                f"Cannot reach the Chroma server at {url} ({exc}). Start it with "
                f"`chroma run --path DIR`, or unset {CHROMA_URL_ENV} to use a local folder."
            ) from exc
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(folder), settings=settings)
    except Exception as exc:  # Chroma raises its own errors, OSError, and worse when it fails
        raise BackendUnavailable(store_error(folder, exc)) from exc


def store_error(folder: Path, error: BaseException) -> str:
    """What is wrong with a Chroma folder that would not open, and what to do: a read-only
    folder is fine as it is; only a store that is unreadable for another reason may be damaged."""
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    if "readonly" in reason.replace("-", "").lower() or not os.access(folder, os.W_OK):
        return (
            f"The Chroma store in {folder} is read-only ({reason}): make the folder writable, "
            "or set CONTEXTGEN_DATA_DIR to a writable folder; nothing in it was changed."
        )
    return (
        f"The Chroma store in {folder} cannot be opened ({reason}); it may be damaged or written "
        "by another Chroma version. Restore it from a backup, or set CONTEXTGEN_DATA_DIR to a new "
        "folder to start an empty store; nothing in it was changed."
    )


def _stable_id(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:20]
    return f"{prefix}-{digest}"


def _run_text(
    request: str, prompt: str, facts: Sequence[Fact], accepted: bool, score: float | None
) -> str:
    outcome = "accepted" if accepted else "not accepted"
    if score is not None:
        outcome += f" (score {score:.2f})"
    lines = [f"Past request: {request}", f"Prompt used: {prompt}", f"Outcome: {outcome}"]
    lines += [f"Fact: {fact.statement} [{fact.source}]" for fact in facts]
    return "\n".join(lines)


class MemoryStore:
    """Recall and remember per-user memories, in two Chroma collections per user."""

    def __init__(
        self,
        path: str | Path,
        url: str | None = None,
        *,
        collection: str = "contextgen_memories",
        embedding_function: MiniLMEmbeddingFunction | None = None,
        max_distance: float = 0.75,
        max_preferences: int = 10,
        client: ClientAPI | None = None,
    ) -> None:
        """Open (or create) the store.

        `url` selects a Chroma server; otherwise `path` is an embedded store. `collection` is
        the prefix of the per-user collection names. `max_distance` is the cosine distance
        above which a run or fact is too unrelated to recall.
        """
        self.client = client or chroma_client(path, url)
        self.embedding_function = embedding_function or default_embedding_function()
        # Recorded in each collection's configuration; queries always pass embeddings computed
        # with `self.embedding_function`, so the collections never embed anything themselves.
        self._collection_ef = self.embedding_function
        self.max_distance = max_distance
        self.max_preferences = max_preferences
        self.prefix = collection
        self._name_pattern = re.compile(rf"^{re.escape(collection)}-[0-9a-f]{{32}}-(prefs|mem)$")
        self._collections: dict[tuple[str, Group], Collection] = {}
        self._max_batch: int | None = None
        self._warn_about_old_layout()

    def _warn_about_old_layout(self) -> None:
        try:
            old = self.client.get_collection(self.prefix)
        except NotFoundError:
            return
        except Exception:  # a server without it, or an unreadable one: nothing to say
            logger.debug("Could not look for an old-layout collection", exc_info=True)
            return
        logger.warning(
            "Chroma collection %r holds %d memories in the old single-collection layout; "
            "they are not read. Delete it with `chroma` once no longer needed.",
            self.prefix,
            old.count(),
        )

    # -- collections -----------------------------------------------------------------------

    def _name(self, user_id: str, group: Group) -> str:
        digest = hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:32]
        return f"{self.prefix}-{digest}-{group}"

    def _collection(self, user_id: str, group: Group, create: bool = False) -> Collection | None:
        """The user's collection for `group`; None when it does not exist and not `create`."""
        key = (user_id, group)
        found = self._collections.get(key)
        if found is not None:
            return found
        name = self._name(user_id, group)
        if create:
            found = self.client.get_or_create_collection(
                name,
                embedding_function=self._collection_ef,  # type: ignore[arg-type]
                metadata={"user_id": user_id, "group": group, "layout": LAYOUT_VERSION},
                configuration={"hnsw": {"space": "cosine"}},
            )
        else:
            try:
                found = self.client.get_collection(
                    name,
                    embedding_function=self._collection_ef,  # type: ignore[arg-type]
                )
            except NotFoundError:
                return None
        self._collections[key] = found
        return found

    def _user_collections(self, user_id: str) -> builtins.list[Collection]:
        return [c for g in GROUPS if (c := self._collection(user_id, g)) is not None]

    def _batch_size(self) -> int:
        if self._max_batch is None:
            self._max_batch = self.client.get_max_batch_size()
        return self._max_batch

    # -- writing ---------------------------------------------------------------------------

    def _write(
        self,
        memory_id: str,
        user_id: str,
        kind: Kind,
        text: str,
        embed_text: str,
        extra: dict[str, Any] | None = None,
    ) -> str:
        metadata: dict[str, Any] = {"kind": kind, "created_at": time.time()}
        metadata.update({k: v for k, v in (extra or {}).items() if v is not None})
        embedding = self.embedding_function.encode([embed_text])
        target = cast(Collection, self._collection(user_id, _group(kind), create=True))
        target.upsert(ids=[memory_id], documents=[text], embeddings=embedding, metadatas=[metadata])
        logger.debug("Remembered %s %s for user %s", kind, memory_id, user_id)
        return memory_id

    def remember_preference(self, user_id: str, text: str) -> str:
        """Store a lasting preference; stating the same text again only refreshes its date."""
        text = " ".join(text.split())
        memory_id = _stable_id("pref", user_id, text.casefold())
        return self._write(memory_id, user_id, "preference", text, text)

    def remember_fact(self, user_id: str, text: str, source: str) -> str:
        """Store a fact with its provenance (URL, 'corpus:<id>', ...); identical facts dedupe."""
        text = " ".join(text.split())
        memory_id = _stable_id("fact", user_id, text, source)
        return self._write(
            memory_id, user_id, "fact", f"{text} [{source}]", text, {"source": source}
        )

    def remember_run(
        self,
        user_id: str,
        request: str,
        prompt: str,
        facts: Sequence[Fact] = (),
        accepted: bool = False,
        score: float | None = None,
        image_path: str | None = None,
        subject: str = "",
    ) -> str:
        """Store a finished run, embedded by its subject and request, so a later request
        that names the subject or resembles the request finds it."""
        memory_id = f"run-{uuid.uuid4().hex}"
        extra = {
            "subject": subject or None,
            "accepted": accepted,
            "score": score,
            "image_path": image_path,
            "request": request,
            "facts": json.dumps([fact.model_dump() for fact in facts]) if facts else None,
        }
        text = _run_text(request, prompt, facts, accepted, score)
        embed_text = f"{subject}: {request}" if subject else request
        return self._write(memory_id, user_id, "run", text, embed_text, extra)

    def add_precomputed(
        self,
        user_id: str | Sequence[str],
        kind: Kind | Sequence[Kind],
        texts: Sequence[str],
        embeddings: np.ndarray | Sequence[Sequence[float]],
        ids: Sequence[str] | None = None,
        created_at: float | Sequence[float] | None = None,
    ) -> list[str]:
        """Bulk-insert memories whose (unit-norm, 384-d) embeddings are already computed.

        `user_id`, `kind` and `created_at` are one value for all or one per memory; rows are
        grouped by user and collection and written in batches of the client's maximum size.
        Returns the ids in the order of `texts`."""
        n = len(texts)
        users = [user_id] * n if isinstance(user_id, str) else builtins.list(user_id)
        kinds = [kind] * n if isinstance(kind, str) else builtins.list(kind)
        now = time.time()
        stamps = [created_at or now] * n if not isinstance(created_at, Sequence) else created_at
        if ids is None:
            ids = [f"{k[:4]}-{uuid.uuid4().hex}" for k in kinds]
        ids = builtins.list(ids)
        vectors = np.asarray(embeddings, dtype=np.float32)
        if not (len(users) == len(kinds) == len(ids) == len(stamps) == len(vectors) == n):
            raise ValueError("add_precomputed: all columns must have the same length")
        groups: dict[tuple[str, Group], builtins.list[int]] = {}
        for i, (user, memory_kind) in enumerate(zip(users, kinds, strict=True)):
            if memory_kind not in KINDS:
                raise ValueError(f"add_precomputed: unknown kind {memory_kind!r}")
            groups.setdefault((user, _group(memory_kind)), []).append(i)
        batch = self._batch_size()
        for (user, group), rows in groups.items():
            target = cast(Collection, self._collection(user, group, create=True))
            for start in range(0, len(rows), batch):
                chunk = rows[start : start + batch]
                target.upsert(
                    ids=[ids[i] for i in chunk],
                    documents=[texts[i] for i in chunk],
                    embeddings=vectors[chunk],
                    metadatas=[{"kind": kinds[i], "created_at": float(stamps[i])} for i in chunk],
                )
        return ids

    # -- reading ---------------------------------------------------------------------------

    def recall(self, user_id: str, query: str, k: int = 5) -> list[Memory]:
        """The user's preferences (newest first), then up to `k` past runs and facts most
        related to `query`, best first; unrelated ones (beyond `max_distance`) are left out."""
        memories: list[Memory] = []
        prefs_collection = self._collection(user_id, "prefs")
        if prefs_collection is not None:
            prefs = prefs_collection.get(include=["documents", "metadatas"])
            preferences = sorted(
                zip(prefs["ids"], prefs["documents"] or [], prefs["metadatas"] or [], strict=True),
                key=lambda item: float(cast(float, item[2]["created_at"])),
                reverse=True,
            )[: self.max_preferences]
            memories += [
                Memory(id=i, kind="preference", text=d, score=1.0) for i, d, _ in preferences
            ]
        if not query.strip() or k <= 0:
            return memories
        past = self._collection(user_id, "mem")
        if past is None:
            return memories  # nothing to search: the query is not even embedded
        result = past.query(
            query_embeddings=self.embedding_function.encode([query]),
            n_results=k,
            include=["documents", "metadatas", "distances"],
        )
        for memory_id, text, meta, distance in zip(
            result["ids"][0],
            (result["documents"] or [[]])[0],
            (result["metadatas"] or [[]])[0],
            (result["distances"] or [[]])[0],
            strict=True,
        ):
            if distance <= self.max_distance:
                kind = cast(Kind, meta["kind"])
                subject = str(meta.get("subject") or "")
                memories.append(
                    Memory(id=memory_id, kind=kind, text=text, score=1.0 - distance,
                           subject=subject)
                )
        return memories

    def forget(self, user_id: str, memory_id: str | None = None) -> int:
        """Delete one of the user's memories, or all of them when `memory_id` is None."""
        forgotten = 0
        batch = self._batch_size()
        for target in self._user_collections(user_id):
            got = target.get(ids=[memory_id] if memory_id else None, include=[])
            for start in range(0, len(got["ids"]), batch):
                target.delete(ids=got["ids"][start : start + batch])
            forgotten += len(got["ids"])
        logger.info("Forgot %d memories of user %s", forgotten, user_id)
        return forgotten

    def count(self) -> int:
        """The number of memories of all users."""
        return sum(
            found.count()
            for found in self.client.list_collections()
            if self._name_pattern.match(found.name)
        )

    def list(self, user_id: str) -> builtins.list[Memory]:
        """All of the user's memories, newest first."""
        rows: builtins.list[tuple[str, str, Any]] = []
        for target in self._user_collections(user_id):
            got = target.get(include=["documents", "metadatas"])
            rows += zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
        rows.sort(key=lambda row: float(cast(float, row[2]["created_at"])), reverse=True)
        return [Memory(id=i, kind=cast(Kind, m["kind"]), text=d) for i, d, m in rows]
