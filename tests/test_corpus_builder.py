"""The corpus-builder graph (Studio's second graph) on a real Chroma corpus with MiniLM."""

from __future__ import annotations

from contextgen.graphs.context import Context
from contextgen.graphs.corpus_builder import build_corpus_graph
from contextgen.tools.errors import SearchUnavailable
from contextgen.tools.search import wiki_summaries
from contextgen.tools.search.documents import Document
from contextgen.tools.search.local_corpus import LocalCorpus


def run(graph, context: Context, request: dict) -> tuple[dict, list[dict]]:
    events: list[dict] = []
    result: dict = {}
    for mode, data in graph.stream(request, context=context, stream_mode=["custom", "values"]):
        if mode == "custom":
            events.append(data)
        else:
            result = data
    return result, events


def test_folders_are_indexed_and_mirrored_with_progress(tmp_path) -> None:
    context = Context(data_dir=str(tmp_path / "data"))
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# Sky lantern\n\nPaper lanterns rise at night.")
    (folder / "b.txt").write_text("Mooncakes hold lotus seed paste.")
    graph = build_corpus_graph()

    report, events = run(graph, context, {"folders": [str(folder), str(tmp_path / "nope")]})
    assert (report["indexed"], report["removed"], report["passages"]) == (2, 0, 2)
    assert report["notices"] == [f"Skipped {tmp_path / 'nope'}: No such folder: "
                                 f"{(tmp_path / 'nope').resolve()}."]
    assert events[-1] == {"node": "index_folders", "done": 2, "total": 2,
                          "message": f"indexing {folder}: 2/2 passages"}
    assert "seed_wikipedia" not in [e["node"] for e in events]

    (folder / "b.txt").unlink()
    report, _ = run(graph, context, {"folders": [str(folder)]})
    assert (report["indexed"], report["removed"], report["passages"]) == (0, 1, 1)
    assert LocalCorpus(context.corpus_dir).search("lanterns at night", 1)[0].title == "Sky lantern"


def test_seeding_wikipedia_on_request(tmp_path, monkeypatch) -> None:
    summaries = [Document(id="wiki:Platypus", title="Platypus", url="https://w/Platypus",
                          text="The platypus lays eggs.", origin="wiki")]
    monkeypatch.setattr(wiki_summaries, "read_wiki_summaries", lambda: iter(summaries))
    context = Context(data_dir=str(tmp_path / "data"))
    report, events = run(build_corpus_graph(), context, {"seed_wikipedia": True})
    assert (report["indexed"], report["passages"]) == (1, 1)
    assert events[-1]["node"] == "seed_wikipedia"
    report, _ = run(build_corpus_graph(), context, {"seed_wikipedia": True})
    assert report["indexed"] == 0  # seeded once


def test_missing_wikipedia_package_is_a_notice(tmp_path, monkeypatch) -> None:
    def not_installed():
        raise SearchUnavailable("The offline Wikipedia summaries are not installed: pip ...")

    monkeypatch.setattr(wiki_summaries, "read_wiki_summaries", not_installed)
    context = Context(data_dir=str(tmp_path / "data"))
    report, _ = run(build_corpus_graph(), context, {"seed_wikipedia": True})
    assert report["passages"] == 0 and "not installed" in report["notices"][0]
