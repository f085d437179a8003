"""Long-term memory in Chroma: a user's preferences, past runs and remembered facts.

One collection holds every memory; each record carries `user_id`, `kind` (preference, run,
fact) and `created_at` metadata, and every read and delete filters on `user_id`, so users
never see each other's memories. Embedded Chroma (`PersistentClient`) by default, a shared
Chroma server (`HttpClient`) when a URL is given or `CONTEXTGEN_CHROMA_URL` is set.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
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

from contextgen.graphs.state import Fact, Memory
from contextgen.memory.embeddings import MiniLMEmbeddingFunction, default_embedding_function
from contextgen.tools.errors import BackendUnavailable

logger = logging.getLogger(__name__)

Kind = Literal["preference", "run", "fact"]
KINDS: tuple[Kind, ...] = ("preference", "run", "fact")
DEFAULT_MEMORY_PATH = Path.home() / ".contextgen" / "memory"
CHROMA_URL_ENV = "CONTEXTGEN_CHROMA_URL"


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
    folder.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(folder), settings=settings)


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
    """Recall and remember per-user memories in one Chroma collection."""

    def __init__(
        self,
        path: str | Path | None = None,
        url: str | None = None,
        *,
        collection: str = "contextgen_memories",
        embedding_function: MiniLMEmbeddingFunction | None = None,
        max_distance: float = 0.75,
        max_preferences: int = 10,
        client: ClientAPI | None = None,
    ) -> None:
        """Open (or create) the store.

        `url` (or `CONTEXTGEN_CHROMA_URL`) selects a Chroma server; otherwise `path` (default
        ~/.contextgen/memory) is an embedded store. `max_distance` is the cosine distance above
        which a run or fact is too unrelated to recall.
        """
        url = url or os.environ.get(CHROMA_URL_ENV) or None
        self.client = client or chroma_client(path or DEFAULT_MEMORY_PATH, url)
        self.embedding_function = embedding_function or default_embedding_function()
        self.max_distance = max_distance
        self.max_preferences = max_preferences
        self.collection: Collection = self.client.get_or_create_collection(
            collection,
            embedding_function=self.embedding_function,  # type: ignore[arg-type]
            configuration={"hnsw": {"space": "cosine"}},
        )

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
        metadata: dict[str, Any] = {"user_id": user_id, "kind": kind, "created_at": time.time()}
        metadata.update({k: v for k, v in (extra or {}).items() if v is not None})
        embedding = self.embedding_function.encode([embed_text])
        self.collection.upsert(
            ids=[memory_id], documents=[text], embeddings=embedding, metadatas=[metadata]
        )
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
    ) -> str:
        """Store a finished run; it is recalled when a later request resembles `request`."""
        memory_id = f"run-{uuid.uuid4().hex}"
        extra = {
            "accepted": accepted,
            "score": score,
            "image_path": image_path,
            "request": request,
            "facts": json.dumps([fact.model_dump() for fact in facts]) if facts else None,
        }
        text = _run_text(request, prompt, facts, accepted, score)
        return self._write(memory_id, user_id, "run", text, request, extra)

    def add_precomputed(
        self,
        user_id: str | Sequence[str],
        kind: Kind | Sequence[Kind],
        texts: Sequence[str],
        embeddings: np.ndarray | Sequence[Sequence[float]],
        ids: Sequence[str] | None = None,
        created_at: float | Sequence[float] | None = None,
    ) -> list[str]:
        """Bulk-insert memories whose (unit-norm, 384-d) embeddings are already computed."""
        n = len(texts)
        users = [user_id] * n if isinstance(user_id, str) else list(user_id)
        kinds = [kind] * n if isinstance(kind, str) else list(kind)
        now = time.time()
        stamps = [created_at or now] * n if not isinstance(created_at, Sequence) else created_at
        ids = list(ids) if ids is not None else [f"{k[:4]}-{uuid.uuid4().hex}" for k in kinds]
        vectors = np.asarray(embeddings, dtype=np.float32)
        if not (len(users) == len(kinds) == len(ids) == len(stamps) == len(vectors) == n):
            raise ValueError("add_precomputed: all columns must have the same length")
        batch = self.client.get_max_batch_size()
        for start in range(0, n, batch):
            end = min(start + batch, n)
            self.collection.upsert(
                ids=ids[start:end],
                documents=list(texts[start:end]),
                embeddings=vectors[start:end],
                metadatas=[
                    {"user_id": users[i], "kind": kinds[i], "created_at": float(stamps[i])}
                    for i in range(start, end)
                ],
            )
        return ids

    # -- reading ---------------------------------------------------------------------------

    def recall(self, user_id: str, query: str, k: int = 5) -> list[Memory]:
        """The user's preferences (newest first), then up to `k` past runs and facts most
        related to `query`, best first; unrelated ones (beyond `max_distance`) are left out."""
        prefs = self.collection.get(
            where={"$and": [{"user_id": user_id}, {"kind": "preference"}]},
            include=["documents", "metadatas"],
        )
        preferences = sorted(
            zip(prefs["ids"], prefs["documents"] or [], prefs["metadatas"] or [], strict=True),
            key=lambda item: float(cast(float, item[2]["created_at"])),
            reverse=True,
        )[: self.max_preferences]
        memories = [Memory(id=i, kind="preference", text=d, score=1.0) for i, d, _ in preferences]
        if not query.strip() or k <= 0:
            return memories
        result = self.collection.query(
            query_embeddings=self.embedding_function.encode([query]),
            n_results=k,
            where={"$and": [{"user_id": user_id}, {"kind": {"$ne": "preference"}}]},
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
                memories.append(Memory(id=memory_id, kind=kind, text=text, score=1.0 - distance))
        return memories

    def forget(self, user_id: str, memory_id: str | None = None) -> int:
        """Delete one of the user's memories, or all of them when `memory_id` is None."""
        got = self.collection.get(
            ids=[memory_id] if memory_id else None, where={"user_id": user_id}, include=[]
        )
        batch = self.client.get_max_batch_size()
        for start in range(0, len(got["ids"]), batch):
            self.collection.delete(ids=got["ids"][start : start + batch])
        logger.info("Forgot %d memories of user %s", len(got["ids"]), user_id)
        return len(got["ids"])

    def count(self) -> int:
        """The number of memories of all users."""
        return self.collection.count()

    def list(self, user_id: str) -> builtins.list[Memory]:
        """All of the user's memories, newest first."""
        got = self.collection.get(where={"user_id": user_id}, include=["documents", "metadatas"])
        rows = sorted(
            zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True),
            key=lambda row: float(cast(float, row[2]["created_at"])),
            reverse=True,
        )
        return [Memory(id=i, kind=cast(Kind, m["kind"]), text=d) for i, d, m in rows]
