"""A second graph for LangGraph Studio: build the local search corpus the image agent reads.

Give it folders of .txt/.md documents (adding a folder again mirrors it) and, optionally, ask
it to seed the offline Wikipedia summaries. It writes to the corpus in the context's data
folder, the same one `contextgen corpus add|seed` builds, and streams its progress.
"""

from __future__ import annotations

import operator
from typing import Annotated, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from contextgen.graphs.context import Context
from contextgen.tools.backends import backends_for
from contextgen.tools.errors import SearchUnavailable


class CorpusRequest(TypedDict, total=False):
    """What to index: document folders, and whether to add the offline Wikipedia summaries."""

    folders: list[str]
    seed_wikipedia: bool


class CorpusReport(TypedDict, total=False):
    """What changed: passages embedded and removed, the corpus size, and what was skipped."""

    indexed: Annotated[int, operator.add]
    removed: Annotated[int, operator.add]
    passages: int
    notices: Annotated[list[str], operator.add]


class CorpusState(CorpusRequest, CorpusReport):
    """The builder's whole state."""


def _progress(runtime: Runtime[Context], node: str, what: str):
    def report(done: int, total: int) -> None:
        runtime.stream_writer(
            {"node": node, "message": f"{what}: {done}/{total} passages", "done": done,
             "total": total}
        )

    return report


def index_folders(state: CorpusState, runtime: Runtime[Context]) -> dict:
    """Embed every folder's passages and drop passages of files since deleted or shortened."""
    corpus = backends_for(runtime.context).local_corpus
    indexed = removed = 0
    notices: list[str] = []
    for folder in state.get("folders", []):
        on_batch = _progress(runtime, "index_folders", f"indexing {folder}")
        try:
            added, pruned = corpus.mirror_folder(folder, progress=False, on_batch=on_batch)
        except (FileNotFoundError, ValueError) as error:
            notices.append(f"Skipped {folder}: {error}.")
            continue
        indexed += added
        removed += pruned
    return {"indexed": indexed, "removed": removed, "passages": corpus.count(), "notices": notices}


def seed_wikipedia(state: CorpusState, runtime: Runtime[Context]) -> dict:
    """Add the offline Wikipedia summaries (about 10,000; minutes on a small CPU) once."""
    from contextgen.tools.search.wiki_summaries import ensure_wiki_corpus

    corpus = backends_for(runtime.context).local_corpus
    on_batch = _progress(runtime, "seed_wikipedia", "indexing Wikipedia")
    try:
        indexed = ensure_wiki_corpus(corpus, progress=False, on_batch=on_batch)
    except SearchUnavailable as error:
        return {"notices": [str(error)], "passages": corpus.count()}
    return {"indexed": indexed, "passages": corpus.count()}


def route_after_folders(state: CorpusState) -> Literal["seed_wikipedia", "__end__"]:
    """Seed Wikipedia only when asked."""
    return "seed_wikipedia" if state.get("seed_wikipedia") else END


def build_corpus_graph():
    """Compile the corpus builder."""
    builder = StateGraph(
        CorpusState, context_schema=Context, input_schema=CorpusRequest,
        output_schema=CorpusReport,
    )
    builder.add_node("index_folders", index_folders)
    builder.add_node("seed_wikipedia", seed_wikipedia)
    builder.add_edge(START, "index_folders")
    builder.add_conditional_edges("index_folders", route_after_folders)
    builder.add_edge("seed_wikipedia", END)
    return builder.compile(name="contextgen corpus builder")


graph = build_corpus_graph()
