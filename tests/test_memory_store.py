"""MemoryStore on a real embedded Chroma with the real MiniLM embeddings."""

from __future__ import annotations

import chromadb
import numpy as np
import pytest
from chromadb.api.shared_system_client import SharedSystemClient

from contextgen.graphs.state import Fact
from contextgen.memory.embeddings import MiniLMEmbeddingFunction, default_embedding_function
from contextgen.memory.store import MemoryStore, chroma_client


@pytest.fixture
def store(tmp_path) -> MemoryStore:
    return MemoryStore(tmp_path / "memory")


def test_embedding_function_is_a_chroma_embedding_function() -> None:
    ef = default_embedding_function()
    vectors = ef(["a red fox", "a crimson fox", "quarterly tax report"])
    assert len(vectors) == 3 and len(vectors[0]) == 384
    assert abs(float(np.linalg.norm(vectors[0])) - 1.0) < 1e-4
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])
    assert not ef.is_legacy()
    rebuilt = MiniLMEmbeddingFunction.build_from_config(ef.get_config())
    assert rebuilt.name() == "contextgen_minilm"


def test_survives_reopening(tmp_path) -> None:
    path = tmp_path / "memory"
    first = MemoryStore(path)
    pref = first.remember_preference("ana", "I always want watercolor")
    run = first.remember_run(
        "ana",
        "a mooncake product photo",
        "round golden-brown mooncakes with a stamped lotus pattern",
        [Fact(statement="Mooncakes are eaten at the Mid-Autumn Festival", source="wiki")],
        accepted=True,
        score=0.9,
        image_path="/tmp/x.png",
    )
    del first
    SharedSystemClient.clear_system_cache()  # a genuinely new client on the same folder
    reopened = MemoryStore(path)
    assert {m.id for m in reopened.list("ana")} == {pref, run}
    recalled = reopened.recall("ana", "mooncakes for the Mid-Autumn Festival")
    assert [m.id for m in recalled] == [pref, run]
    assert "stamped lotus pattern" in recalled[1].text and "score 0.90" in recalled[1].text


def test_users_are_isolated(store: MemoryStore) -> None:
    ana = store.remember_preference("ana", "I like dark, moody lighting")
    store.remember_preference("ben", "I like dark, moody lighting")
    store.remember_fact("ben", "The platypus lays eggs", "corpus:wiki:Platypus")
    assert [m.id for m in store.list("ana")] == [ana]
    assert all(m.kind == "preference" for m in store.recall("ana", "platypus eggs"))
    assert store.forget("ana", store.list("ben")[0].id) == 0  # not ana's memory
    assert len(store.list("ben")) == 2


def test_recall_orders_by_relevance_and_skips_unrelated(store: MemoryStore) -> None:
    store.remember_fact("ana", "The platypus is an egg-laying mammal of Australia", "corpus:a")
    store.remember_fact("ana", "Mooncakes are round pastries with lotus paste", "corpus:b")
    store.remember_fact("ana", "Quarterly VAT returns are due within a month", "corpus:c")
    store.remember_run("ana", "a koala sleeping in a eucalyptus tree", "koala, eucalyptus", [])
    recalled = store.recall("ana", "an Australian mammal that lays eggs, in a river", k=4)
    assert recalled[0].text.startswith("The platypus")
    assert [m.score for m in recalled] == sorted((m.score for m in recalled), reverse=True)
    assert not any("VAT" in m.text for m in recalled)


def test_preferences_dedupe_and_come_newest_first(store: MemoryStore) -> None:
    first = store.remember_preference("ana", "Always square images")
    second = store.remember_preference("ana", "No text in the image")
    again = store.remember_preference("ana", "  Always   square images ")
    assert again == first
    prefs = store.recall("ana", "", k=5)
    assert [m.id for m in prefs] == [first, second]  # restating refreshed its date
    assert all(m.kind == "preference" for m in prefs)


def test_forget_one_and_all(store: MemoryStore) -> None:
    keep = store.remember_preference("ana", "Warm colors")
    gone = store.remember_fact("ana", "Tigers have striped skin", "corpus:t")
    assert store.forget("ana", gone) == 1
    assert [m.id for m in store.list("ana")] == [keep]
    store.remember_run("ana", "a tiger", "a tiger in tall grass", [])
    assert store.forget("ana") == 2
    assert store.list("ana") == []


def test_add_precomputed_bulk(store: MemoryStore) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [f"synthetic fact {i}" for i in range(300)]
    ids = store.add_precomputed(["u1", "u2", "u3"] * 100, "fact", texts, vectors)
    assert len(set(ids)) == 300 and store.count() == 300
    assert len(store.list("u2")) == 100


def test_http_client_is_used_for_a_url(monkeypatch, tmp_path) -> None:
    seen: dict[str, object] = {}

    def fake_http_client(**kwargs: object) -> chromadb.api.ClientAPI:
        seen.update(kwargs)
        return chromadb.PersistentClient(str(tmp_path / "server"))

    monkeypatch.setattr(chromadb, "HttpClient", fake_http_client)
    MemoryStore(tmp_path / "unused", url="https://chroma.example:9000")
    assert (seen["host"], seen["port"], seen["ssl"]) == ("chroma.example", 9000, True)


@pytest.mark.parametrize("user_id", ["ana/ü 🎨 x..y", "", "u" * 1000, "127.0.0.1"])
def test_any_user_id_makes_valid_collections(store: MemoryStore, user_id: str) -> None:
    pref = store.remember_preference(user_id, "Pastel colors")
    fact = store.remember_fact(user_id, "Herons hunt fish in shallow water", "corpus:h")
    assert {m.id for m in store.list(user_id)} == {pref, fact}
    assert [m.id for m in store.recall(user_id, "herons fishing")] == [pref, fact]
    readable = {c.metadata["user_id"] for c in store.client.list_collections() if c.metadata}
    assert readable == {user_id}
    assert store.forget(user_id) == 2 and store.list(user_id) == []


def test_recall_embeds_the_query_once(store: MemoryStore) -> None:
    store.remember_fact("ana", "Herons hunt fish in shallow water", "corpus:h")
    real = store.embedding_function
    calls: list[list[str]] = []

    class Counting:
        def encode(self, texts: list[str]) -> np.ndarray:
            calls.append(list(texts))
            return real.encode(texts)

    store.embedding_function = Counting()  # type: ignore[assignment]
    assert len(store.recall("ana", "herons fishing")) == 1
    assert calls == [["herons fishing"]]
    assert store.recall("nobody", "herons fishing") == []
    assert len(calls) == 1  # a user without runs or facts needs no query embedding


class FixedEmbedding:
    """Embeds every query as one given vector (this store's own; the shared one stays real)."""

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = vector

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.repeat(self.vector[None, :], len(texts), axis=0)


def test_add_precomputed_groups_users_and_kinds(store: MemoryStore) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(6, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    users = ["ana", "ben", "ana", "ben", "ana", "ana"]
    kinds = ["preference", "fact", "run", "preference", "fact", "preference"]
    ids = [f"m{i}" for i in range(6)]
    stamps = [float(i) for i in range(6)]
    assert store.add_precomputed(users, kinds, [f"t{i}" for i in range(6)], vectors, ids, stamps)
    assert store.count() == 6
    assert [m.id for m in store.list("ana")] == ["m5", "m4", "m2", "m0"]
    recalled = store.recall("ana", "", k=5)
    assert [(m.id, m.kind) for m in recalled] == [("m5", "preference"), ("m0", "preference")]
    store.embedding_function = FixedEmbedding(vectors[2])  # type: ignore[assignment]
    assert [m.id for m in store.recall("ana", "anything", k=1)][-1] == "m2"
    assert store.forget("ana", "m3") == 0 and store.forget("ben", "m3") == 1
    with pytest.raises(ValueError):
        store.add_precomputed("ana", "fact", ["a", "b"], vectors[:1])


def test_old_single_collection_layout_is_ignored(tmp_path) -> None:
    path = tmp_path / "memory"
    old = chroma_client(path).get_or_create_collection(
        "contextgen_memories", embedding_function=None
    )
    old.add(
        ids=["pref-old"],
        documents=["Old preference"],
        embeddings=np.ones((1, 384), dtype=np.float32),
        metadatas=[{"user_id": "ana", "kind": "preference", "created_at": 1.0}],
    )
    store = MemoryStore(path)
    assert store.count() == 0 and store.list("ana") == [] and store.recall("ana", "x") == []
    new = store.remember_preference("ana", "New preference")
    assert [m.id for m in store.recall("ana", "")] == [new] and store.count() == 1


def test_a_read_only_store_is_named_read_only_and_left_as_it_is(tmp_path) -> None:
    """A read-only bind mount (as root, file modes alone do not stop writes)."""
    import subprocess

    from contextgen.tools.errors import BackendUnavailable

    MemoryStore(tmp_path / "memory").remember_preference("ana", "Always watercolor")
    before = sorted((p.name, p.stat().st_size) for p in (tmp_path / "memory").rglob("*"))
    mount = tmp_path / "mounted"
    mount.mkdir()
    subprocess.run(["mount", "--bind", str(tmp_path / "memory"), str(mount)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mount)], check=True)
        with pytest.raises(BackendUnavailable) as raised:
            MemoryStore(mount)
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    message = str(raised.value)
    assert "is read-only" in message and "make the folder writable" in message
    assert "damaged" not in message and "Move" not in message
    assert sorted((p.name, p.stat().st_size) for p in (tmp_path / "memory").rglob("*")) == before


def test_a_damaged_store_says_so_without_touching_it(tmp_path) -> None:
    from contextgen.tools.errors import BackendUnavailable

    folder = tmp_path / "memory"
    folder.mkdir()
    (folder / "chroma.sqlite3").write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackendUnavailable, match="may be damaged.*Restore it from a backup"):
        MemoryStore(folder)
    assert (folder / "chroma.sqlite3").read_bytes() == b"not a database at all" * 100
