"""Memory recall at scale: Chroma recall latency (p50, p95) with 1k, 10k and 100k stored
memories, the disk they take, and the embedding cost measured apart (documents per second).

The store is filled with precomputed unit vectors (`MemoryStore.add_precomputed`), so filling
100k memories does not wait on the embedding model."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_SIZES = (1_000, 10_000, 100_000)
TARGET_P95_MS = 50.0
USERS = 10
DIMENSIONS = 384


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIMENSIONS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def _disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def embedding_speed(documents: int = 256) -> dict[str, Any]:
    """Documents per second through the offline MiniLM embedding function."""
    from contextgen.memory.embeddings import default_embedding_function

    embed = default_embedding_function()
    texts = [f"Past request {i}: a watercolor of a heron at dawn over misty rice fields, "
             f"soft light, muted greens and pinks" for i in range(documents)]
    embed.encode(texts[:8])  # load the model
    started = time.perf_counter()
    embed.encode(texts)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    embed.encode(["a heron at dawn"])
    one_query_ms = (time.perf_counter() - started) * 1000
    return {"documents": documents, "docs_per_second": round(documents / seconds, 1),
            "one_query_ms": round(one_query_ms, 2)}


def run(sizes: tuple[int, ...] = DEFAULT_SIZES, queries: int = 100,
        measure_embedding: bool = True, embedding_documents: int = 256,
        report: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fill a fresh store per size and time `queries` recalls for one user; `report` gets
    one line per finished size."""
    from contextgen.memory.store import MemoryStore

    class _PrecomputedQuery:
        """Stands in for the embedding function so recall measures Chroma alone."""

        def __init__(self) -> None:
            self.next: np.ndarray | None = None

        def encode(self, texts):
            return self.next[None, :]

    rng = np.random.default_rng(0)
    results: dict[str, Any] = {"target_p95_ms": TARGET_P95_MS, "sizes": {}}
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="contextgen-bench-memory-") as folder:
            path = Path(folder)
            query_embedder = _PrecomputedQuery()
            store = MemoryStore(path)  # the model loads only on encode, never called here
            store.embedding_function = query_embedder  # type: ignore[assignment]
            vectors = _unit_vectors(rng, size)
            users = [f"user-{i % USERS}" for i in range(size)]
            kinds = ["run" if i % 3 else "fact" for i in range(size)]
            texts = [f"Past request {i}: subject {i % 997}, style {i % 13}" for i in range(size)]
            started = time.perf_counter()
            store.add_precomputed(users, kinds, texts, vectors,
                                  ids=[f"m-{i}" for i in range(size)])
            fill_seconds = time.perf_counter() - started
            for _ in range(3):  # warm the index
                query_embedder.next = _unit_vectors(rng, 1)[0]
                store.recall("user-0", "warm up", k=5)
            latencies = []
            for _ in range(queries):
                query_embedder.next = _unit_vectors(rng, 1)[0]
                started = time.perf_counter()
                recalled = store.recall("user-0", "query", k=5)
                latencies.append((time.perf_counter() - started) * 1000)
            assert isinstance(recalled, list)
            results["sizes"][str(size)] = {
                "memories": store.count(),
                "fill_seconds": round(fill_seconds, 2),
                "inserts_per_second": round(size / fill_seconds, 1),
                "recall_p50_ms": _percentile(latencies, 50),
                "recall_p95_ms": _percentile(latencies, 95),
                "disk_mb": round(_disk_bytes(path) / 1e6, 1),
            }
            del store
            if report:
                report(describe({"sizes": {str(size): results["sizes"][str(size)]}})[0])
    largest = results["sizes"][str(max(sizes))]
    results["within_target"] = largest["recall_p95_ms"] < TARGET_P95_MS
    if measure_embedding:
        results["embedding"] = embedding_speed(embedding_documents)
    return results


def describe(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{int(size):>7} memories: recall p50 {e['recall_p50_ms']:.1f} ms, p95 "
        f"{e['recall_p95_ms']:.1f} ms; disk {e['disk_mb']:.1f} MB; filled in "
        f"{e['fill_seconds']:.1f} s ({e['inserts_per_second']:.0f}/s)"
        for size, e in result["sizes"].items()
    ]
    if "within_target" not in result:
        return lines
    lines.append(f"p95 target < {result['target_p95_ms']:.0f} ms at the largest size: "
                 f"{'met' if result['within_target'] else 'MISSED'}")
    if "embedding" in result:
        e = result["embedding"]
        lines.append(f"embedding: {e['docs_per_second']:.0f} documents/s, one query "
                     f"{e['one_query_ms']:.1f} ms (not included in recall latency)")
    return lines
