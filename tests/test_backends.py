"""Backends are made once per set of backend settings, and read their settings from Context."""

from __future__ import annotations

import chromadb

from contextgen.graphs.context import Context
from contextgen.tools.backends import backends_for


def test_contexts_differing_only_in_per_run_options_share_backends(tmp_path) -> None:
    common = {"data_dir": str(tmp_path / "data"), "generator_model": str(tmp_path / "model"),
              "search_provider": "local"}
    first = Context(**common, user_id="ana", seed=1, output_dir=str(tmp_path / "a"),
                    max_rounds=2)
    second = Context(**common, user_id="ben", seed=7, output_dir=str(tmp_path / "b"),
                     max_rounds=5, interactive=True)
    one, two = backends_for(first), backends_for(second)
    assert one is two
    assert one.memory is two.memory
    assert one.search is two.search is one.local_corpus
    assert one.generator is not None and one.generator is two.generator


def test_a_backend_setting_makes_its_own_backends(tmp_path) -> None:
    first = Context(data_dir=str(tmp_path / "one"), generator_model="none")
    second = Context(data_dir=str(tmp_path / "two"), generator_model="none")
    assert backends_for(first) is not backends_for(second)
    assert backends_for(first).memory is not backends_for(second).memory


def test_the_chroma_url_serves_memory_and_corpus(monkeypatch, tmp_path) -> None:
    hosts: list[tuple[object, object]] = []

    def http_client(**kwargs: object) -> chromadb.api.ClientAPI:
        hosts.append((kwargs["host"], kwargs["port"]))
        return chromadb.PersistentClient(str(tmp_path / "server"))

    monkeypatch.setattr(chromadb, "HttpClient", http_client)
    monkeypatch.setenv("CONTEXTGEN_CHROMA_URL", "http://chroma.test:8123")
    backends = backends_for(Context(data_dir=str(tmp_path / "data"), generator_model="none"))
    backends.memory.remember_preference("ana", "Watercolor, always")
    assert backends.local_corpus.count() == 0
    assert hosts == [("chroma.test", 8123), ("chroma.test", 8123)]
    assert not (tmp_path / "data" / "memory").exists()
    assert not (tmp_path / "data" / "corpus").exists()
